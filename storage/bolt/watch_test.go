package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// These tests speak the storage contract only: they belong with the conformance suite that
// every engine runs.

func openWatchStore(t *testing.T, tenants ...string) storage.Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "data.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.WriteAdmin(context.Background(), func(a storage.AdminTx) error {
		for _, id := range tenants {
			if err := a.PutTenant(storage.Tenant{ID: id, Name: id, Created: a.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func appendEvent(s storage.Store, tenant string, fail error) error {
	return s.Write(context.Background(), tenant, func(tx storage.Tx) error {
		if err := tx.Append(storage.Event{Operation: "create", ResourceType: "User", ResourceID: "u1"}); err != nil {
			return err
		}
		return fail
	})
}

// TestWatch: a watch ends with the first commit that appends to its tenant's trail, and with
// nothing else: not another tenant's commit, not a write that was rolled back.
func TestWatch(t *testing.T) {
	s := openWatchStore(t, "a", "b")
	w := s.Watch("a")
	if closed(w) {
		t.Fatal("a fresh watch is already over")
	}
	if err := appendEvent(s, "b", nil); err != nil {
		t.Fatal(err)
	}
	if err := appendEvent(s, "a", errors.New("refused")); err == nil {
		t.Fatal("the failing write succeeded")
	}
	if closed(w) {
		t.Fatal("another tenant's commit or a rolled-back write woke the watcher")
	}
	if err := appendEvent(s, "a", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(5 * time.Second):
		t.Fatal("the commit did not wake the watcher")
	}
	// A watch begun after the commit waits for the next one.
	if w2 := s.Watch("a"); closed(w2) {
		t.Fatal("a watch begun after the commit is already over")
	}
}

// TestWatchClose: closing the store wakes every watcher, and later watches end at once.
func TestWatchClose(t *testing.T) {
	s := openWatchStore(t, "a")
	w := s.Watch("a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !closed(w) || !closed(s.Watch("a")) {
		t.Fatal("a closed store leaves watchers waiting")
	}
}

// TestEventVersionAndRelatedType: the trail keeps what the change feed reads of an event.
func TestEventVersionAndRelatedType(t *testing.T) {
	s := openWatchStore(t, "a")
	in := storage.Event{Operation: "member-add", ResourceType: "Group", ResourceID: "g1", Related: "u1",
		RelatedType: "User", Version: 7}
	err := s.Write(context.Background(), "a", func(tx storage.Tx) error { return tx.Append(in) })
	if err != nil {
		t.Fatal(err)
	}
	var got []storage.Event
	err = s.Read(context.Background(), "a", func(tx storage.Tx) error {
		return tx.Events(0, func(ev storage.Event) (bool, error) { got = append(got, ev); return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Version != 7 || got[0].RelatedType != "User" || got[0].Related != "u1" {
		t.Fatalf("read back %+v", got)
	}
}

// TestCollectionDeclaredSinceReadOnly: a file last written before a collection was declared
// opens read-only and checks clean (the collection reads as undeclared), and gets the
// collection at its next open for writing.
func TestCollectionDeclaredSinceReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	older := []*storage.Collection{{Name: "users"}}
	newer := append(older, &storage.Collection{Name: "hooks"})
	s, err := Open(path, Options{Collections: older})
	if err == nil {
		err = s.WriteAdmin(context.Background(), func(a storage.AdminTx) error { return a.PutTenant(storage.Tenant{ID: "a"}) })
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(path, Options{Collections: newer, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := ro.Check(); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
	err = ro.Read(context.Background(), "a", func(tx storage.Tx) error { _, err := tx.Get(newer[1], "x"); return err })
	if storage.ErrorCode(err) != storage.Invalid {
		t.Fatalf("a read of the collection the file lacks: %v", err)
	}
	ro.Close()
	s, err = Open(path, Options{Collections: newer})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Write(context.Background(), "a", func(tx storage.Tx) error {
		_, err := tx.Insert(newer[1], storage.Record{ID: "x", Doc: []byte(`{}`)})
		return err
	})
	if problems, cerr := s.Check(); err != nil || cerr != nil || len(problems) > 0 {
		t.Fatalf("after the writable open: %v %v %v", err, problems, cerr)
	}
}
