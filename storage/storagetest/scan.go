package storagetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

var scanTests = []test{
	{"id order", testScanOrder},
	{"from an id", testScanFrom},
	{"every offset", testScanOffsets},
	{"deep offsets after deletions", testScanDeepOffsets},
}

func testScanOrder(t *testing.T, open Opener) {
	e := newEnv(t, open)
	rng := rand.New(rand.NewPCG(3, 4))
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("id-%03d", i))
	}
	shuffled := slices.Clone(want)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 20 {
		var rs []storage.Record
		for _, id := range shuffled[i : i+20] {
			rs = append(rs, rec(People, id, obj{"userName": "n" + id}))
		}
		e.insert(People, rs...)
	}
	var got []string
	docsOK := true
	e.read(func(tx storage.Tx) error {
		got = nil
		return tx.Scan(People, storage.Position{}, func(r storage.Record) (bool, error) {
			got = append(got, r.ID)
			if name := decode(r.Doc)["userName"]; name != "n"+r.ID || r.Version != 1 || r.Created.IsZero() {
				docsOK = false
			}
			return true, nil
		})
	})
	if !slices.Equal(got, want) {
		t.Errorf("Scan: %v, want %v", got, want)
	}
	if !docsOK {
		t.Error("Scan gave records without their documents or headers")
	}
	if got := e.scan(People, storage.Position{}, 7); !slices.Equal(got, want[:7]) {
		t.Errorf("a scan stopped after 7: %v", got)
	}
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		return tx.Scan(People, storage.Position{}, func(storage.Record) (bool, error) { return true, errSentinel })
	})
	if err != errSentinel {
		t.Errorf("Scan returned %v, not the error of fn", err)
	}
	if got := e.scan(Teams, storage.Position{}, 0); len(got) != 0 {
		t.Errorf("Scan of an empty collection: %v", got)
	}
}

func testScanFrom(t *testing.T, open Opener) {
	e := newEnv(t, open)
	var all []string
	var rs []storage.Record
	for i := range 30 {
		id := fmt.Sprintf("id-%03d", 2*i+10) // even numbers from 10: odd ones fall between
		all = append(all, id)
		rs = append(rs, rec(People, id, obj{"userName": id}))
	}
	e.insert(People, rs...)
	for _, c := range []struct {
		from   storage.Position
		wantAt int // index into all of the first record; len(all): none
	}{
		{storage.Position{}, 0},
		{storage.Position{From: all[5]}, 5},
		{storage.Position{From: "id-021"}, 6}, // between all[5] (020) and all[6] (022)
		{storage.Position{From: "id-000"}, 0}, // before the first
		{storage.Position{From: "a"}, 0},
		{storage.Position{From: "id-999"}, len(all)}, // after the last
		{storage.Position{From: all[29]}, 29},
		{storage.Position{From: all[5], Offset: 3}, 8},
		{storage.Position{From: "id-021", Offset: 1}, 7},
		{storage.Position{From: all[5], Offset: 24}, 29},
		{storage.Position{From: all[5], Offset: 25}, len(all)},
		{storage.Position{Offset: 12}, 12},
		{storage.Position{Offset: 30}, len(all)},
		{storage.Position{Offset: 1000}, len(all)},
	} {
		got := e.scan(People, c.from, 0)
		if want := all[c.wantAt:]; !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("Scan from %+v: %v, want from %d", c.from, got, c.wantAt)
		}
	}
	// Paging by the id after the last one seen reads every record once.
	var paged []string
	from := storage.Position{}
	for range len(all) {
		page := e.scan(People, from, 7)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		from = storage.Position{From: page[len(page)-1], Offset: 1}
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged by id: %v", paged)
	}
}

// firstAt returns the id a scan from position pos reaches first ("" when none).
func (e *env) firstAt(c *storage.Collection, pos storage.Position) string {
	e.t.Helper()
	if got := e.scan(c, pos, 1); len(got) == 1 {
		return got[0]
	}
	return ""
}

// expectPositions checks that a scan from every step-th offset starts at the record there, that
// pages by offset read every record once, and that nothing follows the end.
func (e *env) expectPositions(want []string, step int) {
	e.t.Helper()
	want = slices.Sorted(slices.Values(want))
	for pos := 0; pos < len(want); pos += step {
		if got := e.firstAt(People, storage.Position{Offset: pos}); got != want[pos] {
			e.t.Fatalf("offset %d of %d: got %s, want %s", pos, len(want), got, want[pos])
		}
	}
	if got := e.firstAt(People, storage.Position{Offset: len(want)}); got != "" {
		e.t.Fatalf("offset %d past the end: got %s", len(want), got)
	}
	var paged []string
	for pos := 0; pos < len(want); pos += 500 {
		paged = append(paged, e.scan(People, storage.Position{Offset: pos}, 500)...)
	}
	if !slices.Equal(paged, want) {
		e.t.Fatalf("pages of 500 by offset: %d ids, want %d (first difference at %d)", len(paged), len(want), firstDiff(paged, want))
	}
	e.read(func(tx storage.Tx) error {
		if tx.Count(People) != len(want) {
			e.t.Errorf("count %d, want %d", tx.Count(People), len(want))
		}
		return nil
	})
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// create inserts n people with ids from id, in one transaction, and returns the ids.
func (e *env) create(n int, id func() string) []string {
	e.t.Helper()
	var out []string
	e.write(func(tx storage.Tx) error {
		out = out[:0]
		for range n {
			r := rec(People, id(), obj{"userName": storage.NewID()})
			if _, err := tx.Insert(People, r); err != nil {
				return err
			}
			out = append(out, r.ID)
		}
		return nil
	})
	return out
}

func (e *env) deleteAll(gone []string) {
	e.t.Helper()
	e.write(func(tx storage.Tx) error {
		for _, id := range gone {
			if err := tx.Delete(People, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func testScanOffsets(t *testing.T, open Opener) {
	e := newEnv(t, open)
	all := e.create(25, storage.NewID)
	e.expectPositions(all, 1)
	e.deleteAll([]string{all[0], all[7], all[24]})
	e.expectPositions(slices.Concat(all[1:7], all[8:24]), 1)
}

// testScanDeepOffsets reaches every position of thousands of records created in id order and
// out of it (ids below all others, ids among others), and again after deletions at random and
// of whole runs, the way a listing pages through a large collection.
func testScanDeepOffsets(t *testing.T, open Opener) {
	e := newEnv(t, open)
	rng := rand.New(rand.NewPCG(1, 2))
	randomID := func() string { return fmt.Sprintf("%016x", rng.Uint64()) } // sorts anywhere
	low := 0
	lowID := func() string { low++; return fmt.Sprintf("0000%04d", low) } // sorts below all
	var all []string
	for range 3 {
		all = append(all, e.create(1024, storage.NewID)...)
	}
	all = append(all, e.create(10, storage.NewID)...)
	e.expectPositions(all, 7)
	all = append(all, e.create(1100, randomID)...)
	e.expectPositions(all, 3)
	all = append(all, e.create(20, lowID)...)
	e.expectPositions(all, 5)
	for round := range 3 {
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		e.deleteAll(all[:len(all)/3])
		all = all[len(all)/3:]
		e.expectPositions(all, 1+round)
		all = append(all, e.create(700, storage.NewID)...)
		e.expectPositions(all, 3)
	}
	// A whole run of the lowest ids goes.
	slices.Sort(all)
	e.deleteAll(all[:1500])
	all = all[1500:]
	e.expectPositions(all, 2)
	e.read(func(tx storage.Tx) error {
		if tx.Deletes(People) == 0 {
			t.Error("no deletes counted")
		}
		return nil
	})
}
