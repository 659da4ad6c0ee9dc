package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

const defaultTenant = "default"

var bg = context.Background()

func openTemp(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "data.db"))
}

// openAt opens (creating) the data file at path with the domain's collections and a default
// tenant; it is closed when t ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s := openTestStore(t, path, domain)
	err := s.WriteAdmin(bg, func(a storage.AdminTx) error {
		if _, err := a.Tenant(defaultTenant); err == nil {
			return nil
		}
		return a.PutTenant(storage.Tenant{ID: defaultTenant, Name: "Default", Created: a.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user builds a users record the way the domain does: the keys derived from the document.
func user(id string, doc map[string]any) storage.Record {
	raw, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	var decoded map[string]any
	_ = json.Unmarshal(raw, &decoded)
	return storage.Record{ID: id, Doc: raw, Keys: users.KeysOf(decoded)}
}

func group(id, name string) storage.Record {
	doc := map[string]any{"displayName": name}
	raw, _ := json.Marshal(doc)
	return storage.Record{ID: id, Doc: raw, Keys: groups.KeysOf(doc)}
}

func named(id, userName string) storage.Record { return user(id, map[string]any{"userName": userName}) }

// countUsers is the number of users of the default tenant.
func countUsers(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Read(bg, defaultTenant, func(tx storage.Tx) error { n = tx.Count(users); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupCommit drives many concurrent writers, some of which fail, through the commit queue:
// every success is stored, no failure leaves a trace, and writes share commits.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t)
	c0, w0 := s.CommitStats() // the default tenant's
	var observed, late atomic.Int64
	s.ObserveCommits(func(c storage.Commit) { observed.Add(int64(c.Writes)) })
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 101 { // an observer added while writes run sees the commits after it
				s.ObserveCommits(func(c storage.Commit) { late.Add(int64(c.Writes)) })
			}
			errs[i] = s.Write(bg, defaultTenant, func(tx storage.Tx) error {
				if _, err := tx.Insert(users, named(storage.NewID(), fmt.Sprintf("u%d", i))); err != nil {
					return err
				}
				if i%10 == 0 {
					return storage.Errorf(storage.Invalid, "fails on purpose")
				}
				if i%25 == 1 {
					panic("a write function panics")
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	want := 0
	for i, err := range errs {
		switch {
		case i%10 == 0:
			if storage.ErrorCode(err) != storage.Invalid {
				t.Fatalf("write %d: %v", i, err)
			}
		case i%25 == 1:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Fatalf("write %d panicked: %v", i, err)
			}
		case err != nil:
			t.Fatalf("write %d: %v", i, err)
		default:
			want++
		}
	}
	err := s.Read(bg, defaultTenant, func(tx storage.Tx) error {
		if tx.Count(users) != want {
			return fmt.Errorf("count %d, want %d", tx.Count(users), want)
		}
		for i := 0; i < n; i++ {
			ids, _ := tx.Lookup(users, "userName", fmt.Sprintf("u%d", i))
			if (len(ids) == 1) != (i%10 != 0 && i%25 != 1) {
				return fmt.Errorf("user u%d present=%v", i, len(ids) == 1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	commits, writes := s.CommitStats()
	if writes < uint64(want) || commits == 0 {
		t.Fatalf("commit stats %d/%d", commits, writes)
	}
	if observed.Load() != int64(writes-w0) || commits == c0 {
		t.Fatalf("observer saw %d writes, the store counted %d", observed.Load(), writes-w0)
	}
	if late.Load() < 1 || late.Load() > observed.Load() {
		t.Fatalf("late observer saw %d writes of %d", late.Load(), observed.Load())
	}
	if commits-c0 >= writes-w0 {
		t.Logf("no two writes shared a commit (%d commits, %d writes)", commits-c0, writes-w0)
	}
}

func TestLockedFileFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := "open " + path + ": the data file is locked by another process"
	if _, err := Open(path, Options{Timeout: 100 * time.Millisecond}); err == nil || err.Error() != want {
		t.Fatalf("second open: %v", err)
	}
	// compact says the same, not bbolt's bare "timeout".
	if _, _, err := Compact(path); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("compact of a locked file: %v", err)
	}
}

// TestSizes: the file's size is what the file system says; the part holding live data is less,
// and shrinks when records are deleted (their pages become free). A read-only open sees the same.
func TestSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	ids := createUsers(t, s, 3000, storage.NewID)
	sizes := func(s *Store) (int64, int64) {
		t.Helper()
		file, used, err := s.Sizes()
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if file != st.Size() || used <= 0 || used >= file {
			t.Fatalf("sizes: file %d (stat says %d), used %d", file, st.Size(), used)
		}
		return file, used
	}
	_, full := sizes(s)
	if full < 3000*100 {
		t.Fatalf("used %d bytes for 3000 users", full)
	}
	if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.Delete(users, id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, emptied := sizes(s)
	if emptied >= full/2 {
		t.Fatalf("used %d bytes after deleting every record, %d before", emptied, full)
	}
	s.Close()
	ro, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, used := sizes(ro); used >= full/2 {
		t.Fatalf("read-only: used %d bytes, %d before the deletes", used, full)
	}
}

func TestCheckFindsInconsistencies(t *testing.T) {
	s := openTemp(t)
	uid, gid := storage.NewID(), storage.NewID()
	err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		if _, err := tx.Insert(users, user(uid, map[string]any{"userName": "a", "externalId": "x", "emails": []any{map[string]any{"value": "a@b"}}})); err != nil {
			return err
		}
		if _, err := tx.Insert(groups, group(gid, "g")); err != nil {
			return err
		}
		return tx.AddMember(gid, storage.Member{Value: uid, Type: "User"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// A touch is a version stamp beside the memberships: not a membership.
	if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error { return tx.Touch(users, uid) }); err != nil {
		t.Fatal(err)
	}
	expectClean(t, s, "of a consistent file")
	// Break the indexes behind the store's back: Check must say so.
	tenant := func(tx *bbolt.Tx) *bbolt.Bucket { return tx.Bucket(bktData).Bucket([]byte(defaultTenant)) }
	err = s.update(func(tx *bbolt.Tx) error {
		b := tenant(tx)
		if err := b.Bucket([]byte("ix.users.email")).Delete(pair("a@b", uid)); err != nil {
			return err
		}
		return b.Bucket([]byte("ix.users.userName")).Put([]byte("ghost"), []byte("nobody"))
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := s.Check()
	if err != nil || len(problems) != 2 {
		t.Fatalf("want 2 problems, got %v %v", problems, err)
	}
	// More damage, each reported: a membership one way only, a count off, a record whose stored
	// keys are not its document's and whose header lists events out of order, one the trail lacks, an index
	// entry pointing at another record.
	err = s.update(func(tx *bbolt.Tx) error {
		b := tenant(tx)
		if err := b.Bucket(bktMemberOf).Delete(pair(uid, gid)); err != nil {
			return err
		}
		if err := b.Bucket(bktCounts).Put([]byte("groups"), []byte{0, 0, 0, 0, 0, 0, 0, 7}); err != nil {
			return err
		}
		cl := s.layout.colls["users"]
		r := named(storage.NewID(), "stored")
		r.Doc = []byte(`{"userName":"documented"}`)
		if err := b.Bucket(cl.records).Put([]byte(r.ID), encodeRecord(cl, r, []uint64{1 << 40, 5})); err != nil {
			return err
		}
		if err := b.Bucket(bktMemberOf).Put(prefixOf("gone"), make([]byte, 16)); err != nil {
			return err
		}
		return b.Bucket([]byte("ix.groups.displayName")).Put([]byte("g"), []byte(uid))
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err = s.Check()
	for _, want := range []string{"memberOf lacks", "groups count says 7", "differ from its document", "displayName index points at", "ix.users.userName has an entry", "a version stamp of gone", "lists trail event 1099511627776, which the trail lacks", "out of order or too long"} {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("Check did not report %q: %v %v", want, problems, err)
		}
	}
}

// TestCommitFigures pins what a commit reports: an empty write still commits bbolt's freelist
// (one page write; the meta page is not counted), and a write that stores a record writes its
// leaf and the pages above it besides.
func TestCommitFigures(t *testing.T) {
	s := openTemp(t)
	var last storage.Commit
	s.ObserveCommits(func(c storage.Commit) { last = c })
	if err := s.Write(bg, defaultTenant, func(storage.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if last.Writes != 1 || last.PageWrites != 1 || last.Took <= 0 {
		t.Errorf("an empty write: %+v, want 1 write and 1 page write (the freelist)", last)
	}
	if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		_, err := tx.Insert(users, named(storage.NewID(), "figures"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if last.Writes != 1 || last.PageWrites < 3 {
		t.Errorf("a create: %+v, want 1 write and its leaves, their buckets and the freelist", last)
	}
}
