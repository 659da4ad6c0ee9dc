package bolt

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

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
