package postgres_test

import (
	"context"
	"fmt"
	"slices"
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

// openTenant opens a fresh schema declaring People, with the tenant "t", and a connection of
// its own to the schema, for a test to look at or damage the tables behind the store's back.
func openTenant(t *testing.T) (*postgres.Store, *pgx.Conn) {
	t.Helper()
	url := pgtest.URL(t)
	s := postgres.OpenTenant(t, url, postgres.Options{Collections: []*storage.Collection{storagetest.People}})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return s, conn
}

// TestCheck: a store written through the contract checks clean; an index entry lost, a count
// or a block count gone wrong, and a trail counter out of step are each reported.
func TestCheck(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
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

// TestReadOnlyOpen: a read-only open (check, audit, the source of a migrate) changes nothing: it
// refuses a database without the schema, one at an older schema version and one lacking a
// declared index, where a normal open would create, migrate or build them.
func TestReadOnlyOpen(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	readOnly := func(collections []*storage.Collection) error {
		s, err := postgres.Open(ctx, url, postgres.Options{Collections: collections, ReadOnly: true})
		if err == nil {
			s.Close()
		}
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables := func() (n int) {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := readOnly(nil); err == nil || !strings.Contains(err.Error(), "no scimserver schema") || tables() != 0 {
		t.Fatalf("read-only open of an empty database: %v, %d tables", err, tables())
	}
	s, err := postgres.Open(ctx, url, postgres.Options{Collections: []*storage.Collection{storagetest.People}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := readOnly([]*storage.Collection{storagetest.People}); err != nil {
		t.Fatalf("read-only open of a current database: %v", err)
	}
	more := *storagetest.People
	more.Indexes = append(slices.Clone(more.Indexes), storage.Index{Name: "nickName", Attr: "nickName", Keys: func(doc map[string]any) []string { return nil }})
	var layout int
	if err := readOnly([]*storage.Collection{&more}); err == nil || !strings.Contains(err.Error(), "nickName") {
		t.Errorf("read-only open declaring an index the database lacks: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM layout WHERE idx = 'nickName'").Scan(&layout); err != nil || layout != 0 {
		t.Errorf("the read-only open built the index: %d %v", layout, err)
	}
	if _, err := conn.Exec(ctx, "UPDATE schema_version SET version = version - 1"); err != nil {
		t.Fatal(err)
	}
	if err := readOnly([]*storage.Collection{storagetest.People}); err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("read-only open of an older schema: %v", err)
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil || version != postgres.SchemaVersion()-1 {
		t.Errorf("schema version after a read-only open: %d %v, want it left at %d", version, err, postgres.SchemaVersion()-1)
	}
}
