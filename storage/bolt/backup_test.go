package bolt

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

func addUsers(t *testing.T, s *Store, tenant, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := storage.NewID()
		name := fmt.Sprintf("%s%d@example.com", prefix, i)
		err := s.Write(bg, tenant, func(tx storage.Tx) error {
			_, err := tx.Insert(users, named(id, name))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// writeSnapshot backs s up into a file and returns its path.
func writeSnapshot(t *testing.T, s *Store) string {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("backup: %d bytes (%d buffered), %v", n, buf.Len(), err)
	}
	path := filepath.Join(t.TempDir(), "snapshot.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBackupIsAConsistentSnapshot(t *testing.T) {
	s := openTemp(t)
	before := addUsers(t, s, defaultTenant, "before", 50)
	// Writers run while the backup is taken; everything written before it began is in it.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("during%d.%d@example.com", w, i)
				_ = s.Write(bg, defaultTenant, func(tx storage.Tx) error {
					_, err := tx.Insert(users, named(storage.NewID(), name))
					return err
				})
			}
		}()
	}
	var size int64
	var buf bytes.Buffer
	n, err := s.BackupSized(func(sz int64) io.Writer { size = sz; return &buf })
	close(stop)
	wg.Wait()
	if err != nil || n != size || int64(buf.Len()) != size {
		t.Fatalf("backup: announced %d, wrote %d (%d), %v", size, n, buf.Len(), err)
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	problems, err := VerifySnapshot(path, domain)
	if err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", err, problems)
	}
	snap, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	err = snap.Read(bg, defaultTenant, func(tx storage.Tx) error {
		for _, id := range before {
			if !tx.Exists(users, id) {
				t.Errorf("user %s written before the backup is missing", id)
			}
		}
		if tx.Count(users) < len(before) {
			t.Errorf("%d users in the snapshot", tx.Count(users))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A read-only store backs up too (the backup command on a stopped server).
	if _, err := snap.Backup(&bytes.Buffer{}); err != nil {
		t.Fatalf("backup of a read-only store: %v", err)
	}
}

func TestVerifySnapshotRefusesDamage(t *testing.T) {
	s := openTemp(t)
	addUsers(t, s, defaultTenant, "u", 200)
	good := writeSnapshot(t, s)
	raw, _ := os.ReadFile(good)
	dir := t.TempDir()

	truncated := filepath.Join(dir, "truncated.db")
	_ = os.WriteFile(truncated, raw[:len(raw)/2], 0o600)
	if _, err := VerifySnapshot(truncated, domain); err == nil {
		t.Error("a truncated snapshot passed")
	} else {
		t.Logf("truncated: %v", err)
	}
	// Cut anywhere, the file is refused with an error, never a crash.
	for _, cut := range []int{4096, 8192, 3 * 4096, len(raw) - 4096, len(raw) - 1} {
		_ = os.WriteFile(truncated, raw[:cut], 0o600)
		if _, err := VerifySnapshot(truncated, domain); err == nil {
			t.Errorf("a snapshot cut at %d of %d bytes passed", cut, len(raw))
		}
	}
	garbage := filepath.Join(dir, "garbage.db")
	_ = os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 2000), 0o600)
	if _, err := VerifySnapshot(garbage, domain); err == nil {
		t.Error("garbage passed")
	}
	if _, err := VerifySnapshot(filepath.Join(dir, "missing.db"), domain); err == nil {
		t.Error("a missing file passed")
	}
	if _, err := VerifySnapshot(dir, domain); err == nil {
		t.Error("a directory passed")
	}
	// An index that disagrees with the records is a problem, not an error.
	bad := filepath.Join(dir, "bad-index.db")
	_ = os.WriteFile(bad, raw, 0o600)
	db, err := bbolt.Open(bad, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(defaultTenant)).Bucket([]byte("ix.users.userName")).Delete([]byte("u7@example.com"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	problems, err := VerifySnapshot(bad, domain)
	if err != nil || len(problems) == 0 {
		t.Fatalf("a broken index: %v %v", err, problems)
	}

	target := filepath.Join(dir, "data", "data.db")
	if _, err := Restore(bad, target, false, domain, RestoreHooks{}); storage.ErrorCode(err) != storage.Invalid {
		t.Fatalf("restore of an inconsistent snapshot: %v", err)
	}
	if _, err := Restore(truncated, target, false, domain, RestoreHooks{}); storage.ErrorCode(err) != storage.Invalid {
		t.Fatalf("restore of a truncated snapshot: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("a refused restore left a data file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "data", "*")); len(left) > 0 {
		t.Fatalf("a refused restore left files: %v", left)
	}
}

func TestRestore(t *testing.T) {
	s := openTemp(t)
	ids := addUsers(t, s, defaultTenant, "r", 20)
	snap := writeSnapshot(t, s)
	want, _ := os.ReadFile(snap)
	addUsers(t, s, defaultTenant, "later", 5)

	target := filepath.Join(t.TempDir(), "new", "data.db")
	n, err := Restore(snap, target, false, domain, RestoreHooks{})
	if err != nil || n != int64(len(want)) {
		t.Fatalf("restore into a new path: %d %v", n, err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, want) {
		t.Fatal("the restored file differs from the snapshot")
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
		t.Errorf("restored file mode %v", st.Mode())
	}
	if _, err := Restore(snap, target, false, domain, RestoreHooks{}); storage.ErrorCode(err) != storage.Conflict {
		t.Fatalf("restore over an existing file without overwrite: %v", err)
	}
	if _, err := Restore(target, target, true, domain, RestoreHooks{}); storage.ErrorCode(err) != storage.Invalid {
		t.Fatalf("restore of a file onto itself: %v", err)
	}
	// A running server (an open store) holds the file: restore refuses and leaves it alone.
	live, err := Open(target, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	addUsers(t, live, defaultTenant, "live", 1)
	if _, err := Restore(snap, target, true, domain, RestoreHooks{}); storage.ErrorCode(err) != storage.Unavailable {
		t.Fatalf("restore over a file in use: %v", err)
	}
	live.Close()
	if _, err := Restore(snap, target, true, domain, RestoreHooks{}); err != nil {
		t.Fatalf("restore with overwrite: %v", err)
	}
	r, err := Open(target, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Read(bg, defaultTenant, func(tx storage.Tx) error {
		if tx.Count(users) != len(ids) {
			t.Errorf("restored file has %d users, want %d", tx.Count(users), len(ids))
		}
		for _, id := range ids {
			if !tx.Exists(users, id) {
				t.Errorf("user %s missing", id)
			}
		}
		return nil
	})
	r.Close()
	// A damaged data file is what restore is for: it can be replaced.
	_ = os.WriteFile(target, []byte("damaged"), 0o600)
	if _, err := Restore(snap, target, true, domain, RestoreHooks{}); err != nil {
		t.Fatalf("restore over a damaged file: %v", err)
	}
	if left, _ := filepath.Glob(target + ".*"); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestCompact: compaction keeps every record and index, leaves no free pages, and shrinks a file
// that held many more records than it does now.
func TestCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	ids := createUsers(t, s, 3000, storage.NewID)
	err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		for _, id := range ids[:2900] {
			if err := tx.Delete(users, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, after, err := Compact(path)
	if err != nil || after >= before {
		t.Fatalf("compact: %d -> %d bytes, %v", before, after, err)
	}
	s = openTestStore(t, path, domain)
	expectClean(t, s, "after compaction")
	if n := countUsers(t, s); n != 100 {
		t.Errorf("%d users after compaction, want 100", n)
	}
}
