package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

func open(t *testing.T, url string, collections []*storage.Collection) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Collections: collections})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, collections []*storage.Collection) storage.Store {
		return open(t, pgtest.URL(t), collections)
	})
}

func TestReopen(t *testing.T) {
	storagetest.RunReopen(t, func(t *testing.T, name string, collections []*storage.Collection) storage.Store {
		urls := named[t.Name()]
		if urls == nil {
			urls = map[string]string{}
			named[t.Name()] = urls
		}
		if urls[name] == "" {
			urls[name] = pgtest.URL(t)
		}
		return open(t, urls[name], collections)
	})
}

// named holds each reopen test's schemas by name.
var named = map[string]map[string]string{}

// TestCheck: a store written through the contract checks clean; an index entry lost, a count
// or a block count gone wrong, and a trail counter out of step are each reported.
func TestCheck(t *testing.T) {
	url := pgtest.URL(t)
	s := open(t, url, []*storage.Collection{storagetest.People})
	ctx := context.Background()
	if err := s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		return a.PutTenant(storage.Tenant{ID: "t", Name: "t", Created: a.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for i := range 3000 {
			doc := fmt.Sprintf(`{"userName":"u%d","emails":[{"value":"u%d@x"}]}`, i, i)
			r := storage.Record{ID: storage.NewID(), Doc: []byte(doc)}
			r.Keys = storagetest.People.KeysOf(map[string]any{"userName": fmt.Sprintf("u%d", i),
				"emails": []any{map[string]any{"value": fmt.Sprintf("u%d@x", i)}}})
			if _, err := tx.Insert(storagetest.People, r); err != nil {
				return err
			}
		}
		return tx.Append(storage.Event{Operation: "bulk", Outcome: "success"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("a clean store: %v %v", problems, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, damage := range []struct{ sql, want string }{
		{"DELETE FROM entries WHERE ctid = (SELECT ctid FROM entries WHERE idx = 'email' LIMIT 1)", "index email lacks an entry"},
		{"UPDATE counts SET count = count + 1", "counts 3001 records, holds 3000"},
		{"UPDATE blocks SET n = n + 1 WHERE first_id = '\\x'", "blocks count 3001 records (1 blocks miscounted)"},
		{"UPDATE tenants SET seq = seq + 1", "its counters say 1 up to 2"},
	} {
		if _, err := conn.Exec(ctx, damage.sql); err != nil {
			t.Fatal(err)
		}
		problems, err := s.Check(ctx)
		if err != nil || !strings.Contains(strings.Join(problems, "\n"), damage.want) {
			t.Errorf("after %s: %v %v; want %q", damage.sql, problems, err, damage.want)
		}
	}
}
