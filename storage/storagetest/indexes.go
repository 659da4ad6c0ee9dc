package storagetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

var indexTests = []test{
	{"unique folded", testUniqueFolded},
	{"unique keys move within a transaction", testUniqueMoves},
	{"exact", testExact},
	{"folded multi-valued", testFoldedMulti},
	{"exact multi-valued", testExactMulti},
	{"empty keys are not indexed", testEmptyKeys},
	{"lookup in id order", testLookupOrder},
	{"keys that contain separators", testKeySeparators},
	{"failed update leaves the keys", testFailedUpdate},
	{"uniqueness under racing inserts", testUniqueRaceInsert},
	{"uniqueness under racing updates", testUniqueRaceUpdate},
	{"scan a unique index", testScanIndex},
	{"unknown index or collection", testUnknownIndex},
}

func testUniqueFolded(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "Alice"}), rec(People, b, obj{"userName": "bob"}))
	for _, key := range []string{"alice", "ALICE", "Alice", "aLiCe"} {
		e.expectLookup(People, "userName", key, a)
	}
	e.expectLookup(People, "userName", "alic")
	e.expectLookup(People, "userName", "alicee")
	for _, name := range []string{"alice", "ALICE", "Bob"} {
		err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
			_, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": name}))
			return err
		})
		wantCode(t, "insert of a taken userName "+name, err, storage.Conflict)
	}
	err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, b, obj{"userName": "ALICE"}))
		return err
	})
	wantCode(t, "update to a taken userName", err, storage.Conflict)
	// A record may change the case of its own key.
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "ALICE"}))
		return err
	})
	e.expectLookup(People, "userName", "alice", a)
	e.expectLookup(People, "userName", "bob", b)
	// Teams: the same name as a person is no conflict (indexes are per collection).
	e.insert(Teams, rec(Teams, storage.NewID(), obj{"displayName": "Alice"}))
	e.expectCounts(People, 2, 0)
}

// testUniqueMoves: a key freed in a transaction can be taken in the same transaction, and two
// records can swap keys.
func testUniqueMoves(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b, c := storage.NewID(), storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "p"}), rec(People, b, obj{"userName": "q"}))
	e.write(func(tx storage.Tx) error {
		steps := []storage.Record{
			rec(People, a, obj{"userName": "tmp"}),
			rec(People, b, obj{"userName": "P"}),
			rec(People, a, obj{"userName": "q"}),
		}
		for _, r := range steps {
			if _, err := tx.Update(People, r); err != nil {
				return err
			}
		}
		return nil
	})
	e.expectLookup(People, "userName", "p", b)
	e.expectLookup(People, "userName", "q", a)
	e.expectLookup(People, "userName", "tmp")
	e.write(func(tx storage.Tx) error {
		if err := tx.Delete(People, a); err != nil {
			return err
		}
		_, err := tx.Insert(People, rec(People, c, obj{"userName": "Q"}))
		return err
	})
	e.expectLookup(People, "userName", "q", c)
}

func testExact(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b, c := storage.NewID(), storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "externalId": "X1"}),
		rec(People, b, obj{"userName": "b", "externalId": "X1"}),
		rec(People, c, obj{"userName": "c", "externalId": "x1"}))
	e.expectLookup(People, "externalId", "X1", a, b)
	e.expectLookup(People, "externalId", "x1", c)
	e.expectLookup(People, "externalId", "X")
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "a", "externalId": "x1"}))
		return err
	})
	e.expectLookup(People, "externalId", "X1", b)
	e.expectLookup(People, "externalId", "x1", a, c)
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, b, obj{"userName": "b"}))
		return err
	})
	e.expectLookup(People, "externalId", "X1")
	e.insert(Teams, rec(Teams, storage.NewID(), obj{"displayName": "t", "externalId": "x1"}))
	e.expectLookup(People, "externalId", "x1", a, c)
}

func testFoldedMulti(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "emails": emails("A@X.com", "a@x.COM", "Shared@Y")}),
		rec(People, b, obj{"userName": "b", "emails": emails("shared@y")}))
	e.expectLookup(People, "email", "a@x.com", a)
	e.expectLookup(People, "email", "A@X.COM", a)
	e.expectLookup(People, "email", "SHARED@y", a, b)
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "a", "emails": emails("new@x")}))
		return err
	})
	e.expectLookup(People, "email", "a@x.com")
	e.expectLookup(People, "email", "shared@y", b)
	e.expectLookup(People, "email", "NEW@X", a)
	e.write(func(tx storage.Tx) error { return tx.Delete(People, b) })
	e.expectLookup(People, "email", "shared@y")
}

func testExactMulti(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "tags": strs("red", "Red", "red")}),
		rec(People, b, obj{"userName": "b", "tags": strs("red", "blue")}))
	e.expectLookup(People, "tag", "red", a, b)
	e.expectLookup(People, "tag", "Red", a)
	e.expectLookup(People, "tag", "RED")
	e.expectLookup(People, "tag", "blue", b)
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "a", "tags": strs("red")}))
		return err
	})
	e.expectLookup(People, "tag", "Red")
	e.expectLookup(People, "tag", "red", a, b)
}

func testEmptyKeys(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "", "externalId": "", "emails": emails(""), "tags": strs("")}),
		rec(People, b, obj{"userName": "", "externalId": "", "emails": emails("", "b@x")}))
	for _, ix := range []string{"userName", "externalId", "email", "tag"} {
		e.expectLookup(People, ix, "")
	}
	e.expectLookup(People, "email", "b@x", b)
	var scanned []string
	e.read(func(tx storage.Tx) error {
		scanned = nil
		return tx.ScanIndex(People, "userName", false, 0, func(id string) (bool, error) {
			scanned = append(scanned, id)
			return true, nil
		})
	})
	if len(scanned) != 0 {
		t.Errorf("the userName index holds %v for empty names", scanned)
	}
	// Emptying a key removes it; the key it had is free again.
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "taken"}))
		return err
	})
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": ""}))
		return err
	})
	e.expectLookup(People, "userName", "taken")
	e.insert(People, rec(People, storage.NewID(), obj{"userName": "TAKEN"}))
}

func testLookupOrder(t *testing.T, open Opener) {
	e := newEnv(t, open)
	want := []string{"id-01", "id-02", "id-03", "id-04", "id-05", "id-06"}
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		e.insert(People, rec(People, want[i], obj{"userName": want[i], "tags": strs("all"), "emails": emails("All@x")}))
	}
	e.expectLookup(People, "tag", "all", want...)
	e.expectLookup(People, "email", "all@X", want...)
}

// testKeySeparators: keys that contain NUL bytes or that are prefixes of one another find
// exactly their records.
func testKeySeparators(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b, c := storage.NewID(), storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "externalId": "k\x00" + b, "tags": strs("k")}),
		rec(People, b, obj{"userName": "a\x00b", "externalId": "k", "tags": strs("kk")}),
		rec(People, c, obj{"userName": "c", "externalId": "k\x00", "tags": strs("k\x00")}))
	e.expectLookup(People, "externalId", "k", b)
	e.expectLookup(People, "externalId", "k\x00"+b, a)
	e.expectLookup(People, "externalId", "k\x00", c)
	e.expectLookup(People, "tag", "k", a)
	e.expectLookup(People, "tag", "kk", b)
	e.expectLookup(People, "tag", "k\x00", c)
	e.expectLookup(People, "userName", "a", a)
	e.expectLookup(People, "userName", "A\x00B", b)
}

// testFailedUpdate: an update refused for a taken key leaves the record and every index as they
// were, even when the transaction carries on and commits.
func testFailedUpdate(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People,
		rec(People, a, obj{"userName": "a", "externalId": "xa", "emails": emails("a@x"), "tags": strs("ta")}),
		rec(People, b, obj{"userName": "b"}))
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, a, obj{"userName": "B", "externalId": "xb", "emails": emails("b@x"), "tags": strs("tb")}))
		if storage.ErrorCode(err) != storage.Conflict {
			return fmt.Errorf("update to a taken userName: %v", err)
		}
		return nil
	})
	e.expectLookup(People, "externalId", "xa", a)
	e.expectLookup(People, "externalId", "xb")
	e.expectLookup(People, "email", "a@x", a)
	e.expectLookup(People, "email", "b@x")
	e.expectLookup(People, "tag", "ta", a)
	e.expectLookup(People, "tag", "tb")
	e.expectLookup(People, "userName", "a", a)
	e.expectLookup(People, "userName", "b", b)
	if got := e.get(People, a); got.Version != 1 {
		t.Errorf("a refused update gave version %d", got.Version)
	}
}

// testUniqueRaceInsert: writers racing to insert the same unique key: exactly one wins.
func testUniqueRaceInsert(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const n = 20
	candidates := ids(n)
	errs := e.concurrently(n, func(i int) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			_, err := tx.Insert(People, rec(People, candidates[i], obj{"userName": []string{"race", "RACE", "Race"}[i%3]}))
			return err
		}
	})
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner == "":
			winner = candidates[i]
		case err == nil:
			t.Errorf("two writers inserted the same userName")
		default:
			wantCode(t, "a losing insert", err, storage.Conflict)
		}
	}
	if winner == "" {
		t.Fatal("no writer inserted the userName")
	}
	e.expectLookup(People, "userName", "race", winner)
	e.expectCounts(People, 1, 0)
}

// testUniqueRaceUpdate: writers racing to rename their records to the same key: exactly one wins.
func testUniqueRaceUpdate(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const n = 12
	people := ids(n)
	for i, id := range people {
		e.insert(People, rec(People, id, obj{"userName": fmt.Sprintf("u%d", i)}))
	}
	errs := e.concurrently(n, func(i int) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			_, err := tx.Update(People, rec(People, people[i], obj{"userName": "wanted"}))
			return err
		}
	})
	var winners []string
	for i, err := range errs {
		if err == nil {
			winners = append(winners, people[i])
		} else {
			wantCode(t, "a losing update", err, storage.Conflict)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers renamed to the same userName", len(winners))
	}
	e.expectLookup(People, "userName", "wanted", winners...)
	for i, id := range people {
		if id != winners[0] {
			e.expectLookup(People, "userName", fmt.Sprintf("u%d", i), id)
		}
	}
}

func testScanIndex(t *testing.T, open Opener) {
	e := newEnv(t, open)
	names := map[string]string{} // id -> name
	var all []string
	for _, name := range []string{"dave", "Bob", "alice", "Carol", "eve"} {
		id := storage.NewID()
		names[id] = name
		all = append(all, id)
		e.insert(People, rec(People, id, obj{"userName": name}))
	}
	scan := func(descending bool, skip, limit int) []string {
		var out []string
		e.read(func(tx storage.Tx) error {
			out = nil
			return tx.ScanIndex(People, "userName", descending, skip, func(id string) (bool, error) {
				out = append(out, names[id])
				return limit == 0 || len(out) < limit, nil
			})
		})
		return out
	}
	for _, c := range []struct {
		descending  bool
		skip, limit int
		want        []string
	}{
		{false, 0, 0, []string{"alice", "Bob", "Carol", "dave", "eve"}},
		{true, 0, 0, []string{"eve", "dave", "Carol", "Bob", "alice"}},
		{false, 2, 0, []string{"Carol", "dave", "eve"}},
		{true, 1, 2, []string{"dave", "Carol"}},
		{false, 4, 0, []string{"eve"}},
		{false, 5, 0, nil},
		{true, 9, 0, nil},
	} {
		if got := scan(c.descending, c.skip, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("ScanIndex descending=%v skip=%d limit=%d: %v, want %v", c.descending, c.skip, c.limit, got, c.want)
		}
	}
	// A rename moves the record in the order.
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, all[2], obj{"userName": "zed"}))
		return err
	})
	names[all[2]] = "zed"
	if got := scan(false, 0, 0); !slices.Equal(got, []string{"Bob", "Carol", "dave", "eve", "zed"}) {
		t.Errorf("after a rename: %v", got)
	}
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		return tx.ScanIndex(People, "userName", false, 0, func(string) (bool, error) { return true, errSentinel })
	})
	if err != errSentinel {
		t.Errorf("ScanIndex returned %v, not the error of fn", err)
	}
	err = e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		return tx.ScanIndex(People, "tag", false, 0, func(string) (bool, error) { return true, nil })
	})
	if err == nil {
		t.Error("ScanIndex of an index that is not unique succeeded")
	}
}

func testUnknownIndex(t *testing.T, open Opener) {
	e := newEnv(t, open)
	undeclared := &storage.Collection{Name: "undeclared"}
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		if _, err := tx.Lookup(People, "nickName", "x"); err == nil {
			return fmt.Errorf("a lookup through an undeclared index succeeded")
		}
		if _, err := tx.Lookup(undeclared, "userName", "x"); err == nil {
			return fmt.Errorf("a lookup in an undeclared collection succeeded")
		}
		if _, err := tx.Get(undeclared, "x"); err == nil {
			return fmt.Errorf("a get in an undeclared collection succeeded")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	err = e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
		_, err := tx.Insert(undeclared, storage.Record{ID: storage.NewID(), Doc: []byte(`{}`)})
		return err
	})
	if err == nil {
		t.Error("Insert into an undeclared collection succeeded")
	}
}
