package bolt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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

// residue returns the values the file at path still holds, as they are or folded (as index
// keys).
func residue(t *testing.T, path string, values []string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, v := range values {
		if bytes.Contains(raw, []byte(v)) || bytes.Contains(raw, []byte(storage.Fold(v))) {
			found = append(found, v)
		}
	}
	return found
}

// TestScrubClearsFreePages: values overwritten by an erasure survive in the pages bbolt freed,
// until Scrub overwrites every free page.
func TestScrubClearsFreePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	values := erase(t, s, 20)
	if !s.ScrubOwed() {
		t.Fatal("an erasure did not record that a scrub is owed")
	}
	if found := residue(t, path, values); len(found) == 0 {
		t.Fatal("no erased value is left in the file before the scrub: the test shows nothing")
	}
	pages, err := s.Scrub()
	if err != nil || pages == 0 {
		t.Fatalf("scrub: %d pages, %v", pages, err)
	}
	if found := residue(t, path, values); len(found) > 0 {
		t.Errorf("after the scrub the file still holds %v", found)
	}
	if s.ScrubOwed() {
		t.Error("a scrub after the erasure left it owed")
	}
	expectClean(t, s, "after a scrub")
	if n := countUsers(t, s); n != 320 {
		t.Errorf("%d users after a scrub, want 320", n)
	}
}

// TestOwedScrubRunsAtOpen: an erasure whose scrub never ran (the process died between the commit
// and the scrub) is scrubbed when the file is next opened for writing.
func TestOwedScrubRunsAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	values := erase(t, s, 20)
	s.Close()
	if found := residue(t, path, values); len(found) == 0 {
		t.Fatal("no erased value is left in the file: the test shows nothing")
	}
	s = openTestStore(t, path, domain)
	if s.ScrubOwed() {
		t.Fatal("the owed scrub did not run at open")
	}
	if found := residue(t, path, values); len(found) > 0 {
		t.Errorf("after the open the file still holds %v", found)
	}
}
