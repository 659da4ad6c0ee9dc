package scimserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

var bg = context.Background()

var testActor = Actor{ID: "test", Name: "test"}

// onPostgres is set for the package's second pass (TestMain): newService's stores are then
// PostgreSQL schemas.
var onPostgres bool

// TestMain runs the package's tests over bbolt files, then again over PostgreSQL when a server
// is reachable (with CI=true an unreachable one fails the run).
func TestMain(m *testing.M) { os.Exit(pgtest.RunTwice(m, &onPostgres)) }

// newService is a service over a real store (a data file in a temporary directory, or a fresh
// PostgreSQL schema), with the default tenant bootstrapped.
func newService(t testing.TB) (*Service, storage.Store) {
	t.Helper()
	var store storage.Store
	var err error
	if onPostgres {
		store, err = postgres.Open(bg, pgtest.URL(t), postgres.Options{Collections: Collections()})
	} else {
		store, err = bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{Collections: Collections(), ErasureCleared: ErasureCleared})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := New(store, Options{SharedStore: onPostgres}) // as the server runs on PostgreSQL
	if err := s.Bootstrap(bg, EnvTokens{}, nil); err != nil {
		t.Fatal(err)
	}
	return s, store
}

// create stores a resource of kind k from attributes (schemas added) and returns its id.
func create(t testing.TB, s *Service, k *Kind, attrs map[string]any) string {
	t.Helper()
	body := map[string]any{"schemas": []string{k.core.ID}}
	for name, v := range attrs {
		body[name] = v
	}
	for _, ext := range k.extensions {
		if _, ok := attrs[ext.ID]; ok {
			body["schemas"] = append(body["schemas"].([]string), ext.ID)
		}
	}
	raw, _ := json.Marshal(body)
	id, err := s.Create(bg, DefaultTenant, testActor, k, raw)
	if err != nil {
		t.Fatalf("create %v: %v", attrs, err)
	}
	return id
}

const enterpriseURN = schemas.EnterpriseURN

// checkStore runs the engine's consistency check.
func checkStore(s storage.Store) ([]string, error) {
	switch s := s.(type) {
	case *bolt.Store:
		return s.Check()
	case *postgres.Store:
		return s.Check(bg)
	}
	return nil, fmt.Errorf("no check for %T", s)
}
