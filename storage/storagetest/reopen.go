package storagetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// RunReopen runs the tests of what a store keeps from one opening to the next: its data, and
// indexes declared, dropped or changed in between.
func RunReopen(t *testing.T, open NamedOpener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, NamedOpener)
	}{
		{"data survives", testDataSurvives},
		{"an index declared later is built", testIndexAdded},
		{"an index dropped and declared again is rebuilt", testIndexReadded},
		{"an index that starts folding is rebuilt", testIndexFolds},
		{"a collection declared later", testCollectionAdded},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// without returns c without the named index: the declaration of an older or newer domain.
func without(c *storage.Collection, index string) *storage.Collection {
	d := &storage.Collection{Name: c.Name}
	for _, ix := range c.Indexes {
		if ix.Name != index {
			d.Indexes = append(d.Indexes, ix)
		}
	}
	return d
}

func reopen(t *testing.T, open NamedOpener, e *env, name string, colls ...*storage.Collection) *env {
	t.Helper()
	if e != nil {
		if err := e.s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, s: open(t, name, colls)}
}

func (e *env) putTenants(ids ...string) {
	e.t.Helper()
	e.admin(func(a storage.AdminTx) error {
		for _, id := range ids {
			if err := a.PutTenant(storage.Tenant{ID: id, Name: id, Created: a.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func testDataSurvives(t *testing.T, open NamedOpener) {
	e := reopen(t, open, nil, "data", People, Teams)
	e.putTenants(tenantA)
	person, team := storage.NewID(), storage.NewID()
	r := rec(People, person, obj{"userName": "Kept", "emails": emails("k@x"), "tags": strs("t")})
	r.Secret = []byte("secret")
	tok := storage.Token{ID: "tok", Tenant: tenantA, Name: "n", Scopes: []string{"scim"}, Created: time.Now().UTC(), Hash: hashOf("kept")}
	e.admin(func(a storage.AdminTx) error { return a.PutToken(tok) })
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, r); err != nil {
			return err
		}
		if _, err := tx.Insert(Teams, rec(Teams, team, obj{"displayName": "Team"})); err != nil {
			return err
		}
		if err := tx.AddMember(team, storage.Member{Value: person, Type: "User", Display: "Kept"}); err != nil {
			return err
		}
		if err := tx.PutFacts(person, storage.Facts{Interactions: 3}); err != nil {
			return err
		}
		if _, _, err := tx.AddParticipant("c1", person); err != nil {
			return err
		}
		return tx.Append(storage.Event{Operation: "create", ResourceID: person, Outcome: "success"})
	})
	e.write(func(tx storage.Tx) error { return tx.Delete(Teams, team) })
	events := e.events(0)
	e = reopen(t, open, e, "data", People, Teams)
	got := e.get(People, person)
	if !bytes.Equal(got.Doc, r.Doc) || !bytes.Equal(got.Secret, r.Secret) || got.Version != 1 {
		t.Errorf("the record after reopening: %+v", got)
	}
	e.expectLookup(People, "userName", "kept", person)
	e.expectLookup(People, "email", "K@X", person)
	e.expectLookup(People, "tag", "t", person)
	if gs := e.memberOf(person); !slices.Equal(gs, []string{team}) {
		t.Errorf("groups after reopening: %v", gs)
	}
	if f := e.facts(person); f.Interactions != 3 {
		t.Errorf("facts after reopening: %+v", f)
	}
	if got := e.events(0); !slices.EqualFunc(got, events, sameEvent) {
		t.Errorf("events after reopening: %+v, want %+v", got, events)
	}
	e.read(func(tx storage.Tx) error {
		cs, err := storage.Campaigns(tx, person)
		if !slices.Equal(cs, []string{"c1"}) || err != nil || tx.Count(People) != 1 || tx.Count(Teams) != 0 || tx.Deletes(Teams) != 1 {
			t.Errorf("after reopening: campaigns %v %v, counts %d %d, deletes %d", cs, err, tx.Count(People), tx.Count(Teams), tx.Deletes(Teams))
		}
		return nil
	})
	err := e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		got, err := a.TokenByHash(rawHash("kept"))
		if err != nil || !sameToken(got, tok) {
			return fmt.Errorf("the token after reopening: %+v %v", got, err)
		}
		_, err = a.Tenant(tenantA)
		return err
	})
	if err != nil {
		t.Error(err)
	}
	// The next event follows the old ones.
	e.write(func(tx storage.Tx) error { return tx.Append(storage.Event{Operation: "later", Outcome: "success"}) })
	if all := e.events(0); len(all) != 2 || all[1].Seq <= all[0].Seq {
		t.Errorf("events after a write after reopening: %+v", all)
	}
}

func testIndexAdded(t *testing.T, open NamedOpener) {
	old := without(People, "tag")
	e := reopen(t, open, nil, "added", old)
	e.putTenants(tenantA, tenantB)
	a, b, c := storage.NewID(), storage.NewID(), storage.NewID()
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(old, rec(old, a, obj{"userName": "a", "tags": strs("red", "blue")})); err != nil {
			return err
		}
		if _, err := tx.Insert(old, rec(old, b, obj{"userName": "b", "tags": strs("red")})); err != nil {
			return err
		}
		_, err := tx.Insert(old, rec(old, c, obj{"userName": "c"}))
		return err
	})
	err := e.s.Write(ctx, tenantB, func(tx storage.Tx) error {
		_, err := tx.Insert(old, rec(old, c, obj{"userName": "c", "tags": strs("red")}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.write(func(tx storage.Tx) error { return tx.Touch(old, b) })
	e = reopen(t, open, e, "added", People)
	e.expectLookup(People, "tag", "red", a, b)
	e.expectLookup(People, "tag", "blue", a)
	e.expectLookup(People, "userName", "C", c)
	err = e.s.Read(ctx, tenantB, func(tx storage.Tx) error {
		if ids, err := tx.Lookup(People, "tag", "red"); err != nil || !slices.Equal(ids, []string{c}) {
			return fmt.Errorf("the new index in another tenant: %v %v", ids, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// Records written before the index existed move their keys when they change.
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Update(People, rec(People, a, obj{"userName": "a", "tags": strs("green")})); err != nil {
			return err
		}
		if err := tx.Touch(People, c); err != nil {
			return err
		}
		return tx.Delete(People, b)
	})
	e.expectLookup(People, "tag", "red")
	e.expectLookup(People, "tag", "blue")
	e.expectLookup(People, "tag", "green", a)
	e = reopen(t, open, e, "added", People)
	e.expectLookup(People, "tag", "green", a)
	e.expectLookup(People, "tag", "red")
}

func testIndexReadded(t *testing.T, open NamedOpener) {
	e := reopen(t, open, nil, "readded", People)
	e.putTenants(tenantA)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "a", "tags": strs("old")}), rec(People, b, obj{"userName": "b", "tags": strs("old")}))
	old := without(People, "tag")
	e = reopen(t, open, e, "readded", old)
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Update(old, rec(old, a, obj{"userName": "a", "tags": strs("new")})); err != nil {
			return err
		}
		return tx.Delete(old, b)
	})
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		if _, err := tx.Lookup(old, "tag", "old"); err == nil {
			return fmt.Errorf("a lookup through a dropped index succeeded")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	e = reopen(t, open, e, "readded", People)
	e.expectLookup(People, "tag", "old")
	e.expectLookup(People, "tag", "new", a)
}

func testIndexFolds(t *testing.T, open NamedOpener) {
	exact := without(People, "") // a copy whose declarations can change
	e := reopen(t, open, nil, "folds", exact)
	e.putTenants(tenantA)
	a := storage.NewID()
	e.insert(exact, rec(exact, a, obj{"userName": "a", "externalId": "ABC"}))
	folded := without(People, "")
	for i := range folded.Indexes {
		if folded.Indexes[i].Name == "externalId" {
			folded.Indexes[i].Fold = true
		}
	}
	e = reopen(t, open, e, "folds", folded)
	e.expectLookup(folded, "externalId", "abc", a)
	e.expectLookup(folded, "externalId", "ABC", a)
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(folded, rec(folded, a, obj{"userName": "a", "externalId": "Xyz"}))
		return err
	})
	e.expectLookup(folded, "externalId", "abc")
	e.expectLookup(folded, "externalId", "XYZ", a)
}

func testCollectionAdded(t *testing.T, open NamedOpener) {
	e := reopen(t, open, nil, "collection", People)
	e.putTenants(tenantA)
	e.insert(People, rec(People, storage.NewID(), obj{"userName": "a"}))
	e = reopen(t, open, e, "collection", People, Teams)
	team := storage.NewID()
	e.insert(Teams, rec(Teams, team, obj{"displayName": "New"}))
	e.expectLookup(Teams, "displayName", "new", team)
	e.expectCounts(People, 1, 0)
	e.expectCounts(Teams, 1, 0)
}
