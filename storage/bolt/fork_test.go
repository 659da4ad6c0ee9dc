package bolt

import (
	"fmt"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// TestForkKeepsBucketOperations: the fork's write transactions lend one cursor to Get, Put and
// Delete; bucket operations that call one another (deleting a bucket deletes its nested ones)
// and a Put inside a ForEach keep working as in bbolt, and the file stays consistent.
func TestForkKeepsBucketOperations(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "fork.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			top, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for i := range 3 {
				nested, err := top.CreateBucket(fmt.Appendf(nil, "nested%d", i))
				if err != nil {
					return err
				}
				for k := range 200 {
					if err := nested.Put(fmt.Appendf(nil, "k%03d", k), []byte("v")); err != nil {
						return err
					}
				}
			}
			if err := top.Put([]byte("plain"), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("b")); err != nil {
			return err
		}
		c := tx.Bucket([]byte("c"))
		return c.Bucket([]byte("nested1")).ForEach(func(k, _ []byte) error {
			return c.Bucket([]byte("nested2")).Put(append([]byte("copy-"), k...), []byte("w"))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		if tx.Bucket([]byte("b")) != nil || tx.Bucket([]byte("a")) == nil || tx.Bucket([]byte("c")).Get([]byte("plain")) == nil {
			return fmt.Errorf("after deleting b: a %v, b %v, c's plain key %q", tx.Bucket([]byte("a")) != nil, tx.Bucket([]byte("b")) != nil, tx.Bucket([]byte("c")).Get([]byte("plain")))
		}
		n := 0
		_ = tx.Bucket([]byte("c")).Bucket([]byte("nested2")).ForEach(func(_, _ []byte) error { n++; return nil })
		if n != 400 {
			return fmt.Errorf("c/nested2 holds %d keys, want 400", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
