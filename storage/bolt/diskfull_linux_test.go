package bolt

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// TestDiskFull makes the file system refuse to grow the data file (RLIMIT_FSIZE: writes past
// the limit fail with EFBIG, as on a full disk). Writes that cannot be stored fail cleanly with
// Unavailable, writes that were acknowledged are all there, the file stays consistent, and the
// store works again once there is room.
func TestDiskFull(t *testing.T) {
	s := openTemp(t)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Skip("no RLIMIT_FSIZE:", err)
	}
	st, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	limit := syscall.Rlimit{Cur: uint64(st.Size()) + 256<<10, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Skip("cannot lower RLIMIT_FSIZE:", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()

	acked := map[string]bool{}
	failures := 0
	// Large documents: the file is grown in steps of 16 MiB ahead of need, and the writes must
	// use that up before one runs into the limit.
	padding := fmt.Sprintf("%065536d", 0)
	for i := 0; i < 5000 && failures < 20; i++ {
		name := fmt.Sprintf("disk%05d", i)
		err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
			_, err := tx.Insert(users, user(storage.NewID(), map[string]any{"userName": name, "padding": padding}))
			return err
		})
		switch {
		case err == nil:
			acked[name] = true
		case storage.ErrorCode(err) == storage.Unavailable:
			failures++
		default:
			t.Fatalf("write %d: unexpected error %v", i, err)
		}
	}
	restore()
	if failures == 0 {
		t.Fatal("the file never hit the size limit")
	}
	if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		_, err := tx.Insert(users, user(storage.NewID(), map[string]any{"userName": "after", "padding": padding}))
		return err
	}); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	path := s.Path()
	s.Close()
	s2 := openTestStore(t, path, domain)
	expectClean(t, s2, "after disk full")
	err = s2.Read(bg, defaultTenant, func(tx storage.Tx) error {
		for name := range acked {
			if ids, _ := tx.Lookup(users, "userName", name); len(ids) != 1 {
				return fmt.Errorf("acknowledged user %s is missing", name)
			}
		}
		if tx.Count(users) != len(acked)+1 {
			return fmt.Errorf("%d users stored, %d acknowledged", tx.Count(users), len(acked)+1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged before the limit, %d refused", len(acked), failures)
}
