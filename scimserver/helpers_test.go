package scimserver

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage/bolt"
)

var bg = context.Background()

var testActor = Actor{ID: "test", Name: "test"}

// newService is a service over a real data file in a temporary directory, with the default
// tenant bootstrapped.
func newService(t testing.TB) (*Service, *bolt.Store) {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{Collections: Collections(), ErasureCleared: ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := New(store, Options{})
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
