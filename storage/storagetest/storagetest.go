// Package storagetest is the conformance suite of storage engines: tests written against the
// storage contract only. Every engine runs it from its own tests,
//
//	func TestConformance(t *testing.T) { storagetest.Run(t, openFresh) }
//	func TestReopen(t *testing.T)      { storagetest.RunReopen(t, openNamed) }
//
// and a guarantee the domain relies on is written here once, so that it holds on every engine.
//
// Write functions in the suite derive everything from their transaction (an engine may run them
// more than once), never call t.Fatal (an engine may run them on another goroutine), and the
// tests check what was stored, not how often a function ran.
package storagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// Opener opens a fresh store that holds no tenant, with collections declared. It arranges for
// the store to be closed when t ends; closing it twice must do no harm.
type Opener func(t *testing.T, collections []*storage.Collection) storage.Store

// NamedOpener opens the store called name with collections declared: empty the first time a
// test opens that name, and after that holding what the store of that name held when it was
// closed (the suite closes a store before it opens its name again). It arranges for the store
// to be closed when t ends; closing it twice must do no harm.
type NamedOpener func(t *testing.T, name string, collections []*storage.Collection) storage.Store

type test struct {
	name string
	fn   func(t *testing.T, open Opener)
}

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	for _, area := range []struct {
		name  string
		tests []test
	}{
		{"records", recordTests},
		{"indexes", indexTests},
		{"scan", scanTests},
		{"members", memberTests},
		{"facts", factTests},
		{"trail", trailTests},
		{"admin", adminTests},
		{"transactions", txTests},
		{"import", importTests},
	} {
		t.Run(area.name, func(t *testing.T) {
			for _, tc := range area.tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
			}
		})
	}
}

// Tenants every test store holds (see newEnv).
const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// People and Teams are the collections the suite declares: one like the domain's users (a unique
// case-folded index, an exact index, a folded and an exact multi-valued index) and one like its
// groups. The unique indexes are not declared first, so that an engine that writes index
// entries before it has checked every unique key is caught.
var (
	People = &storage.Collection{Name: "people", Indexes: []storage.Index{
		{Name: "externalId", Attr: "externalId", Keys: field("externalId")},
		{Name: "email", Attr: "emails.value", Fold: true, Keys: subfield("emails", "value")},
		{Name: "userName", Attr: "userName", Unique: true, Fold: true, Keys: field("userName")},
		{Name: "tag", Attr: "tags", Keys: list("tags")},
	}}
	Teams = &storage.Collection{Name: "teams", Indexes: []storage.Index{
		{Name: "externalId", Attr: "externalId", Keys: field("externalId")},
		{Name: "displayName", Attr: "displayName", Unique: true, Fold: true, Keys: field("displayName")},
	}}
	collections = []*storage.Collection{People, Teams}
)

// field derives a key from a string attribute.
func field(name string) func(map[string]any) []string {
	return func(doc map[string]any) []string {
		if s, ok := doc[name].(string); ok {
			return []string{s}
		}
		return nil
	}
}

// subfield derives a key from every element of a multi-valued complex attribute.
func subfield(name, sub string) func(map[string]any) []string {
	return func(doc map[string]any) []string {
		var keys []string
		for _, e := range asList(doc[name]) {
			if m, ok := e.(map[string]any); ok {
				if s, ok := m[sub].(string); ok {
					keys = append(keys, s)
				}
			}
		}
		return keys
	}
}

// list derives a key from every string of a multi-valued attribute.
func list(name string) func(map[string]any) []string {
	return func(doc map[string]any) []string {
		var keys []string
		for _, e := range asList(doc[name]) {
			if s, ok := e.(string); ok {
				keys = append(keys, s)
			}
		}
		return keys
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

type obj = map[string]any

// rec builds a record of c from doc as the domain does: the document as JSON, and the keys
// derived from the decoded document.
func rec(c *storage.Collection, id string, doc obj) storage.Record {
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return storage.Record{ID: id, Doc: raw, Keys: c.KeysOf(decode(raw))}
}

func decode(raw []byte) obj {
	m := obj{}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		panic(err)
	}
	return m
}

func emails(values ...string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = obj{"value": v}
	}
	return out
}

func strs(values ...string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

var ctx = context.Background()

// env is a store opened for one test, with two empty tenants.
type env struct {
	t *testing.T
	s storage.Store
}

func newEnv(t *testing.T, open Opener) *env {
	t.Helper()
	e := &env{t: t, s: open(t, collections)}
	e.admin(func(a storage.AdminTx) error {
		for _, id := range []string{tenantA, tenantB} {
			if err := a.PutTenant(storage.Tenant{ID: id, Name: id, Created: a.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	return e
}

// write runs fn in a write transaction over tenantA and fails the test when it fails.
func (e *env) write(fn func(storage.Tx) error) {
	e.t.Helper()
	if err := e.s.Write(ctx, tenantA, fn); err != nil {
		e.t.Fatalf("write: %v", err)
	}
}

// read runs fn in a read transaction over tenantA and fails the test when it fails.
func (e *env) read(fn func(storage.Tx) error) {
	e.t.Helper()
	if err := e.s.Read(ctx, tenantA, fn); err != nil {
		e.t.Fatalf("read: %v", err)
	}
}

func (e *env) admin(fn func(storage.AdminTx) error) {
	e.t.Helper()
	if err := e.s.WriteAdmin(ctx, fn); err != nil {
		e.t.Fatalf("admin write: %v", err)
	}
}

// insert stores records in one write transaction over tenantA.
func (e *env) insert(c *storage.Collection, rs ...storage.Record) {
	e.t.Helper()
	e.write(func(tx storage.Tx) error {
		for _, r := range rs {
			if _, err := tx.Insert(c, r); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
		return nil
	})
}

// concurrently runs n writes over tenantA at once, the i-th running the function write(i)
// returns, and returns their errors.
func (e *env) concurrently(n int, write func(i int) func(storage.Tx) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.s.Write(ctx, tenantA, write(i))
		}()
	}
	wg.Wait()
	return errs
}

// expectCounts checks the number of records of c in tenantA and of those deleted.
func (e *env) expectCounts(c *storage.Collection, count int, deletes uint64) {
	e.t.Helper()
	e.read(func(tx storage.Tx) error {
		if tx.Count(c) != count || tx.Deletes(c) != deletes {
			e.t.Errorf("%s: %d records, %d deleted; want %d and %d", c.Name, tx.Count(c), tx.Deletes(c), count, deletes)
		}
		return nil
	})
}

// get reads a record of tenantA.
func (e *env) get(c *storage.Collection, id string) storage.Record {
	e.t.Helper()
	var r storage.Record
	e.read(func(tx storage.Tx) error {
		var err error
		r, err = tx.Get(c, id)
		return err
	})
	return r
}

// lookup returns the ids tenantA's index holds under key.
func (e *env) lookup(c *storage.Collection, index, key string) []string {
	e.t.Helper()
	var ids []string
	e.read(func(tx storage.Tx) error {
		var err error
		ids, err = tx.Lookup(c, index, key)
		return err
	})
	return ids
}

// expectLookup checks the ids an index holds under key.
func (e *env) expectLookup(c *storage.Collection, index, key string, want ...string) {
	e.t.Helper()
	if got := e.lookup(c, index, key); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		e.t.Errorf("%s.%s %q: got %q, want %q", c.Name, index, key, got, want)
	}
}

// scan returns the ids of tenantA's records from a position, at most n of them (0: all).
func (e *env) scan(c *storage.Collection, from storage.Position, n int) []string {
	e.t.Helper()
	var ids []string
	e.read(func(tx storage.Tx) error {
		ids = nil
		return tx.Scan(c, from, func(r storage.Record) (bool, error) {
			ids = append(ids, r.ID)
			return n == 0 || len(ids) < n, nil
		})
	})
	return ids
}

// wantCode checks that err is a storage error with code.
func wantCode(t *testing.T, what string, err error, code storage.Code) {
	t.Helper()
	if storage.ErrorCode(err) != code {
		t.Errorf("%s: got %v, want a %s error", what, err, code)
	}
}

// ids returns n ids in increasing order, as a domain draws them.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = storage.NewID()
	}
	return out
}
