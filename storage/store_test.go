package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s := openAt(t, filepath.Join(t.TempDir(), "data.db"))
	t.Cleanup(func() { s.Close() })
	return s
}

// openAt opens (creating) the data file at path with a bootstrapped default tenant; the caller
// closes it.
func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bootstrap(EnvTokens{}, nil); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

func TestTokens(t *testing.T) {
	s := openTemp(t)
	toks, err := s.Tokens(DefaultTenant)
	if err != nil || len(toks) != 1 || !toks[0].HasScope(ScopeSCIM) {
		t.Fatalf("bootstrap token: %v %v", toks, err)
	}
	tok, secret, err := s.CreateToken(testActor, TokenSpec{Tenant: DefaultTenant, Name: "okta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 43 || tok.Hash == secret {
		t.Fatalf("secret %q, hash %q", secret, tok.Hash)
	}
	if got, err := s.Authenticate(secret); err != nil || got.ID != tok.ID {
		t.Fatalf("authenticate: %v %v", got, err)
	}
	if _, err := s.Authenticate(secret + "x"); ErrorCode(err) != NotFound {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := s.RevokeToken(testActor, "other", tok.ID); ErrorCode(err) != NotFound {
		t.Fatalf("revoke through another tenant: %v", err)
	}
	if _, err := s.RevokeToken(testActor, DefaultTenant, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(secret); ErrorCode(err) != NotFound {
		t.Fatalf("revoked token still works: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	_, expired, err := s.CreateToken(testActor, TokenSpec{Tenant: DefaultTenant, Expires: &past})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(expired); ErrorCode(err) != NotFound {
		t.Fatalf("expired token works: %v", err)
	}
	if _, _, err := s.CreateToken(testActor, TokenSpec{Tenant: "nope"}); ErrorCode(err) != NotFound {
		t.Fatalf("token for a missing tenant: %v", err)
	}
	if _, _, err := s.CreateToken(testActor, TokenSpec{Tenant: DefaultTenant, Scopes: []string{"root"}}); ErrorCode(err) != Invalid {
		t.Fatalf("unknown scope: %v", err)
	}
	// A disabled tenant's tokens stop working.
	_, live, _ := s.CreateToken(testActor, TokenSpec{Tenant: DefaultTenant})
	if _, err := s.SetTenantDisabled(testActor, DefaultTenant, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(live); ErrorCode(err) != NotFound {
		t.Fatalf("disabled tenant: %v", err)
	}
	// SCIMSERVER_TOKEN replaces the token it set before.
	s2 := openTemp(t)
	first := "first-token-0123456789abcdefghijklmnopqrstuvwxyz"
	second := "second-token-0123456789abcdefghijklmnopqrstuvwxyz"
	if err := s2.Bootstrap(EnvTokens{SCIM: first}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s2.Bootstrap(EnvTokens{SCIM: second}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Authenticate(first); ErrorCode(err) != NotFound {
		t.Fatalf("old env token still works: %v", err)
	}
	if _, err := s2.Authenticate(second); err != nil {
		t.Fatalf("env token: %v", err)
	}
}

func TestUsersIndexesAndMemberships(t *testing.T) {
	s := openTemp(t)
	var alice, bob User
	err := s.Write(DefaultTenant, func(tx *Tx) error {
		var err error
		alice, err = tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: "Alice", ExternalID: "x1", Emails: []string{"A@example.com"}}})
		if err != nil {
			return err
		}
		bob, err = tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: "bob"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(DefaultTenant, func(tx *Tx) error {
		_, err := tx.CreateUser(User{ID: NewID(), Keys: UserKeys{UserName: "ALICE"}})
		return err
	})
	if ErrorCode(err) != Conflict {
		t.Fatalf("case-insensitive uniqueness: %v", err)
	}
	gid := NewID()
	err = s.Write(DefaultTenant, func(tx *Tx) error {
		if _, err := tx.CreateGroup(Group{ID: gid, Keys: GroupKeys{DisplayName: "G"}}); err != nil {
			return err
		}
		if err := tx.AddMember(gid, Member{Value: alice.ID}); err != nil {
			return err
		}
		return tx.AddMember(gid, Member{Value: bob.ID})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Renaming moves the index entries; deleting removes the user from its groups.
	err = s.Write(DefaultTenant, func(tx *Tx) error {
		u, _ := tx.User(alice.ID)
		u.Keys = UserKeys{UserName: "alice2", Emails: []string{"b@example.com"}}
		if _, err := tx.UpdateUser(u); err != nil {
			return err
		}
		return tx.DeleteUser(bob.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Read(DefaultTenant, func(tx *Tx) error {
		for _, c := range []struct {
			index, value string
			want         int
		}{{ByUserName, "alice", 0}, {ByUserName, "ALICE2", 1}, {ByExternalID, "x1", 0}, {ByEmail, "a@example.com", 0},
			{ByEmail, "B@EXAMPLE.COM", 1}, {ByUserName, "bob", 0}} {
			ids, err := tx.LookupUsers(c.index, c.value)
			if err != nil || len(ids) != c.want {
				return fmt.Errorf("%s=%s: %v %v", c.index, c.value, ids, err)
			}
		}
		if tx.IsMember(gid, bob.ID) || !tx.IsMember(gid, alice.ID) || tx.CountUsers() != 1 {
			return fmt.Errorf("memberships after delete")
		}
		if gs, _ := tx.GroupsOf(bob.ID); len(gs) != 0 {
			return fmt.Errorf("reverse index kept %v", gs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(DefaultTenant, func(tx *Tx) error { return tx.AddMember(gid, Member{Value: "missing"}) }); ErrorCode(err) != Invalid {
		t.Fatalf("unknown member: %v", err)
	}
}

// TestGroupCommit drives many concurrent writers, some of which fail, through the commit queue:
// every success is stored, no failure leaves a trace, and writes share commits.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t)
	c0, w0 := s.CommitStats() // the bootstrap's
	var observed, late atomic.Int64
	s.ObserveCommits(func(n int, _ time.Duration) { observed.Add(int64(n)) })
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 101 { // an observer added while writes run sees the commits after it
				s.ObserveCommits(func(n int, _ time.Duration) { late.Add(int64(n)) })
			}
			errs[i] = s.Write(DefaultTenant, func(tx *Tx) error {
				if _, err := tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: fmt.Sprintf("u%d", i)}}); err != nil {
					return err
				}
				if i%10 == 0 {
					return Errorf(Invalid, "fails on purpose")
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	want := 0
	for i, err := range errs {
		if i%10 == 0 {
			if ErrorCode(err) != Invalid {
				t.Fatalf("write %d: %v", i, err)
			}
		} else if err != nil {
			t.Fatalf("write %d: %v", i, err)
		} else {
			want++
		}
	}
	err := s.Read(DefaultTenant, func(tx *Tx) error {
		if tx.CountUsers() != want {
			return fmt.Errorf("count %d, want %d", tx.CountUsers(), want)
		}
		for i := 0; i < n; i++ {
			ids, _ := tx.LookupUsers(ByUserName, fmt.Sprintf("u%d", i))
			if (len(ids) == 1) != (i%10 != 0) {
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

func TestCheckFindsInconsistencies(t *testing.T) {
	s := openTemp(t)
	var uid string
	err := s.Write(DefaultTenant, func(tx *Tx) error {
		u, err := tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: "a", ExternalID: "x", Emails: []string{"a@b"}}})
		uid = u.ID
		if err != nil {
			return err
		}
		g, err := tx.CreateGroup(Group{ID: NewID(), Keys: GroupKeys{DisplayName: "g"}})
		if err != nil {
			return err
		}
		return tx.AddMember(g.ID, Member{Value: u.ID})
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(); err != nil || len(problems) != 0 {
		t.Fatalf("consistent file reported %v %v", problems, err)
	}
	// Break the index behind the store's back: Check must say so.
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktData).Bucket([]byte(DefaultTenant))
		if err := b.Bucket(bktEmail).Delete(pair("a@b", uid)); err != nil {
			return err
		}
		return b.Bucket(bktUserName).Put([]byte("ghost"), []byte("nobody"))
	})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := s.Check()
	if err != nil || len(problems) != 2 {
		t.Fatalf("want 2 problems, got %v %v", problems, err)
	}
}

func TestTrailPagingAndResourceIndex(t *testing.T) {
	s := openTemp(t)
	err := s.Write(DefaultTenant, func(tx *Tx) error {
		for i := 0; i < 25; i++ {
			res := "a"
			if i%5 == 0 {
				res = "b"
			}
			if err := tx.Record(Actor{ID: "t1", Name: "test"}, fmt.Sprintf("op%d", i), "User", res, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Read(DefaultTenant, func(tx *Tx) error {
		var seen []string
		var cursor uint64
		for page := 0; page < 10; page++ {
			evs, next, err := tx.Trail(TrailQuery{Limit: 10, Before: cursor})
			if err != nil {
				return err
			}
			for _, ev := range evs {
				seen = append(seen, ev.Operation)
			}
			if next == 0 {
				break
			}
			cursor = next
		}
		// The first start recorded the default tenant and its token before these.
		if len(seen) != 27 || seen[0] != "op24" || seen[24] != "op0" || seen[26] != OpTenantCreate {
			return fmt.Errorf("paged trail: %v", seen)
		}
		evs, next, err := tx.Trail(TrailQuery{ResourceID: "b", Limit: 3})
		if err != nil || len(evs) != 3 || evs[0].Operation != "op20" || evs[2].Operation != "op10" || next == 0 {
			return fmt.Errorf("resource trail: %v %d %v", evs, next, err)
		}
		evs, next, err = tx.Trail(TrailQuery{ResourceID: "b", Limit: 3, Before: next})
		if err != nil || len(evs) != 2 || evs[0].Operation != "op5" || next != 0 {
			return fmt.Errorf("resource trail page 2: %v %d %v", evs, next, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testActor is who the trail names for changes the tests make directly.
var testActor = Actor{ID: "test", Name: "test"}

// TestSizes: the file's size is what the file system says; the part holding live data is less,
// and shrinks when records are deleted (their pages become free). A read-only open sees the same.
func TestSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	ids := createUsers(t, s, 3000, NewID)
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
	if err := s.Write(DefaultTenant, func(tx *Tx) error {
		for _, id := range ids {
			if err := tx.DeleteUser(id); err != nil {
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
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, used := sizes(ro); used >= full/2 {
		t.Fatalf("read-only: used %d bytes, %d before the deletes", used, full)
	}
}
