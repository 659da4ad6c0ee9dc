package scimserver

import (
	"testing"
	"time"
)

// TestScanSlots: while every scan slot is taken, a query that needs a scan waits up to the scan
// timeout and is refused as Busy; queries an index serves, plain pages and reads by id are not
// held up, and the refusal is counted.
func TestScanSlots(t *testing.T) {
	_, store := newService(t)
	s := New(store, Options{ScanTimeout: 50 * time.Millisecond, MaxScans: 1})
	id := create(t, s, s.users, map[string]any{"userName": "slot@example.com", "name": map[string]any{"givenName": "Slot"}})
	release, err := s.scans.acquire(bg, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sorted := Query{SortBy: "name.givenName", StartIndex: 1, Count: 10}
	if _, err := s.Query(bg, DefaultTenant, []*Kind{s.users}, sorted, ""); ErrorCode(err) != Busy {
		t.Fatalf("sorted listing while the slots are taken: %v", err)
	}
	for _, q := range []Query{{Filter: `userName eq "slot@example.com"`}, {}} {
		q.StartIndex, q.Count = 1, 10
		if pg, err := s.Query(bg, DefaultTenant, []*Kind{s.users}, q, ""); err != nil || len(pg.Resources) != 1 {
			t.Fatalf("%+v while the slots are taken: %v %v", q, pg, err)
		}
	}
	if _, err := s.Get(bg, DefaultTenant, s.users, id, View{}, Conditions{}); err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := s.Query(bg, DefaultTenant, []*Kind{s.users}, sorted, ""); err != nil {
		t.Fatalf("sorted listing once a slot is free: %v", err)
	}
	if n := s.ScanStats().Stopped["busy"]; n != 1 {
		t.Errorf("scans refused for want of a slot: %d, want 1", n)
	}
}
