package storagetest

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var trailTests = []test{
	{"append sets seq, time and tenant", testAppend},
	{"newest first in pages", testTrailPages},
	{"a record's events, however it was written", testRecordTrail},
	{"since and until", testTrailTimes},
	{"events oldest first, resumed", testEvents},
	{"seq follows commit order", testTrailCommitOrder},
	{"a tailing reader misses nothing", testTrailTail},
	{"a commit wakes the tenant's watchers", testWatch},
	{"closing the store wakes every watcher", testWatchClose},
}

// events returns tenantA's events after a sequence number, oldest first.
func (e *env) events(after uint64) []storage.Event {
	e.t.Helper()
	var out []storage.Event
	e.read(func(tx storage.Tx) error {
		out = nil
		return tx.Events(after, func(ev storage.Event) (bool, error) {
			out = append(out, ev)
			return true, nil
		})
	})
	return out
}

// trail runs a trail query over tenantA.
func (e *env) trail(q storage.TrailQuery) ([]storage.Event, uint64) {
	e.t.Helper()
	var out []storage.Event
	var next uint64
	e.read(func(tx storage.Tx) error {
		var err error
		out, next, err = tx.Trail(q)
		return err
	})
	return out, next
}

func ops(evs []storage.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Operation
	}
	return out
}

func opNames(format string, from, to, step int) []string {
	var out []string
	for i := from; i != to+step; i += step {
		out = append(out, fmt.Sprintf(format, i))
	}
	return out
}

func sameEvent(a, b storage.Event) bool {
	return a.Seq == b.Seq && a.Time.Equal(b.Time) && a.Tenant == b.Tenant && a.ActorID == b.ActorID &&
		a.ActorName == b.ActorName && a.Operation == b.Operation && a.ResourceType == b.ResourceType &&
		a.ResourceID == b.ResourceID && slices.Equal(a.Attributes, b.Attributes) && a.Related == b.Related &&
		a.RelatedType == b.RelatedType && a.Version == b.Version && a.Outcome == b.Outcome
}

func testAppend(t *testing.T, open Opener) {
	e := newEnv(t, open)
	in := []storage.Event{
		{Seq: 999, Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Tenant: tenantB, ActorID: "actor-1", ActorName: "okta",
			Operation: "create", ResourceType: "User", ResourceID: "r1", Attributes: []string{"emails", "userName"}, Related: "c1",
			RelatedType: "Campaign", Version: 7, Outcome: "success"},
		{Operation: "delete", ResourceType: "Group", ResourceID: "r2", Outcome: "failure"},
	}
	var now time.Time
	e.write(func(tx storage.Tx) error {
		now = tx.Now()
		for _, ev := range in {
			if err := tx.Append(ev); err != nil {
				return err
			}
		}
		return nil
	})
	got := e.events(0)
	if len(got) != 2 {
		t.Fatalf("Events after two appends: %+v", got)
	}
	if got[0].Seq == 0 || got[1].Seq <= got[0].Seq {
		t.Errorf("seqs %d, %d: want increasing from 1 up", got[0].Seq, got[1].Seq)
	}
	for i, ev := range got {
		want := in[i]
		want.Seq, want.Time, want.Tenant = ev.Seq, now, tenantA
		if !sameEvent(ev, want) {
			t.Errorf("event %d: %+v, want %+v", i, ev, want)
		}
	}
	newest, next := e.trail(storage.TrailQuery{})
	if len(newest) != 2 || !sameEvent(newest[0], got[1]) || !sameEvent(newest[1], got[0]) || next != 0 {
		t.Errorf("Trail: %+v (next %d), want the same events newest first", newest, next)
	}
	e.write(func(tx storage.Tx) error { return tx.Append(storage.Event{Operation: "later", Outcome: "success"}) })
	if all := e.events(0); len(all) != 3 || all[2].Seq <= got[1].Seq || all[2].Time.Before(now) {
		t.Errorf("a later event: %+v", all)
	}
	e.read(func(tx storage.Tx) error {
		if n, err := tx.TrailLength(); n != 3 || err != nil {
			t.Errorf("TrailLength %d %v, want 3", n, err)
		}
		return nil
	})
	if other := e.s.Read(ctx, tenantB, func(tx storage.Tx) error {
		if n, err := tx.TrailLength(); n != 0 || err != nil {
			return fmt.Errorf("an event landed in the tenant it named: %d %v", n, err)
		}
		return nil
	}); other != nil {
		t.Error(other)
	}
}

// appendOps appends one event per name in one transaction; resource(i) names the resource of the
// i-th.
func (e *env) appendOps(names []string, resource func(i int) string) {
	e.t.Helper()
	e.write(func(tx storage.Tx) error {
		for i, name := range names {
			if err := tx.Append(storage.Event{Operation: name, ResourceID: resource(i), Outcome: "success"}); err != nil {
				return err
			}
		}
		return nil
	})
}

// pages reads the trail q selects page by page, and returns the operations and the page sizes.
func (e *env) pages(q storage.TrailQuery) ([]string, []int) {
	e.t.Helper()
	var seen []string
	var sizes []int
	for range 100 {
		evs, next := e.trail(q)
		seen = append(seen, ops(evs)...)
		sizes = append(sizes, len(evs))
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq >= evs[i-1].Seq {
				e.t.Errorf("a page is not newest first: %d then %d", evs[i-1].Seq, evs[i].Seq)
			}
		}
		if next == 0 {
			return seen, sizes
		}
		if len(evs) > 0 && next > evs[len(evs)-1].Seq {
			e.t.Errorf("cursor %d would repeat events (last seq %d)", next, evs[len(evs)-1].Seq)
		}
		q.Before = next
	}
	e.t.Fatal("the trail never ends")
	return nil, nil
}

func testTrailPages(t *testing.T, open Opener) {
	e := newEnv(t, open)
	resource := func(i int) string {
		if i%5 == 0 {
			return "b"
		}
		return "a"
	}
	names := opNames("op%d", 0, 24, 1)
	e.appendOps(names[:12], resource)
	e.appendOps(names[12:], func(i int) string { return resource(i + 12) })
	e.appendOps([]string{"other"}, func(int) string { return "ab" })
	seen, sizes := e.pages(storage.TrailQuery{Limit: 10})
	if want := append([]string{"other"}, opNames("op%d", 24, 0, -1)...); !slices.Equal(seen, want) || !slices.Equal(sizes, []int{10, 10, 6}) {
		t.Errorf("pages of 10: %v in %v, want %v", seen, sizes, want)
	}
	seen, sizes = e.pages(storage.TrailQuery{ResourceID: "b", Limit: 3})
	if want := []string{"op20", "op15", "op10", "op5", "op0"}; !slices.Equal(seen, want) || !slices.Equal(sizes, []int{3, 2}) {
		t.Errorf("resource b in pages of 3: %v in %v, want %v", seen, sizes, want)
	}
	// Exactly full pages: the last one says there is no next.
	seen, sizes = e.pages(storage.TrailQuery{ResourceID: "a", Limit: 10})
	if len(seen) != 20 || seen[0] != "op24" || seen[19] != "op1" || !slices.Equal(sizes, []int{10, 10}) {
		t.Errorf("resource a in pages of 10: %v in %v, want 20 events in two pages", seen, sizes)
	}
	seen, sizes = e.pages(storage.TrailQuery{Limit: 26})
	if len(seen) != 26 || !slices.Equal(sizes, []int{26}) {
		t.Errorf("the whole trail in one page of its size: %d events in %v", len(seen), sizes)
	}
	seen, _ = e.pages(storage.TrailQuery{ResourceID: "ab"})
	if !slices.Equal(seen, []string{"other"}) {
		t.Errorf("resource ab: %v", seen)
	}
	seen, _ = e.pages(storage.TrailQuery{ResourceID: "c"})
	if len(seen) != 0 {
		t.Errorf("a resource without events: %v", seen)
	}
	// A cursor in the middle of the trail, and one below every event.
	mid := e.events(0)[10]
	if evs, _ := e.trail(storage.TrailQuery{Before: mid.Seq, Limit: 2}); !slices.Equal(ops(evs), []string{"op9", "op8"}) {
		t.Errorf("before op10: %v", ops(evs))
	}
	if evs, next := e.trail(storage.TrailQuery{Before: e.events(0)[0].Seq}); len(evs) != 0 || next != 0 {
		t.Errorf("before the first event: %v, next %d", ops(evs), next)
	}
	// Limit 0 means 100.
	e.appendOps(opNames("more%d", 0, 129, 1), func(int) string { return "" })
	evs, next := e.trail(storage.TrailQuery{})
	if len(evs) != 100 || next == 0 || evs[0].Operation != "more129" {
		t.Errorf("a query without a limit: %d events (first %s), next %d; want 100 and a cursor", len(evs), evs[0].Operation, next)
	}
	if seen, sizes := e.pages(storage.TrailQuery{}); len(seen) != 156 || !slices.Equal(sizes, []int{100, 56}) {
		t.Errorf("pages of 100: %d events in %v", len(seen), sizes)
	}
}

func testTrailTimes(t *testing.T, open Opener) {
	e := newEnv(t, open)
	for i := range 6 {
		e.appendOps([]string{fmt.Sprintf("e%d", i)}, func(int) string { return []string{"x", "y"}[i%2] })
		time.Sleep(3 * time.Millisecond) // each event at its own time
	}
	all := e.events(0)
	for i := 1; i < len(all); i++ {
		if !all[i].Time.After(all[i-1].Time) {
			t.Fatalf("events 3ms apart have times %v and %v", all[i-1].Time, all[i].Time)
		}
	}
	between := func(i int) time.Time { return all[i].Time.Add(all[i+1].Time.Sub(all[i].Time) / 2) }
	for _, c := range []struct {
		name string
		q    storage.TrailQuery
		want []string
	}{
		{"since", storage.TrailQuery{Since: between(1)}, []string{"e5", "e4", "e3", "e2"}},
		{"until", storage.TrailQuery{Until: between(3)}, []string{"e3", "e2", "e1", "e0"}},
		{"since and until", storage.TrailQuery{Since: between(1), Until: between(4)}, []string{"e4", "e3", "e2"}},
		{"in pages of 1", storage.TrailQuery{Since: between(1), Until: between(4), Limit: 1}, []string{"e4", "e3", "e2"}},
		{"of a resource", storage.TrailQuery{ResourceID: "x", Since: between(0), Until: between(4)}, []string{"e4", "e2"}},
		{"of a resource in pages of 1", storage.TrailQuery{ResourceID: "y", Since: between(0), Limit: 1}, []string{"e5", "e3", "e1"}},
		{"after the last", storage.TrailQuery{Since: all[5].Time.Add(time.Hour)}, nil},
		{"before the first", storage.TrailQuery{Until: all[0].Time.Add(-time.Hour)}, nil},
	} {
		if got, _ := e.pages(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func testEvents(t *testing.T, open Opener) {
	e := newEnv(t, open)
	for i := range 3 {
		e.appendOps(opNames("op%d", 10*i, 10*i+9, 1), func(int) string { return "r" })
	}
	all := e.events(0)
	if got := ops(all); !slices.Equal(got, opNames("op%d", 0, 29, 1)) {
		t.Fatalf("Events(0): %v", got)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("Events(0) is not oldest first at %d: %d then %d", i, all[i-1].Seq, all[i].Seq)
		}
	}
	// Resumed from the last seq seen, chunk by chunk: every event once.
	var resumed []storage.Event
	after := uint64(0)
	for range 10 {
		var chunk []storage.Event
		e.read(func(tx storage.Tx) error {
			chunk = nil
			return tx.Events(after, func(ev storage.Event) (bool, error) {
				chunk = append(chunk, ev)
				return len(chunk) < 7, nil
			})
		})
		if len(chunk) == 0 {
			break
		}
		resumed = append(resumed, chunk...)
		after = chunk[len(chunk)-1].Seq
	}
	if !slices.EqualFunc(resumed, all, sameEvent) {
		t.Errorf("resumed in chunks of 7: %v", ops(resumed))
	}
	if got := ops(e.events(all[9].Seq)); !slices.Equal(got, opNames("op%d", 10, 29, 1)) {
		t.Errorf("Events after op9: %v", got)
	}
	if got := e.events(all[29].Seq); len(got) != 0 {
		t.Errorf("Events after the last: %v", ops(got))
	}
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		return tx.Events(0, func(storage.Event) (bool, error) { return true, errSentinel })
	})
	if err != errSentinel {
		t.Errorf("Events returned %v, not the error of fn", err)
	}
	e.read(func(tx storage.Tx) error {
		if n, err := tx.TrailLength(); n != 30 || err != nil {
			t.Errorf("TrailLength %d %v, want 30", n, err)
		}
		return nil
	})
}

// testTrailCommitOrder: concurrent writers each read the newest event and append one naming it:
// in seq order, every event names the one before it, so seq order is commit order.
func testTrailCommitOrder(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const writers, each = 8, 15
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
					newest, _, err := tx.Trail(storage.TrailQuery{Limit: 1})
					if err != nil {
						return err
					}
					prev := uint64(0)
					if len(newest) == 1 {
						prev = newest[0].Seq
					}
					return tx.Append(storage.Event{Operation: "step", ActorID: strconv.Itoa(w),
						Attributes: []string{strconv.Itoa(j)}, Related: strconv.FormatUint(prev, 10), Outcome: "success"})
				})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	all := e.events(0)
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
	next := map[string]int{}
	prev := uint64(0)
	for _, ev := range all {
		if ev.Seq <= prev || ev.Related != strconv.FormatUint(prev, 10) {
			t.Fatalf("event %d follows %d but its transaction saw %s as the newest", ev.Seq, prev, ev.Related)
		}
		if ev.Attributes[0] != strconv.Itoa(next[ev.ActorID]) {
			t.Fatalf("writer %s's events out of order: %s where %d was due", ev.ActorID, ev.Attributes[0], next[ev.ActorID])
		}
		next[ev.ActorID]++
		prev = ev.Seq
	}
}

// testTrailTail: a reader that polls Events from the last seq it saw, while writers append,
// ends up with every event once, in order.
func testTrailTail(t *testing.T, open Opener) {
	e := newEnv(t, open)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	var failed atomic.Value
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
					for range 2 {
						if err := tx.Append(storage.Event{Operation: "tick", Outcome: "success"}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []uint64
	after := uint64(0)
	poll := func() error {
		return e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
			return tx.Events(after, func(ev storage.Event) (bool, error) {
				if ev.Seq <= after {
					return false, fmt.Errorf("the events after %d included %d", after, ev.Seq)
				}
				seen = append(seen, ev.Seq)
				after = ev.Seq
				return true, nil
			})
		})
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := poll(); err != nil {
			t.Fatal(err)
		}
	}
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	if err := poll(); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, ev := range e.events(0) {
		want = append(want, ev.Seq)
	}
	if len(want) != 2*writers*each || !slices.Equal(seen, want) {
		t.Errorf("the tailing reader saw %d events, the trail holds %d (want %d)", len(seen), len(want), 2*writers*each)
	}
}

// watchClosed reports whether a watch has ended.
func watchClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// testWatch: a watch ends with the first commit that appends to its tenant's trail, and with
// nothing else: not another tenant's commit, not a write that was rolled back. (An engine may
// also end a watch spuriously; this one checks only what must not happen before the commit
// and what must after it.)
func testWatch(t *testing.T, open Opener) {
	e := newEnv(t, open)
	w := e.s.Watch(tenantA)
	if err := e.s.Write(ctx, tenantB, func(tx storage.Tx) error {
		return tx.Append(storage.Event{Operation: "other", Outcome: "success"})
	}); err != nil {
		t.Fatal(err)
	}
	refused := fmt.Errorf("refused")
	if err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error {
		if err := tx.Append(storage.Event{Operation: "rolled-back", Outcome: "success"}); err != nil {
			return err
		}
		return refused
	}); err != refused {
		t.Fatalf("a refused write: %v", err)
	}
	if watchClosed(w) {
		t.Fatal("another tenant's commit or a rolled-back write woke the watcher")
	}
	e.write(func(tx storage.Tx) error { return tx.Append(storage.Event{Operation: "create", Outcome: "success"}) })
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("the commit did not wake the watcher")
	}
	// What the woken watcher reads holds the commit.
	if evs := e.events(0); len(evs) != 1 || evs[0].Operation != "create" {
		t.Fatalf("after the wake: %+v", evs)
	}
}

// testWatchClose: closing the store wakes every watcher, and a watch begun after ends at once.
func testWatchClose(t *testing.T, open Opener) {
	e := newEnv(t, open)
	w := e.s.Watch(tenantA)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the store left a watcher waiting")
	}
	if !watchClosed(e.s.Watch(tenantA)) {
		t.Fatal("a watch on a closed store waits")
	}
}

// testRecordTrail holds a record's trail, read by resource, to the events of the whole trail
// that name it, whichever way they were appended: with a create, update or delete of the record
// in the same transaction, alone, several to a transaction, or beside a write of another
// record; read in pages of every size, from a cursor and from a time, before and after the
// record is deleted. An engine may keep a record's latest events with the record.
func testRecordTrail(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id, other := storage.NewID(), storage.NewID()
	appendAbout := func(tx storage.Tx, resource, op string) error {
		return tx.Append(storage.Event{Operation: op, ResourceID: resource, Outcome: "success"})
	}
	update := func(tx storage.Tx, resource string, n int) error {
		_, err := tx.Update(People, rec(People, resource, obj{"userName": fmt.Sprintf("%s-%d", resource, n)}))
		return err
	}
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, id, obj{"userName": id})); err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, other, obj{"userName": other})); err != nil {
			return err
		}
		return appendAbout(tx, id, "create")
	})
	for n := range 60 {
		op := fmt.Sprintf("op%d", n)
		e.write(func(tx storage.Tx) error {
			switch n % 6 {
			case 0, 1: // the usual PUT or PATCH: the record and its event
				if err := update(tx, id, n); err != nil {
					return err
				}
				return appendAbout(tx, id, op)
			case 2: // an event without a write of the record (a membership, a login)
				return appendAbout(tx, id, op)
			case 3: // two writes and three events in one transaction
				for i := range 2 {
					if err := update(tx, id, n*10+i); err != nil {
						return err
					}
					if err := appendAbout(tx, id, fmt.Sprintf("%s.%d", op, i)); err != nil {
						return err
					}
				}
				return appendAbout(tx, id, op+".2")
			case 4: // beside a write of another record, and an event about that one between
				if err := update(tx, other, n); err != nil {
					return err
				}
				if err := appendAbout(tx, other, "other"+op); err != nil {
					return err
				}
				return appendAbout(tx, id, op)
			default: // the event first, the write after
				if err := appendAbout(tx, id, op); err != nil {
					return err
				}
				return update(tx, id, n)
			}
		})
	}
	// More events about the record than a list may hold, in the transaction that writes it.
	e.write(func(tx storage.Tx) error {
		if err := update(tx, id, 1000); err != nil {
			return err
		}
		for i := range 20 {
			if err := appendAbout(tx, id, fmt.Sprintf("burst%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(when string) {
		t.Helper()
		var want []string
		var wantEvents []storage.Event
		all := e.events(0)
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].ResourceID == id {
				want = append(want, all[i].Operation)
				wantEvents = append(wantEvents, all[i])
			}
		}
		for _, limit := range []int{2, 3, 7, 16, 17, 100, len(want)} {
			seen, sizes := e.pages(storage.TrailQuery{ResourceID: id, Limit: limit})
			if !slices.Equal(seen, want) {
				t.Errorf("%s, pages of %d:\n got %v\nwant %v", when, limit, seen, want)
			}
			for i, n := range sizes {
				if n != limit && (i < len(sizes)-1 || n == 0) {
					t.Errorf("%s, pages of %d: sizes %v", when, limit, sizes)
					break
				}
			}
		}
		since := wantEvents[len(wantEvents)/2].Time
		var recent []string
		for _, ev := range wantEvents {
			if !ev.Time.Before(since) {
				recent = append(recent, ev.Operation)
			}
		}
		if seen, _ := e.pages(storage.TrailQuery{ResourceID: id, Since: since, Limit: 4}); !slices.Equal(seen, recent) {
			t.Errorf("%s, since %v:\n got %v\nwant %v", when, since, seen, recent)
		}
		mid := all[len(all)/2]
		var below []string
		for _, op := range want {
			if ev := findOp(all, op); ev.Seq < mid.Seq {
				below = append(below, op)
			}
		}
		if seen, _ := e.pages(storage.TrailQuery{ResourceID: id, Before: mid.Seq, Limit: 5}); !slices.Equal(seen, below) {
			t.Errorf("%s, before seq %d:\n got %v\nwant %v", when, mid.Seq, seen, below)
		}
		if evs, _ := e.trail(storage.TrailQuery{ResourceID: other}); len(evs) != 10 {
			t.Errorf("%s: the other record has %d events, want 10", when, len(evs))
		}
	}
	check("while the record exists")
	e.write(func(tx storage.Tx) error {
		if err := tx.Delete(People, id); err != nil {
			return err
		}
		return appendAbout(tx, id, "delete")
	})
	check("once the record is deleted")
	// Created, written about and deleted in one transaction.
	brief := storage.NewID()
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, brief, obj{"userName": brief})); err != nil {
			return err
		}
		if err := appendAbout(tx, brief, "create"); err != nil {
			return err
		}
		if err := tx.Delete(People, brief); err != nil {
			return err
		}
		return appendAbout(tx, brief, "delete")
	})
	if evs, _ := e.trail(storage.TrailQuery{ResourceID: brief}); !slices.Equal(ops(evs), []string{"delete", "create"}) {
		t.Errorf("a record created and deleted in one transaction: %v", ops(evs))
	}
}

// findOp returns the event of evs with operation op.
func findOp(evs []storage.Event, op string) storage.Event {
	for _, ev := range evs {
		if ev.Operation == op {
			return ev
		}
	}
	return storage.Event{}
}
