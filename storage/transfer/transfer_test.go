package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/transfer"
)

var people = &storage.Collection{Name: "people", Indexes: []storage.Index{
	{Name: "userName", Attr: "userName", Unique: true, Fold: true, Keys: func(doc map[string]any) []string {
		s, _ := doc["userName"].(string)
		return []string{s}
	}},
}}

func open(t *testing.T, name string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), name), bolt.Options{Collections: []*storage.Collection{people}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// source holds a tenant with 25 people, a membership and 50 trail events.
func source(t *testing.T) *bolt.Store {
	s := open(t, "src.db")
	ctx := context.Background()
	if err := s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		return a.PutTenant(storage.Tenant{ID: "t", Name: "T", Created: a.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 25 {
		if err := s.Write(ctx, "t", func(tx storage.Tx) error {
			id := storage.NewID()
			doc := fmt.Sprintf(`{"userName":"user%d"}`, i)
			r := storage.Record{ID: id, Doc: []byte(doc), Keys: [][]string{{fmt.Sprintf("user%d", i)}}}
			if _, err := tx.Insert(people, r); err != nil {
				return err
			}
			ids = append(ids, id)
			for range 2 {
				if err := tx.Append(storage.Event{Operation: "create", ResourceType: "User", ResourceID: id, Outcome: "success"}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(ctx, "t", func(tx storage.Tx) error {
		return tx.AddMember(ids[0], storage.Member{Value: ids[1], Type: "User"})
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInterruptedCopyResumes stops a copy after its first batch of records, and another after
// its first batch of events; each second run completes the copy, which then verifies clean and
// holds each event once. A copy that differs is reported by Verify.
func TestInterruptedCopyResumes(t *testing.T) {
	for _, stopAt := range []string{"people", "trail"} {
		t.Run("interrupted in "+stopAt, func(t *testing.T) {
			src, dst := source(t), open(t, "dst.db")
			ctx, cancel := context.WithCancel(context.Background())
			opts := transfer.Options{Collections: []*storage.Collection{people}, Batch: 10,
				Progress: func(_, what string, _, _ int) {
					if what == stopAt {
						cancel()
					}
				}}
			if err := transfer.Copy(ctx, src, dst, opts); !errors.Is(err, context.Canceled) {
				t.Fatalf("an interrupted copy returned %v, want context.Canceled", err)
			}
			if diffs, err := transfer.Verify(context.Background(), src, dst, opts); err != nil || len(diffs) == 0 {
				t.Fatalf("Verify of a partial copy: %v %v, want differences", diffs, err)
			}
			opts.Progress = nil
			if err := transfer.Copy(context.Background(), src, dst, opts); err != nil {
				t.Fatalf("the resumed copy: %v", err)
			}
			if diffs, err := transfer.Verify(context.Background(), src, dst, opts); err != nil || len(diffs) > 0 {
				t.Fatalf("Verify after resuming: %v %v", diffs, err)
			}
			var seqs []uint64
			if err := dst.Read(context.Background(), "t", func(tx storage.Tx) error {
				return tx.Events(0, func(ev storage.Event) (bool, error) {
					seqs = append(seqs, ev.Seq)
					return true, nil
				})
			}); err != nil {
				t.Fatal(err)
			}
			if len(seqs) != 50 || seqs[0] != 1 || seqs[49] != 50 {
				t.Fatalf("the copied trail: %d events %v, want 1 to 50 once each", len(seqs), seqs)
			}
		})
	}
	// Verify reports a record the copy lacks.
	src, dst := source(t), open(t, "dst.db")
	opts := transfer.Options{Collections: []*storage.Collection{people}}
	if err := transfer.Copy(context.Background(), src, dst, opts); err != nil {
		t.Fatal(err)
	}
	if err := dst.Write(context.Background(), "t", func(tx storage.Tx) error {
		var first string
		err := tx.Scan(people, storage.Position{}, func(r storage.Record) (bool, error) { first = r.ID; return false, nil })
		if err != nil {
			return err
		}
		return tx.Delete(people, first)
	}); err != nil {
		t.Fatal(err)
	}
	diffs, err := transfer.Verify(context.Background(), src, dst, opts)
	if err != nil || !strings.Contains(strings.Join(diffs, ";"), "25 records in the source, 24 in the destination") {
		t.Fatalf("Verify of a copy missing a record: %v %v", diffs, err)
	}
}
