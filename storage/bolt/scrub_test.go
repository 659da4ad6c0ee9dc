package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// erase plants values in users' documents, then overwrites them in a later transaction that
// records the erasure, as an anonymization does. It returns the values.
func erase(t *testing.T, s *Store, n int) []string {
	t.Helper()
	var values []string
	var ids []string
	for i := range n {
		values = append(values, fmt.Sprintf("PlantedXylophone%04dQuux", i))
		ids = append(ids, storage.NewID())
	}
	// Other users around them, so that their pages hold more than the planted values.
	createUsers(t, s, 300, storage.NewID)
	err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		for i, id := range ids {
			if _, err := tx.Insert(users, user(id, map[string]any{"userName": values[i], "name": map[string]any{"familyName": values[i]}})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if _, err := tx.Update(users, named(id, "anonymized-"+storage.NewID())); err != nil {
				return err
			}
			if err := tx.Erased(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return values
}

// residue returns the values the file at path or its commit log still holds, as they are or
// folded (as index keys).
func residue(t *testing.T, path string, values []string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range logPaths(path) {
		l, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		raw = append(raw, l...)
	}
	var found []string
	for _, v := range values {
		if bytes.Contains(raw, []byte(v)) || bytes.Contains(raw, []byte(storage.Fold(v))) {
			found = append(found, v)
		}
	}
	return found
}

// pending reports how many erasures wait for their scrub.
func pending(t *testing.T, s *Store) int {
	t.Helper()
	n, _, err := s.PendingErasures()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// clearedLog records the users the scrub hands to Options.ErasureCleared.
type clearedLog struct {
	mu    sync.Mutex
	users []string
}

func (c *clearedLog) hook(tx storage.Tx, user string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.IsZero() || tx.Tenant() != defaultTenant {
		return fmt.Errorf("cleared %s of tenant %q at %v", user, tx.Tenant(), at)
	}
	c.users = append(c.users, user)
	return nil
}

func (c *clearedLog) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.users)
}

// openWithHook opens path like openAt, with the ErasureCleared hook of log.
func openWithHook(t *testing.T, path string, log *clearedLog) *Store {
	t.Helper()
	s, err := Open(path, Options{Collections: domain, ErasureCleared: log.hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestScrubClearsFreePages: values overwritten by an erasure survive in the pages bbolt freed,
// until the scrub AwaitErasure asks for overwrites every free page and hands each erasure to
// the ErasureCleared hook.
func TestScrubClearsFreePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	openAt(t, path).Close() // the tenant
	var log clearedLog
	s := openWithHook(t, path, &log)
	values := erase(t, s, 20)
	if n := pending(t, s); n != 20 {
		t.Fatalf("%d erasures pending, want 20", n)
	}
	if found := residue(t, path, values); len(found) == 0 {
		t.Fatal("no erased value is left in the file before the scrub: the test shows nothing")
	}
	if err := s.AwaitErasure(bg); err != nil {
		t.Fatalf("scrub: %v", err)
	}
	if found := residue(t, path, values); len(found) > 0 {
		t.Errorf("after the scrub the file still holds %v", found)
	}
	if n := pending(t, s); n != 0 {
		t.Errorf("%d erasures still pending after the scrub", n)
	}
	if n := log.count(); n != 20 {
		t.Errorf("the hook heard of %d cleared erasures, want 20", n)
	}
	if err := s.AwaitErasure(bg); err != nil {
		t.Errorf("with nothing pending: %v", err)
	}
	expectClean(t, s, "after a scrub")
	if n := countUsers(t, s); n != 320 {
		t.Errorf("%d users after a scrub, want 320", n)
	}
}

// TestOwedScrubRunsAtOpen: an erasure whose scrub never ran (the process died between the commit
// and the scrub) is scrubbed when the file is next opened for writing, before Open returns.
func TestOwedScrubRunsAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	values := erase(t, s, 20)
	s.Close()
	if found := residue(t, path, values); len(found) == 0 {
		t.Fatal("no erased value is left in the file: the test shows nothing")
	}
	var log clearedLog
	s = openWithHook(t, path, &log)
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d erasures still pending after the open", n)
	}
	if n := log.count(); n != 20 {
		t.Errorf("the hook heard of %d cleared erasures at open, want 20", n)
	}
	if found := residue(t, path, values); len(found) > 0 {
		t.Errorf("after the open the file still holds %v", found)
	}
}
