package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var recordTests = []test{
	{"insert and get", testInsertGet},
	{"insert of a used id", testInsertConflict},
	{"update", testUpdate},
	{"one version per transaction", testOneVersionPerTransaction},
	{"touch", testTouch},
	{"delete", testDelete},
	{"secrets", testSecrets},
	{"counts per collection", testCounts},
	{"read transactions do not write", testReadOnly},
}

func testInsertGet(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	r := rec(People, id, obj{"userName": "alice", "name": obj{"givenName": "Alice"}})
	var now time.Time
	var stored storage.Record
	e.write(func(tx storage.Tx) error {
		var err error
		now = tx.Now()
		stored, err = tx.Insert(People, r)
		return err
	})
	if stored.ID != id || !bytes.Equal(stored.Doc, r.Doc) || stored.Version != 1 ||
		!stored.Created.Equal(now) || !stored.Modified.Equal(now) {
		t.Errorf("Insert returned %+v, want version 1 created and modified at %v", stored, now)
	}
	got := e.get(People, id)
	if got.ID != id || !bytes.Equal(got.Doc, r.Doc) || got.Version != 1 || !got.Created.Equal(now) || !got.Modified.Equal(now) {
		t.Errorf("Get returned %+v, want %s %s version 1 at %v", got, id, r.Doc, now)
	}
	e.read(func(tx storage.Tx) error {
		if !tx.Exists(People, id) || tx.Exists(People, storage.NewID()) || tx.Exists(Teams, id) {
			t.Error("Exists: wrong answer for a stored id, an unknown id or another collection")
		}
		if _, err := tx.Get(People, storage.NewID()); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("Get of an unknown id: %v", err)
		}
		if _, err := tx.Get(Teams, id); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("Get from another collection: %v", err)
		}
		if tx.Count(People) != 1 || tx.Count(Teams) != 0 || tx.Deletes(People) != 0 {
			t.Errorf("counts %d %d, deletes %d", tx.Count(People), tx.Count(Teams), tx.Deletes(People))
		}
		if tx.Tenant() != tenantA {
			t.Errorf("Tenant() = %q", tx.Tenant())
		}
		return nil
	})
	e.expectLookup(People, "userName", "alice", id)
}

func testInsertConflict(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	e.insert(People, rec(People, id, obj{"userName": "first", "tags": strs("a")}))
	err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
		_, err := tx.Insert(People, rec(People, id, obj{"userName": "second", "tags": strs("b")}))
		return err
	})
	wantCode(t, "insert of a used id", err, storage.Conflict)
	// A failed insert leaves nothing even when the transaction carries on and commits.
	e.write(func(tx storage.Tx) error {
		_, err := tx.Insert(People, rec(People, id, obj{"userName": "third", "tags": strs("c")}))
		if storage.ErrorCode(err) != storage.Conflict {
			return fmt.Errorf("insert of a used id: %v", err)
		}
		return nil
	})
	if got := e.get(People, id); !bytes.Contains(got.Doc, []byte(`"first"`)) || got.Version != 1 {
		t.Errorf("the first record changed: %s version %d", got.Doc, got.Version)
	}
	e.expectLookup(People, "userName", "first", id)
	e.expectLookup(People, "userName", "second")
	e.expectLookup(People, "userName", "third")
	e.expectLookup(People, "tag", "c")
	e.expectCounts(People, 1, 0)
}

func testUpdate(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	var created time.Time
	e.write(func(tx storage.Tx) error {
		created = tx.Now()
		_, err := tx.Insert(People, rec(People, id, obj{"userName": "alice", "externalId": "x1"}))
		return err
	})
	var now time.Time
	var updated storage.Record
	next := rec(People, id, obj{"userName": "alice2", "externalId": "x2", "title": "boss"})
	e.write(func(tx storage.Tx) error {
		var err error
		now = tx.Now()
		updated, err = tx.Update(People, next)
		return err
	})
	if updated.Version != 2 || !updated.Created.Equal(created) || !updated.Modified.Equal(now) || !bytes.Equal(updated.Doc, next.Doc) {
		t.Errorf("Update returned %+v, want version 2, created %v, modified %v", updated, created, now)
	}
	got := e.get(People, id)
	if got.Version != 2 || !got.Created.Equal(created) || !got.Modified.Equal(now) || !bytes.Equal(got.Doc, next.Doc) {
		t.Errorf("after Update, Get returned %+v", got)
	}
	if !now.After(created) && !now.Equal(created) {
		t.Errorf("the second transaction's clock %v is before the first's %v", now, created)
	}
	e.expectLookup(People, "userName", "alice")
	e.expectLookup(People, "userName", "alice2", id)
	e.expectLookup(People, "externalId", "x1")
	e.expectLookup(People, "externalId", "x2", id)
	err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, storage.NewID(), obj{"userName": "ghost"}))
		return err
	})
	wantCode(t, "update of an unknown id", err, storage.NotFound)
	e.expectLookup(People, "userName", "ghost")
	e.expectCounts(People, 1, 0)
}

// testOneVersionPerTransaction: however often a transaction updates and touches a record, the
// record gets one new version; a record inserted in the transaction stays at version 1.
func testOneVersionPerTransaction(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "a"}))
	e.write(func(tx storage.Tx) error {
		for i, step := range []string{"update", "touch", "update", "touch", "update"} {
			if step == "touch" {
				if err := tx.Touch(People, a); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Update(People, rec(People, a, obj{"userName": fmt.Sprintf("a%d", i)})); err != nil {
				return err
			}
		}
		return nil
	})
	if got := e.get(People, a); got.Version != 2 || !bytes.Contains(got.Doc, []byte(`"a4"`)) {
		t.Errorf("after three updates and two touches in one transaction: version %d, doc %s; want version 2, the last doc", got.Version, got.Doc)
	}
	e.write(func(tx storage.Tx) error {
		if err := tx.Touch(People, a); err != nil {
			return err
		}
		_, err := tx.Update(People, rec(People, a, obj{"userName": "a5"}))
		return err
	})
	if got := e.get(People, a); got.Version != 3 || !bytes.Contains(got.Doc, []byte(`"a5"`)) {
		t.Errorf("after a touch then an update in one transaction: version %d, doc %s; want version 3", got.Version, got.Doc)
	}
	// A touch of an earlier transaction, then an update and a touch in one: one new version each
	// (the earlier touch is not taken for one of this transaction).
	e.write(func(tx storage.Tx) error { return tx.Touch(People, a) })
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Update(People, rec(People, a, obj{"userName": "a6"})); err != nil {
			return err
		}
		return tx.Touch(People, a)
	})
	if got := e.get(People, a); got.Version != 5 || !bytes.Contains(got.Doc, []byte(`"a6"`)) {
		t.Errorf("a touch, then an update and a touch in one transaction: version %d, doc %s; want version 5", got.Version, got.Doc)
	}
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, b, obj{"userName": "b"})); err != nil {
			return err
		}
		if err := tx.Touch(People, b); err != nil {
			return err
		}
		_, err := tx.Update(People, rec(People, b, obj{"userName": "b2"}))
		return err
	})
	if got := e.get(People, b); got.Version != 1 || !bytes.Contains(got.Doc, []byte(`"b2"`)) {
		t.Errorf("inserted, touched and updated in one transaction: version %d, doc %s; want version 1", got.Version, got.Doc)
	}
	e.expectLookup(People, "userName", "b2", b)
	e.expectLookup(People, "userName", "b")
	// Every later transaction gives a new version, however close in time.
	for i := 0; i < 5; i++ {
		e.write(func(tx storage.Tx) error { return tx.Touch(People, b) })
	}
	if got := e.get(People, b); got.Version != 6 {
		t.Errorf("after five touches in five transactions: version %d, want 6", got.Version)
	}
}

func testTouch(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	r := rec(People, id, obj{"userName": "alice", "emails": emails("a@example.com"), "tags": strs("t")})
	r.Secret = []byte("hash")
	e.insert(People, r)
	before := e.get(People, id)
	var now time.Time
	e.write(func(tx storage.Tx) error {
		now = tx.Now()
		return tx.Touch(People, id)
	})
	got := e.get(People, id)
	if got.Version != 2 || !got.Modified.Equal(now) || !got.Created.Equal(before.Created) ||
		!bytes.Equal(got.Doc, before.Doc) || !bytes.Equal(got.Secret, r.Secret) {
		t.Errorf("after Touch: %+v; want version 2 modified at %v, the same document and secret", got, now)
	}
	e.expectLookup(People, "userName", "ALICE", id)
	e.expectLookup(People, "email", "a@example.com", id)
	e.expectLookup(People, "tag", "t", id)
	err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error { return tx.Touch(People, storage.NewID()) })
	wantCode(t, "touch of an unknown id", err, storage.NotFound)
}

func testDelete(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "externalId": "xa", "emails": emails("a@x"), "tags": strs("t")}),
		rec(People, b, obj{"userName": "b", "tags": strs("t")}))
	e.write(func(tx storage.Tx) error { return tx.Delete(People, a) })
	e.read(func(tx storage.Tx) error {
		if tx.Exists(People, a) || !tx.Exists(People, b) {
			t.Error("after Delete: the deleted record exists or the other does not")
		}
		if _, err := tx.Get(People, a); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("Get of a deleted record: %v", err)
		}
		if tx.Count(People) != 1 || tx.Deletes(People) != 1 || tx.Deletes(Teams) != 0 {
			t.Errorf("after one delete: count %d, deletes %d (teams %d)", tx.Count(People), tx.Deletes(People), tx.Deletes(Teams))
		}
		return nil
	})
	e.expectLookup(People, "userName", "a")
	e.expectLookup(People, "externalId", "xa")
	e.expectLookup(People, "email", "a@x")
	e.expectLookup(People, "tag", "t", b)
	err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error { return tx.Delete(People, a) })
	wantCode(t, "delete of a deleted record", err, storage.NotFound)
	// The id and its keys can be used again.
	e.insert(People, rec(People, a, obj{"userName": "a", "tags": strs("u")}))
	e.expectLookup(People, "userName", "A", a)
	e.expectLookup(People, "tag", "u", a)
	e.expectCounts(People, 2, 1)
	// Deleting in the transaction that inserted leaves nothing but the count of deletes.
	c := storage.NewID()
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, c, obj{"userName": "c", "tags": strs("v")})); err != nil {
			return err
		}
		return tx.Delete(People, c)
	})
	e.expectLookup(People, "userName", "c")
	e.expectLookup(People, "tag", "v")
	e.read(func(tx storage.Tx) error {
		if tx.Exists(People, c) || tx.Count(People) != 2 || tx.Deletes(People) != 2 {
			t.Errorf("insert and delete in one transaction: exists %v, count %d, deletes %d", tx.Exists(People, c), tx.Count(People), tx.Deletes(People))
		}
		return nil
	})
}

func testSecrets(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	r := rec(People, id, obj{"userName": "s"})
	r.Secret = []byte("$argon2id$first")
	e.insert(People, r)
	if got := e.get(People, id); !bytes.Equal(got.Secret, r.Secret) || bytes.Contains(got.Doc, r.Secret) {
		t.Errorf("secret after insert: %q (doc %s)", got.Secret, got.Doc)
	}
	r.Secret = []byte("$argon2id$second")
	e.write(func(tx storage.Tx) error { _, err := tx.Update(People, r); return err })
	if got := e.get(People, id); !bytes.Equal(got.Secret, r.Secret) {
		t.Errorf("secret after update: %q", got.Secret)
	}
	var scanned []byte
	e.read(func(tx storage.Tx) error {
		return tx.Scan(People, storage.Position{}, func(r storage.Record) (bool, error) {
			scanned = r.Secret
			return false, nil
		})
	})
	if !bytes.Equal(scanned, r.Secret) {
		t.Errorf("secret through Scan: %q", scanned)
	}
	r.Secret = nil
	e.write(func(tx storage.Tx) error { _, err := tx.Update(People, r); return err })
	if got := e.get(People, id); len(got.Secret) != 0 {
		t.Errorf("an update without a secret kept %q", got.Secret)
	}
}

func testCounts(t *testing.T, open Opener) {
	e := newEnv(t, open)
	people, teams := ids(5), ids(3)
	for _, id := range people {
		e.insert(People, rec(People, id, obj{"userName": id}))
	}
	for _, id := range teams {
		e.insert(Teams, rec(Teams, id, obj{"displayName": id}))
	}
	e.write(func(tx storage.Tx) error {
		if err := tx.Delete(People, people[0]); err != nil {
			return err
		}
		return tx.Delete(Teams, teams[1])
	})
	e.expectCounts(People, 4, 1)
	e.expectCounts(Teams, 2, 1)
	if got := e.scan(Teams, storage.Position{}, 0); len(got) != 2 || got[0] != teams[0] || got[1] != teams[2] {
		t.Errorf("teams %v, want %v and %v", got, teams[0], teams[2])
	}
}

// testReadOnly: every write in a read transaction fails and changes nothing.
func testReadOnly(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	e.insert(People, rec(People, id, obj{"userName": "r"}))
	writes := map[string]func(storage.Tx) error{
		"Insert": func(tx storage.Tx) error {
			_, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": "new"}))
			return err
		},
		"Update": func(tx storage.Tx) error {
			_, err := tx.Update(People, rec(People, id, obj{"userName": "changed"}))
			return err
		},
		"Touch":     func(tx storage.Tx) error { return tx.Touch(People, id) },
		"Delete":    func(tx storage.Tx) error { return tx.Delete(People, id) },
		"AddMember": func(tx storage.Tx) error { return tx.AddMember("g", storage.Member{Value: id, Type: "User"}) },
		"PutFacts":  func(tx storage.Tx) error { return tx.PutFacts(id, storage.Facts{Interactions: 1}) },
		"AddParticipant": func(tx storage.Tx) error {
			_, _, err := tx.AddParticipant("c", id)
			return err
		},
		"Append": func(tx storage.Tx) error { return tx.Append(storage.Event{Operation: "op", Outcome: "success"}) },
	}
	for name, fn := range writes {
		err := e.s.Read(ctx, tenantA, fn)
		if err == nil {
			t.Errorf("%s in a read transaction succeeded", name)
		}
	}
	got := e.get(People, id)
	e.read(func(tx storage.Tx) error {
		n, err := tx.TrailLength()
		f, _ := tx.Facts(id)
		gs, _ := tx.MemberOf(id)
		if tx.Count(People) != 1 || got.Version != 1 || !bytes.Contains(got.Doc, []byte(`"r"`)) || n != 0 || f.Interactions != 0 || len(gs) != 0 {
			t.Errorf("read transactions changed data: count %d, version %d, trail %d (%v), facts %+v, groups %v", tx.Count(People), got.Version, n, err, f, gs)
		}
		return nil
	})
}

// errSentinel is a failure of a write function, which Write must return as it is.
var errSentinel = errors.New("the write function failed")
