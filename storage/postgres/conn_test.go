package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// TestHeldStatementFailureFailsTheBatch: a trail append is sent with the transaction's next
// statement, which may belong to the next write of the same batch. When the append fails (here
// its seq was taken behind the engine's back), no write of that transaction may be reported
// committed: every write that returned nil has its record, and every write whose record is
// missing returned an error.
func TestHeldStatementFailureFailsTheBatch(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
	// The third append's seq is taken; the lock held meanwhile makes the writes queue up and
	// share transactions.
	if _, err := conn.Exec(ctx, `INSERT INTO events (tid, seq, time, resource, doc) SELECT tid, seq + 3, 0, '\x', '{}' FROM tenants WHERE id = 't'`); err != nil {
		t.Fatal(err)
	}
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "SELECT 1 FROM tenants WHERE id = 't' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	const writers = 20
	ids := make([]string, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		ids[i] = storage.NewID()
		wg.Go(func() {
			errs[i] = s.Write(ctx, "t", func(tx storage.Tx) error {
				name := fmt.Sprintf("u%d", i)
				r := storage.Record{ID: ids[i], Doc: fmt.Appendf(nil, `{"userName":%q}`, name), Keys: storagetest.People.KeysOf(map[string]any{"userName": name})}
				if _, err := tx.Insert(storagetest.People, r); err != nil {
					return err
				}
				return tx.Append(storage.Event{Operation: "create", ResourceID: ids[i], Outcome: "success"})
			})
		})
	}
	time.Sleep(200 * time.Millisecond) // the writers queue behind the lock
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	failed := 0
	err = s.Read(ctx, "t", func(tx storage.Tx) error {
		for i, id := range ids {
			_, getErr := tx.Get(storagetest.People, id)
			switch {
			case errs[i] == nil && getErr != nil:
				t.Errorf("write %d returned nil, and its record is missing: %v", i, getErr)
			case errs[i] != nil && getErr == nil:
				t.Errorf("write %d returned %v, and its record is there", i, errs[i])
			}
			if errs[i] != nil {
				failed++
				if storage.ErrorCode(errs[i]) == storage.Conflict {
					t.Errorf("write %d failed with Conflict, which would answer 409 for a write that conflicted with nothing: %v", i, errs[i])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if failed < writers-2 {
		t.Errorf("%d of %d writes failed; all but the first two appends cannot succeed", failed, writers)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 1 {
		t.Errorf("check: %v %v; want only the event written behind the engine's back", problems, err)
	}
}
