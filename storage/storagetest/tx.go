package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var txTests = []test{
	{"a failing write leaves nothing", testAtomic},
	{"a failing write among concurrent ones", testConcurrentFailures},
	{"all written in a transaction has its time", testOneClock},
	{"a read sees one snapshot", testSnapshot},
	{"reads during writes are consistent", testConsistentReads},
	{"ping and close", testClose},
}

// state is what a tenant holds, as far as testAtomic looks.
type state struct {
	people, teams, deletes, events int
	records                        map[string]uint64 // id -> version
	keys                           map[string][]string
	groups                         []string
	members                        []storage.Member
	facts                          storage.Facts
	campaigns                      []string
}

func (e *env) state(ids []string, team string) state {
	e.t.Helper()
	s := state{records: map[string]uint64{}, keys: map[string][]string{}}
	e.read(func(tx storage.Tx) error {
		s.people, s.teams, s.deletes = tx.Count(People), tx.Count(Teams), int(tx.Deletes(People))
		var err error
		if s.events, err = tx.TrailLength(); err != nil {
			return err
		}
		for _, id := range ids {
			if r, err := tx.Get(People, id); err == nil {
				s.records[id] = r.Version
			}
		}
		for _, k := range []struct{ ix, key string }{{"userName", "a"}, {"userName", "b"}, {"userName", "c"}, {"email", "a@x"}, {"email", "new@x"}, {"tag", "t"}, {"tag", "u"}} {
			got, err := tx.Lookup(People, k.ix, k.key)
			if err != nil {
				return err
			}
			s.keys[k.ix+"="+k.key] = got
		}
		if s.groups, err = tx.MemberOf(ids[0]); err != nil {
			return err
		}
		if err := tx.Members(team, func(m storage.Member) error { s.members = append(s.members, m); return nil }); err != nil {
			return err
		}
		if s.facts, err = tx.Facts(ids[0]); err != nil {
			return err
		}
		s.campaigns, err = storage.Campaigns(tx, ids[0])
		return err
	})
	return s
}

func (s state) equal(o state) bool {
	if s.people != o.people || s.teams != o.teams || s.deletes != o.deletes || s.events != o.events ||
		len(s.records) != len(o.records) || !slices.Equal(s.groups, o.groups) || !slices.Equal(s.members, o.members) ||
		!sameFacts(s.facts, o.facts) || !slices.Equal(s.campaigns, o.campaigns) {
		return false
	}
	for id, v := range s.records {
		if o.records[id] != v {
			return false
		}
	}
	for k, v := range s.keys {
		if !slices.Equal(o.keys[k], v) {
			return false
		}
	}
	return true
}

// testAtomic: a write whose function fails after changing everything a transaction can change
// leaves no trace of it, and Write returns the function's error.
func testAtomic(t *testing.T, open Opener) {
	e := newEnv(t, open)
	people := ids(3) // a and b exist, c is created by the failing write
	team := storage.NewID()
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, people[0], obj{"userName": "a", "emails": emails("a@x"), "tags": strs("t")})); err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, people[1], obj{"userName": "b"})); err != nil {
			return err
		}
		if _, err := tx.Insert(Teams, rec(Teams, team, obj{"displayName": "team"})); err != nil {
			return err
		}
		if err := tx.AddMember(team, storage.Member{Value: people[1], Type: "User"}); err != nil {
			return err
		}
		if err := tx.PutFacts(people[0], storage.Facts{Interactions: 1}); err != nil {
			return err
		}
		return tx.Append(storage.Event{Operation: "setup", Outcome: "success"})
	})
	before := e.state(people, team)
	failures := []error{errSentinel, storage.Errorf(storage.Conflict, "a rule refused the change"), fmt.Errorf("wrapped: %w", errSentinel)}
	for _, failure := range failures {
		err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
			if _, err := tx.Insert(People, rec(People, people[2], obj{"userName": "c", "tags": strs("u")})); err != nil {
				return err
			}
			if _, err := tx.Update(People, rec(People, people[0], obj{"userName": "a2", "emails": emails("new@x")})); err != nil {
				return err
			}
			if err := tx.Touch(Teams, team); err != nil {
				return err
			}
			if err := tx.Delete(People, people[1]); err != nil {
				return err
			}
			if _, err := tx.RemoveMember(team, people[1]); err != nil {
				return err
			}
			if err := tx.AddMember(team, storage.Member{Value: people[0], Type: "User"}); err != nil {
				return err
			}
			if err := tx.PutFacts(people[0], storage.Facts{Interactions: 2, Campaigns: 1}); err != nil {
				return err
			}
			if _, _, err := tx.AddParticipant("c1", people[0]); err != nil {
				return err
			}
			if err := tx.Append(storage.Event{Operation: "doomed", Outcome: "success"}); err != nil {
				return err
			}
			return failure
		})
		if err != failure && !errors.Is(err, failure) {
			t.Errorf("Write returned %v, not the error of fn (%v)", err, failure)
		}
		if code := storage.ErrorCode(failure); code != "" && storage.ErrorCode(err) != code {
			t.Errorf("Write changed the code of fn's error to %q", storage.ErrorCode(err))
		}
		if after := e.state(people, team); !after.equal(before) {
			t.Fatalf("a failed write left traces:\n before %+v\n after  %+v", before, after)
		}
	}
	if got := e.get(Teams, team); got.Version != 1 {
		t.Errorf("a failed touch gave version %d", got.Version)
	}
	// The same changes commit when fn succeeds: the state above could tell.
	e.write(func(tx storage.Tx) error {
		_, err := tx.Insert(People, rec(People, people[2], obj{"userName": "c", "tags": strs("u")}))
		return err
	})
	if after := e.state(people, team); after.equal(before) {
		t.Fatal("a committed insert did not change the state")
	}
}

// testConcurrentFailures: among concurrent writes (which an engine may commit together), the
// failing ones leave nothing and the others are all stored.
func testConcurrentFailures(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const n = 60
	people := ids(n)
	errs := e.concurrently(n, func(i int) func(storage.Tx) error {
		return func(tx storage.Tx) error {
			if _, err := tx.Insert(People, rec(People, people[i], obj{"userName": fmt.Sprintf("u%d", i), "tags": strs("all")})); err != nil {
				return err
			}
			if err := tx.Append(storage.Event{Operation: "create", ResourceID: people[i], Outcome: "success"}); err != nil {
				return err
			}
			if i%7 == 0 {
				return storage.Errorf(storage.Invalid, "fails on purpose")
			}
			return nil
		}
	})
	var stored []string
	for i, err := range errs {
		switch {
		case i%7 == 0:
			wantCode(t, fmt.Sprintf("write %d", i), err, storage.Invalid)
		case err != nil:
			t.Errorf("write %d: %v", i, err)
		default:
			stored = append(stored, people[i])
		}
	}
	e.read(func(tx storage.Tx) error {
		n, err := tx.TrailLength()
		if tx.Count(People) != len(stored) || n != len(stored) || err != nil {
			t.Errorf("%d records and %d events stored, %d writes succeeded", tx.Count(People), n, len(stored))
		}
		for i, id := range people {
			ids, _ := tx.Lookup(People, "userName", fmt.Sprintf("u%d", i))
			if tx.Exists(People, id) != slices.Contains(stored, id) || len(ids) == 1 != slices.Contains(stored, id) {
				t.Errorf("write %d: stored %v, indexed %v", i, tx.Exists(People, id), ids)
			}
		}
		return nil
	})
	e.expectLookup(People, "tag", "all", stored...)
}

// testOneClock: a transaction's records, events and times all carry its Now.
func testOneClock(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "a"}))
	var now time.Time
	e.write(func(tx storage.Tx) error {
		now = tx.Now()
		if _, err := tx.Insert(People, rec(People, b, obj{"userName": "b"})); err != nil {
			return err
		}
		if err := tx.Touch(People, a); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond) // Now does not move within a transaction
		if !tx.Now().Equal(now) {
			return fmt.Errorf("the clock moved within a transaction: %v then %v", now, tx.Now())
		}
		return tx.Append(storage.Event{Operation: "x", Outcome: "success"})
	})
	ra, rb, evs := e.get(People, a), e.get(People, b), e.events(0)
	if !ra.Modified.Equal(now) || !rb.Created.Equal(now) || !rb.Modified.Equal(now) || len(evs) != 1 || !evs[0].Time.Equal(now) {
		t.Errorf("times %v %v %v %v, want all %v", ra.Modified, rb.Created, rb.Modified, evs, now)
	}
	if ra.Created.Equal(now) || ra.Created.After(now) {
		t.Errorf("an earlier record was created at %v, not before %v", ra.Created, now)
	}
}

// testSnapshot: a read transaction open while a write commits sees nothing of the write.
func testSnapshot(t *testing.T, open Opener) {
	e := newEnv(t, open)
	a, b := storage.NewID(), storage.NewID()
	e.insert(People, rec(People, a, obj{"userName": "a"}))
	inRead, committed := make(chan struct{}), make(chan error, 1)
	go func() {
		<-inRead
		committed <- e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
			if _, err := tx.Insert(People, rec(People, b, obj{"userName": "b"})); err != nil {
				return err
			}
			if _, err := tx.Update(People, rec(People, a, obj{"userName": "a2"})); err != nil {
				return err
			}
			if err := tx.AddMember("g", storage.Member{Value: a, Type: "User"}); err != nil {
				return err
			}
			if err := tx.PutFacts(a, storage.Facts{Interactions: 1}); err != nil {
				return err
			}
			return tx.Append(storage.Event{Operation: "x", Outcome: "success"})
		})
	}()
	look := func(tx storage.Tx) string {
		r, _ := tx.Get(People, a)
		n, _ := tx.TrailLength()
		f, _ := tx.Facts(a)
		gs, _ := tx.MemberOf(a)
		ids, _ := tx.Lookup(People, "userName", "a")
		scanned := 0
		_ = tx.Scan(People, storage.Position{}, func(storage.Record) (bool, error) { scanned++; return true, nil })
		return fmt.Sprintf("count %d scanned %d version %d events %d interactions %d groups %v userName a %v exists b %v",
			tx.Count(People), scanned, r.Version, n, f.Interactions, gs, ids, tx.Exists(People, b))
	}
	var first, second string
	e.read(func(tx storage.Tx) error {
		first = look(tx)
		close(inRead)
		select {
		case err := <-committed:
			if err != nil {
				return err
			}
		case <-time.After(10 * time.Second):
			return fmt.Errorf("a write could not commit while a read was open")
		}
		second = look(tx)
		return nil
	})
	if first != second {
		t.Errorf("a read transaction saw a write commit:\n before %s\n after  %s", first, second)
	}
	var after string
	e.read(func(tx storage.Tx) error { after = look(tx); return nil })
	if after == first {
		t.Errorf("the write is not visible to a later read: %s", after)
	}
}

// testConsistentReads: readers running beside writers always see whole transactions: each write
// adds two records, one event and one interaction, so the numbers a read sees agree.
func testConsistentReads(t *testing.T, open Opener) {
	e := newEnv(t, open)
	counter := storage.NewID()
	e.insert(People, rec(People, counter, obj{"userName": "counter"}))
	const writes = 60
	done := make(chan struct{})
	var writeErr atomic.Value
	go func() {
		defer close(done)
		for range writes {
			err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
				for range 2 {
					id := storage.NewID()
					if _, err := tx.Insert(People, rec(People, id, obj{"userName": id, "tags": strs("pair")})); err != nil {
						return err
					}
				}
				f, err := tx.Facts(counter)
				if err != nil {
					return err
				}
				f.Interactions++
				if err := tx.PutFacts(counter, f); err != nil {
					return err
				}
				return tx.Append(storage.Event{Operation: "pair", Outcome: "success"})
			})
			if err != nil {
				writeErr.Store(err)
				return
			}
		}
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		e.read(func(tx storage.Tx) error {
			n, err := tx.TrailLength()
			if err != nil {
				return err
			}
			f, err := tx.Facts(counter)
			if err != nil {
				return err
			}
			scanned := 0
			if err := tx.Scan(People, storage.Position{}, func(storage.Record) (bool, error) { scanned++; return true, nil }); err != nil {
				return err
			}
			tagged, err := tx.Lookup(People, "tag", "pair")
			if err != nil {
				return err
			}
			count := tx.Count(People)
			if count != 1+2*n || scanned != count || len(tagged) != 2*n || f.Interactions != n {
				return fmt.Errorf("a read saw part of a write: count %d, scanned %d, tagged %d, events %d, interactions %d",
					count, scanned, len(tagged), n, f.Interactions)
			}
			return nil
		})
	}
	if err := writeErr.Load(); err != nil {
		t.Fatal(err)
	}
	e.read(func(tx storage.Tx) error {
		if tx.Count(People) != 1+2*writes {
			t.Errorf("count %d after %d writes", tx.Count(People), writes)
		}
		return nil
	})
	t.Logf("%d reads beside %d writes", reads, writes)
}

func testClose(t *testing.T, open Opener) {
	e := newEnv(t, open)
	if err := e.s.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open store: %v", err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Write after Close", e.s.Write(ctx, tenantA, func(storage.Tx) error { return nil }), storage.Unavailable)
	wantCode(t, "Read after Close", e.s.Read(ctx, tenantA, func(storage.Tx) error { return nil }), storage.Unavailable)
	wantCode(t, "WriteAdmin after Close", e.s.WriteAdmin(ctx, func(storage.AdminTx) error { return nil }), storage.Unavailable)
	if err := e.s.Ping(ctx); err == nil {
		t.Error("Ping of a closed store succeeded")
	}
}
