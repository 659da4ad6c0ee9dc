package storagetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var factTests = []test{
	{"round trip", testFacts},
	{"participants", testParticipants},
	{"read-check-write is atomic", testFactsCounter},
}

func (e *env) facts(user string) storage.Facts {
	e.t.Helper()
	var f storage.Facts
	e.read(func(tx storage.Tx) error {
		var err error
		f, err = tx.Facts(user)
		return err
	})
	return f
}

func sameFacts(a, b storage.Facts) bool {
	same := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Interactions == b.Interactions && a.Campaigns == b.Campaigns && same(a.FirstInteractionAt, b.FirstInteractionAt) &&
		same(a.LastInteractionAt, b.LastInteractionAt) && same(a.AnonymizedAt, b.AnonymizedAt)
}

func testFacts(t *testing.T, open Opener) {
	e := newEnv(t, open)
	if f := e.facts("u1"); !sameFacts(f, storage.Facts{}) {
		t.Errorf("facts of a user nothing was reported about: %+v", f)
	}
	first := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	last := first.Add(36 * time.Hour).In(time.FixedZone("X", 3600))
	anon := first.Add(72 * time.Hour)
	full := storage.Facts{FirstInteractionAt: &first, LastInteractionAt: &last, Interactions: 7, Campaigns: 2, AnonymizedAt: &anon}
	e.write(func(tx storage.Tx) error {
		if err := tx.PutFacts("u1", full); err != nil {
			return err
		}
		return tx.PutFacts("u2", storage.Facts{Campaigns: 1})
	})
	if f := e.facts("u1"); !sameFacts(f, full) {
		t.Errorf("facts: %+v, want %+v", f, full)
	}
	if f := e.facts("u2"); !sameFacts(f, storage.Facts{Campaigns: 1}) {
		t.Errorf("another user's facts: %+v", f)
	}
	// PutFacts replaces: what it leaves out is gone.
	e.write(func(tx storage.Tx) error { return tx.PutFacts("u1", storage.Facts{Interactions: 8}) })
	if f := e.facts("u1"); !sameFacts(f, storage.Facts{Interactions: 8}) {
		t.Errorf("replaced facts: %+v", f)
	}
}

func testParticipants(t *testing.T, open Opener) {
	e := newEnv(t, open)
	type result struct{ added, first bool }
	step := func(fn func(storage.Tx) (result, error)) result {
		t.Helper()
		var r result
		e.write(func(tx storage.Tx) error {
			var err error
			r, err = fn(tx)
			return err
		})
		return r
	}
	add := func(campaign, user string) result {
		t.Helper()
		return step(func(tx storage.Tx) (result, error) {
			added, first, err := tx.AddParticipant(campaign, user)
			return result{added, first}, err
		})
	}
	remove := func(campaign, user string) bool {
		t.Helper()
		return step(func(tx storage.Tx) (result, error) {
			removed, err := tx.RemoveParticipant(campaign, user)
			return result{added: removed}, err
		}).added
	}
	campaigns := func(user string) []string {
		t.Helper()
		var out []string
		e.read(func(tx storage.Tx) error {
			var err error
			out, err = storage.Campaigns(tx, user)
			return err
		})
		slices.Sort(out)
		return out
	}
	participations := func(user string) []storage.Participation {
		t.Helper()
		var out []storage.Participation
		e.read(func(tx storage.Tx) error {
			var err error
			out, err = tx.Participations(user)
			return err
		})
		return out
	}
	if r := add("c1", "u1"); r != (result{true, true}) {
		t.Errorf("first assignment: %+v, want added and first", r)
	}
	if r := add("c1", "u1"); r != (result{false, false}) {
		t.Errorf("repeated assignment: %+v, want neither", r)
	}
	if r := add("c1", "u2"); r != (result{true, true}) {
		t.Errorf("another user's first assignment: %+v", r)
	}
	if r := add("c2", "u1"); r != (result{true, true}) {
		t.Errorf("first assignment to a second campaign: %+v", r)
	}
	if got := campaigns("u1"); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("Campaigns(u1): %v", got)
	}
	if !remove("c1", "u1") || remove("c1", "u1") || remove("c9", "u1") {
		t.Error("RemoveParticipant: want true once, then false, and false for a campaign never joined")
	}
	if got := campaigns("u1"); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("Campaigns(u1) after leaving c1: %v", got)
	}
	if got := campaigns("u2"); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("Campaigns(u2): %v", got)
	}
	// An ended participation is kept, and listed as ended.
	if got, want := participations("u1"), []storage.Participation{{Campaign: "c1"}, {Campaign: "c2", Current: true}}; !slices.Equal(got, want) {
		t.Errorf("Participations(u1) after leaving c1: %v, want %v", got, want)
	}
	// Back in a campaign left before: added, but not for the first time.
	if r := add("c1", "u1"); r != (result{true, false}) {
		t.Errorf("assignment after leaving: %+v, want added, not first", r)
	}
	if got := campaigns("u1"); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("Campaigns(u1) after rejoining: %v", got)
	}
	if got, want := participations("u1"), []storage.Participation{{Campaign: "c1", Current: true}, {Campaign: "c2", Current: true}}; !slices.Equal(got, want) {
		t.Errorf("Participations(u1) after rejoining: %v, want %v", got, want)
	}
	if got := campaigns("u3"); len(got) != 0 || len(participations("u3")) != 0 {
		t.Errorf("Campaigns of a user never assigned: %v", got)
	}
	// Prefixes of ids are other ids.
	if r := add("c", "u"); r != (result{true, true}) {
		t.Errorf("assignment of prefix ids: %+v", r)
	}
	if got := campaigns("u"); !slices.Equal(got, []string{"c"}) {
		t.Errorf("Campaigns(u): %v", got)
	}
}

// testFactsCounter: concurrent transactions that each read a user's facts and write them back
// incremented lose no increment. The domain's audited-user rule relies on this: the facts a
// delete reads cannot change before it commits.
func testFactsCounter(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const n = 20
	id := storage.NewID()
	e.insert(People, rec(People, id, obj{"userName": "counted", "n": 0}))
	errs := e.concurrently(2*n, func(i int) func(storage.Tx) error {
		if i%2 == 0 {
			return func(tx storage.Tx) error {
				f, err := tx.Facts(id)
				if err != nil {
					return err
				}
				f.Interactions++
				now := tx.Now()
				f.LastInteractionAt = &now
				return tx.PutFacts(id, f)
			}
		}
		// The same through a record: read its document, write it back incremented.
		return func(tx storage.Tx) error {
			r, err := tx.Get(People, id)
			if err != nil {
				return err
			}
			doc := decode(r.Doc)
			count, _ := doc["n"].(json.Number).Int64()
			doc["n"] = count + 1
			_, err = tx.Update(People, rec(People, id, doc))
			return err
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if f := e.facts(id); f.Interactions != n {
		t.Errorf("%d interactions counted by %d writers", f.Interactions, n)
	}
	r := e.get(People, id)
	if got := decode(r.Doc)["n"]; got != json.Number("20") || r.Version != n+1 {
		t.Errorf("the record's counter is %v at version %d; want 20 at version %d", got, r.Version, n+1)
	}
}
