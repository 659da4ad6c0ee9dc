package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var importTests = []test{
	{"records keep their times and versions", testImportRecords},
	{"events keep their numbers and times", testImportEvents},
}

// importer returns the engine's Importer, skipping the test for an engine without one.
func (e *env) importer() storage.Importer {
	e.t.Helper()
	imp, ok := e.s.(storage.Importer)
	if !ok {
		e.t.Skip("the engine does not implement storage.Importer")
	}
	return imp
}

// importing runs fn in an import transaction over tenantA and returns its error.
func (e *env) importing(fn func(storage.ImportTx) error) error {
	e.t.Helper()
	return e.importer().Import(ctx, tenantA, fn)
}

func testImportRecords(t *testing.T, open Opener) {
	e := newEnv(t, open)
	created := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	modified := created.Add(90 * time.Minute)
	a, b := storage.NewID(), storage.NewID()
	ra := rec(People, a, obj{"userName": "Alice", "emails": emails("a@example.com")})
	ra.Created, ra.Modified, ra.Version, ra.Secret = created, modified, 7, []byte("hash")
	if err := e.importing(func(tx storage.ImportTx) error { return tx.PutRecord(People, ra) }); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	got := e.get(People, a)
	if !bytes.Equal(got.Doc, ra.Doc) || got.Version != 7 || !got.Created.Equal(created) || !got.Modified.Equal(modified) || !bytes.Equal(got.Secret, ra.Secret) {
		t.Errorf("imported record read back as %+v, want version 7 created %v modified %v with its secret", got, created, modified)
	}
	e.expectLookup(People, "userName", "alice", a)
	e.expectLookup(People, "email", "A@example.com", a)
	e.expectCounts(People, 1, 0)

	// A second import of the same id replaces it: keys move, the count stays.
	ra2 := rec(People, a, obj{"userName": "alice2"})
	ra2.Created, ra2.Modified, ra2.Version = created, modified.Add(time.Hour), 8
	if err := e.importing(func(tx storage.ImportTx) error { return tx.PutRecord(People, ra2) }); err != nil {
		t.Fatalf("PutRecord again: %v", err)
	}
	e.expectLookup(People, "userName", "alice")
	e.expectLookup(People, "email", "a@example.com")
	e.expectLookup(People, "userName", "ALICE2", a)
	e.expectCounts(People, 1, 0)
	if got := e.get(People, a); got.Version != 8 {
		t.Errorf("replaced record has version %d, want 8", got.Version)
	}

	// A unique key of another record is a conflict and changes nothing.
	rb := rec(People, b, obj{"userName": "Alice2"})
	rb.Created, rb.Modified, rb.Version = created, created, 1
	err := e.importing(func(tx storage.ImportTx) error { return tx.PutRecord(People, rb) })
	wantCode(t, "PutRecord of a taken userName", err, storage.Conflict)
	e.expectCounts(People, 1, 0)
	e.read(func(tx storage.Tx) error {
		if tx.Exists(People, b) {
			t.Error("a refused import left its record")
		}
		return nil
	})
	// The imported record is an ordinary record after that: an update gives it the next version.
	e.write(func(tx storage.Tx) error {
		r := rec(People, a, obj{"userName": "alice3"})
		stored, err := tx.Update(People, r)
		if err == nil && (stored.Version != 9 || !stored.Created.Equal(created)) {
			t.Errorf("update of an imported record: version %d created %v, want 9 and %v", stored.Version, stored.Created, created)
		}
		return err
	})
	if ids := e.scan(People, storage.Position{}, 0); len(ids) != 1 || ids[0] != a {
		t.Errorf("scan after import: %q", ids)
	}
}

func testImportEvents(t *testing.T, open Opener) {
	e := newEnv(t, open)
	at := time.Date(2022, 1, 2, 3, 4, 5, 6000, time.UTC)
	err := e.importing(func(tx storage.ImportTx) error {
		if last, err := tx.LastSeq(); err != nil || last != 0 {
			t.Errorf("LastSeq of an empty trail: %d, %v", last, err)
		}
		for _, seq := range []uint64{3, 5, 40} {
			ev := storage.Event{Seq: seq, Time: at.Add(time.Duration(seq) * time.Second), Operation: "create", ResourceType: "User", ResourceID: "u", Outcome: "success", Version: seq}
			if err := tx.PutEvent(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("PutEvent: %v", err)
	}
	err = e.importing(func(tx storage.ImportTx) error {
		if last, err := tx.LastSeq(); err != nil || last != 40 {
			t.Errorf("LastSeq: %d, %v; want 40", last, err)
		}
		return tx.PutEvent(storage.Event{Seq: 40, Time: at, Operation: "create", Outcome: "success"})
	})
	wantCode(t, "PutEvent of a number already used", err, storage.Invalid)
	e.write(func(tx storage.Tx) error {
		return tx.Append(storage.Event{Operation: "replace", ResourceType: "User", ResourceID: "u", Outcome: "success"})
	})
	var seqs []uint64
	var times []time.Time
	e.read(func(tx storage.Tx) error {
		return tx.Events(0, func(ev storage.Event) (bool, error) {
			seqs = append(seqs, ev.Seq)
			times = append(times, ev.Time)
			return true, nil
		})
	})
	if len(seqs) != 4 || seqs[0] != 3 || seqs[1] != 5 || seqs[2] != 40 || seqs[3] <= 40 {
		t.Fatalf("trail after import and an append: %v, want 3 5 40 and one after 40", seqs)
	}
	if !times[0].Equal(at.Add(3*time.Second)) || !times[2].Equal(at.Add(40*time.Second)) {
		t.Errorf("imported times %v, want them kept", times[:3])
	}
	e.read(func(tx storage.Tx) error {
		evs, _, err := tx.Trail(storage.TrailQuery{ResourceID: "u"})
		if err != nil || len(evs) != 4 || evs[3].Seq != 3 || evs[3].Version != 3 {
			t.Errorf("the resource's trail: %+v, %v", evs, err)
		}
		return err
	})
}
