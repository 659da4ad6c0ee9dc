package storage

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func addUsers(t *testing.T, s *Store, tenant, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := NewID()
		name := fmt.Sprintf("%s%d@example.com", prefix, i)
		err := s.Write(tenant, func(tx *Tx) error {
			_, err := tx.CreateUser(User{ID: id, Doc: []byte(`{"userName":"` + name + `"}`), Keys: UserKeys{UserName: name}})
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
	before := addUsers(t, s, DefaultTenant, "before", 50)
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
				_ = s.Write(DefaultTenant, func(tx *Tx) error {
					_, err := tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: name}})
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
	problems, err := VerifySnapshot(path)
	if err != nil || len(problems) > 0 {
		t.Fatalf("verify: %v %v", err, problems)
	}
	snap, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	err = snap.Read(DefaultTenant, func(tx *Tx) error {
		for _, id := range before {
			if !tx.UserExists(id) {
				t.Errorf("user %s written before the backup is missing", id)
			}
		}
		if tx.CountUsers() < len(before) {
			t.Errorf("%d users in the snapshot", tx.CountUsers())
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
	addUsers(t, s, DefaultTenant, "u", 200)
	good := writeSnapshot(t, s)
	raw, _ := os.ReadFile(good)
	dir := t.TempDir()

	truncated := filepath.Join(dir, "truncated.db")
	_ = os.WriteFile(truncated, raw[:len(raw)/2], 0o600)
	if _, err := VerifySnapshot(truncated); err == nil {
		t.Error("a truncated snapshot passed")
	} else {
		t.Logf("truncated: %v", err)
	}
	// Cut anywhere, the file is refused with an error, never a crash.
	for _, cut := range []int{4096, 8192, 3 * 4096, len(raw) - 4096, len(raw) - 1} {
		_ = os.WriteFile(truncated, raw[:cut], 0o600)
		if _, err := VerifySnapshot(truncated); err == nil {
			t.Errorf("a snapshot cut at %d of %d bytes passed", cut, len(raw))
		}
	}
	garbage := filepath.Join(dir, "garbage.db")
	_ = os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 2000), 0o600)
	if _, err := VerifySnapshot(garbage); err == nil {
		t.Error("garbage passed")
	}
	if _, err := VerifySnapshot(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a missing file passed")
	}
	if _, err := VerifySnapshot(dir); err == nil {
		t.Error("a directory passed")
	}
	// An index that disagrees with the records is a problem, not an error.
	bad := filepath.Join(dir, "bad-index.db")
	_ = os.WriteFile(bad, raw, 0o600)
	db, err := bolt.Open(bad, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(DefaultTenant)).Bucket(bktUserName).Delete([]byte("u7@example.com"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	problems, err := VerifySnapshot(bad)
	if err != nil || len(problems) == 0 {
		t.Fatalf("a broken index: %v %v", err, problems)
	}

	target := filepath.Join(dir, "data", "data.db")
	if _, err := Restore(bad, target, false); ErrorCode(err) != Invalid {
		t.Fatalf("restore of an inconsistent snapshot: %v", err)
	}
	if _, err := Restore(truncated, target, false); ErrorCode(err) != Invalid {
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
	ids := addUsers(t, s, DefaultTenant, "r", 20)
	snap := writeSnapshot(t, s)
	want, _ := os.ReadFile(snap)
	addUsers(t, s, DefaultTenant, "later", 5)

	target := filepath.Join(t.TempDir(), "new", "data.db")
	n, err := Restore(snap, target, false)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("restore into a new path: %d %v", n, err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, want) {
		t.Fatal("the restored file differs from the snapshot")
	}
	if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
		t.Errorf("restored file mode %v", st.Mode())
	}
	if _, err := Restore(snap, target, false); ErrorCode(err) != Conflict {
		t.Fatalf("restore over an existing file without overwrite: %v", err)
	}
	if _, err := Restore(target, target, true); ErrorCode(err) != Invalid {
		t.Fatalf("restore of a file onto itself: %v", err)
	}
	// A running server (an open store) holds the file: restore refuses and leaves it alone.
	live, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addUsers(t, live, DefaultTenant, "live", 1)
	if _, err := Restore(snap, target, true); ErrorCode(err) != Unavailable {
		t.Fatalf("restore over a file in use: %v", err)
	}
	live.Close()
	if _, err := Restore(snap, target, true); err != nil {
		t.Fatalf("restore with overwrite: %v", err)
	}
	r, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Read(DefaultTenant, func(tx *Tx) error {
		if tx.CountUsers() != len(ids) {
			t.Errorf("restored file has %d users, want %d", tx.CountUsers(), len(ids))
		}
		for _, id := range ids {
			if !tx.UserExists(id) {
				t.Errorf("user %s missing", id)
			}
		}
		return nil
	})
	r.Close()
	// A damaged data file is what restore is for: it can be replaced.
	_ = os.WriteFile(target, []byte("damaged"), 0o600)
	if _, err := Restore(snap, target, true); err != nil {
		t.Fatalf("restore over a damaged file: %v", err)
	}
	if left, _ := filepath.Glob(target + ".*"); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestAuditedAdminActions(t *testing.T) {
	s := openTemp(t)
	actor := Actor{ID: "admin-1", Name: "ops"}
	if _, err := s.CreateTenant(actor, "acme", " Acme "); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant(actor, "acme", ""); ErrorCode(err) != Conflict {
		t.Fatalf("duplicate tenant: %v", err)
	}
	if _, err := s.CreateTenant(actor, "Bad!", ""); ErrorCode(err) != Invalid {
		t.Fatalf("bad id: %v", err)
	}
	tok, secret, err := s.CreateToken(actor, TokenSpec{Tenant: "acme", Name: "okta"})
	if err != nil || !tok.HasScope(ScopeSCIM) {
		t.Fatalf("token: %v %v", tok, err)
	}
	if _, _, err := s.CreateToken(actor, TokenSpec{Tenant: "nope"}); ErrorCode(err) != NotFound {
		t.Fatalf("token of a missing tenant: %v", err)
	}
	if _, _, err := s.CreateToken(actor, TokenSpec{Tenant: "acme", Scopes: []string{"root"}}); ErrorCode(err) != Invalid {
		t.Fatalf("bad scope: %v", err)
	}
	if _, err := s.Authenticate(secret); err != nil { // now cached
		t.Fatal(err)
	}
	for range 2 {
		if tn, err := s.SetTenantDisabled(actor, "acme", true); err != nil || !tn.Disabled {
			t.Fatalf("disable: %v %v", tn, err)
		}
	}
	if _, err := s.Authenticate(secret); ErrorCode(err) != NotFound {
		t.Fatalf("a disabled tenant's token still authenticates: %v", err)
	}
	if _, err := s.SetTenantDisabled(actor, "acme", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	if _, err := s.RevokeToken(actor, DefaultTenant, tok.ID); ErrorCode(err) != NotFound {
		t.Fatalf("revoke through another tenant: %v", err)
	}
	for range 2 {
		if got, err := s.RevokeToken(actor, "acme", tok.ID); err != nil || got.Revoked == nil {
			t.Fatalf("revoke: %v %v", got, err)
		}
	}
	if _, err := s.Authenticate(secret); ErrorCode(err) != NotFound {
		t.Fatalf("a revoked token still authenticates: %v", err)
	}
	var ops []string
	var length int
	_ = s.Read("acme", func(tx *Tx) error {
		length = tx.TrailLength()
		return tx.EachEvent(func(ev Event) error {
			if ev.ActorID != actor.ID || ev.ActorName != actor.Name || ev.Tenant != "acme" {
				t.Errorf("event %+v", ev)
			}
			ops = append(ops, ev.Operation)
			return nil
		})
	})
	want := []string{OpTenantCreate, OpTokenCreate, OpTenantDisable, OpTenantEnable, OpTokenRevoke}
	if !slices.Equal(ops, want) || length != len(want) {
		t.Fatalf("trail %v (length %d), want %v", ops, length, want)
	}
	// Nothing landed in the default tenant's trail but what its first start recorded.
	_ = s.Read(DefaultTenant, func(tx *Tx) error {
		return tx.EachEvent(func(ev Event) error {
			if ev.ActorID != bootstrapActor.ID {
				t.Errorf("default tenant's trail has %+v", ev)
			}
			return nil
		})
	})
}
