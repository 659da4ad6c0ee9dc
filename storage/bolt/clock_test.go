package bolt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var people = &storage.Collection{Name: "people", Indexes: []storage.Index{
	{Name: "userName", Unique: true, Fold: true, Keys: func(doc map[string]any) []string {
		s, _ := doc["userName"].(string)
		return []string{s}
	}},
}}

// TestCoarseClock: a clock that does not move between transactions (a coarse system clock) or
// that is set back still gives every transaction a new version of what it changes, and events
// times in the order of their sequence numbers.
func TestCoarseClock(t *testing.T) {
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for name, clock := range map[string]func(i int) time.Time{
		"frozen":   func(int) time.Time { return base },
		"set back": func(i int) time.Time { return base.Add(-time.Duration(i) * time.Minute) }, // a minute back at each reading
	} {
		t.Run(name, func(t *testing.T) {
			s := openTestStore(t, filepath.Join(t.TempDir(), "data.db"), []*storage.Collection{people})
			ctx := context.Background()
			if err := s.WriteAdmin(ctx, func(a storage.AdminTx) error { return a.PutTenant(storage.Tenant{ID: "t"}) }); err != nil {
				t.Fatal(err)
			}
			calls := 0
			s.clock = func() time.Time { calls++; return clock(calls) }
			id := storage.NewID()
			write := func(fn func(tx storage.Tx) error) {
				t.Helper()
				if err := s.Write(ctx, "t", func(tx storage.Tx) error {
					if err := fn(tx); err != nil {
						return err
					}
					return tx.Append(storage.Event{Operation: "x", Outcome: "success"})
				}); err != nil {
					t.Fatal(err)
				}
			}
			write(func(tx storage.Tx) error {
				_, err := tx.Insert(people, storage.Record{ID: id, Doc: []byte(`{"userName":"a"}`), Keys: [][]string{{"a"}}})
				return err
			})
			write(func(tx storage.Tx) error { return tx.Touch(people, id) })
			write(func(tx storage.Tx) error {
				_, err := tx.Update(people, storage.Record{ID: id, Doc: []byte(`{"userName":"b"}`), Keys: [][]string{{"b"}}})
				return err
			})
			write(func(tx storage.Tx) error { return tx.Touch(people, id) })
			var r storage.Record
			var evs []storage.Event
			err := s.Read(ctx, "t", func(tx storage.Tx) error {
				var err error
				if r, err = tx.Get(people, id); err != nil {
					return err
				}
				// Every event is since the first one's time (base less a minute at most).
				evs, _, err = tx.Trail(storage.TrailQuery{Since: base.Add(-90 * time.Second)})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != 4 {
				t.Errorf("four transactions gave version %d", r.Version)
			}
			if len(evs) != 4 {
				t.Fatalf("the trail since the first event holds %d of 4", len(evs))
			}
			for i := 1; i < len(evs); i++ {
				if !evs[i-1].Time.After(evs[i].Time) {
					t.Errorf("event %d at %v is not later than event %d at %v", evs[i-1].Seq, evs[i-1].Time, evs[i].Seq, evs[i].Time)
				}
			}
		})
	}
}
