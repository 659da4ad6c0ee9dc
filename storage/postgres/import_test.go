package postgres_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// TestImport: records and events come in as another store kept them (times, versions, seqs),
// with their index entries and counts, and the store carries on from them.
func TestImport(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.URL(t), []*storage.Collection{storagetest.People})
	if err := s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		return a.PutTenant(storage.Tenant{ID: "t", Name: "t", Created: a.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	people := storagetest.People
	created := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	modified := created.Add(time.Hour)
	a, b := storage.NewID(), storage.NewID()
	rec := func(id, name string) storage.Record {
		doc := map[string]any{"userName": name}
		return storage.Record{ID: id, Doc: []byte(`{"userName":"` + name + `"}`), Keys: people.KeysOf(doc),
			Secret: []byte("s"), Created: created, Modified: modified, Version: 7}
	}
	evTime := created.Add(2 * time.Hour)
	err := s.Import(ctx, "t", func(tx storage.ImportTx) error {
		if n, err := tx.LastSeq(); n != 0 || err != nil {
			t.Errorf("LastSeq of an empty trail: %d %v", n, err)
		}
		if err := tx.PutRecord(people, rec(a, "Alice")); err != nil {
			return err
		}
		if err := tx.PutRecord(people, rec(b, "bob")); err != nil {
			return err
		}
		if err := tx.PutRecord(people, rec(b, "ALICE")); storage.ErrorCode(err) != storage.Conflict {
			t.Errorf("a record taking another's unique key: %v", err)
		}
		// Replacing keeps one record and moves its keys.
		r := rec(b, "robert")
		r.Version = 9
		if err := tx.PutRecord(people, r); err != nil {
			return err
		}
		if err := tx.PutEvent(storage.Event{Seq: 40, Time: evTime, Operation: "create", ResourceID: a, Outcome: "success"}); err != nil {
			return err
		}
		if err := tx.PutEvent(storage.Event{Seq: 40, Time: evTime, Operation: "again", Outcome: "success"}); storage.ErrorCode(err) != storage.Invalid {
			t.Errorf("an event whose seq does not follow the trail's: %v", err)
		}
		if n, err := tx.LastSeq(); n != 40 || err != nil {
			t.Errorf("LastSeq after an import: %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, "t", func(tx storage.Tx) error {
		return tx.Append(storage.Event{Operation: "later", Outcome: "success"})
	}); err != nil {
		t.Fatal(err)
	}
	err = s.Read(ctx, "t", func(tx storage.Tx) error {
		got, err := tx.Get(people, a)
		if err != nil || got.Version != 7 || !got.Created.Equal(created) || !got.Modified.Equal(modified) || !bytes.Equal(got.Secret, []byte("s")) {
			t.Errorf("an imported record: %+v %v", got, err)
		}
		if got, err := tx.Get(people, b); err != nil || got.Version != 9 {
			t.Errorf("a replaced record: %+v %v", got, err)
		}
		for key, want := range map[string][]string{"alice": {a}, "bob": nil, "ROBERT": {b}} {
			if ids, err := tx.Lookup(people, "userName", key); err != nil || !slices.Equal(ids, want) {
				t.Errorf("userName %s: %v %v, want %v", key, ids, err, want)
			}
		}
		if tx.Count(people) != 2 {
			t.Errorf("count %d, want 2", tx.Count(people))
		}
		var evs []storage.Event
		if err := tx.Events(0, func(ev storage.Event) (bool, error) { evs = append(evs, ev); return true, nil }); err != nil {
			return err
		}
		if len(evs) != 2 || evs[0].Seq != 40 || !evs[0].Time.Equal(evTime) || evs[1].Seq != 41 || evs[1].Time.Before(evTime) {
			t.Errorf("the trail after an import and an append: %+v", evs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("check after an import: %v %v", problems, err)
	}
}
