package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// TestForkKeepsBucketOperations: the fork's transactions lend one cursor to Get, Put, Delete
// and the opening of a nested bucket; bucket operations that call one another (deleting a bucket
// deletes its nested ones), a Put inside a ForEach, and Gets and bucket lookups inside a read
// transaction's ForEach keep working as in bbolt, also with read transactions running at once,
// and the file stays consistent.
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
		// Check searches on a goroutine of its own: its channel is read to the end before the
		// transaction is used again or closed.
		var problems []error
		for err := range tx.Check() {
			problems = append(problems, err)
		}
		if len(problems) > 0 {
			return errors.Join(problems...)
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
	// Readers at once, each looking keys and buckets up inside its own iteration, beside a
	// writer searching with its own lent cursor.
	var readers sync.WaitGroup
	errs := make(chan error, 5)
	readers.Go(func() {
		errs <- db.Update(func(tx *bbolt.Tx) error {
			a := tx.Bucket([]byte("a"))
			for k := range 200 {
				if err := a.Bucket([]byte("nested1")).Put(fmt.Appendf(nil, "w%03d", k), a.Bucket([]byte("nested0")).Get(fmt.Appendf(nil, "k%03d", k))); err != nil {
					return err
				}
			}
			return nil
		})
	})
	for range 4 {
		readers.Go(func() {
			errs <- db.View(func(tx *bbolt.Tx) error {
				c := tx.Bucket([]byte("c"))
				seen := 0
				err := c.Bucket([]byte("nested1")).ForEach(func(k, _ []byte) error {
					seen++
					if got := c.Bucket([]byte("nested2")).Get(append([]byte("copy-"), k...)); string(got) != "w" {
						return fmt.Errorf("c/nested2 copy-%s = %q inside the iteration, want w", k, got)
					}
					if got := c.Bucket([]byte("nested1")).Get(k); got == nil {
						return fmt.Errorf("c/nested1 %s not found inside its own iteration", k)
					}
					if got := tx.Bucket([]byte("a")).Bucket([]byte("nested0")).Get(k); string(got) != "v" {
						return fmt.Errorf("a/nested0 %s = %q inside the iteration, want v", k, got)
					}
					return nil
				})
				if err == nil && seen != 200 {
					err = fmt.Errorf("the iteration saw %d keys of c/nested1, want 200", seen)
				}
				return err
			})
		})
	}
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	err = db.View(func(tx *bbolt.Tx) error {
		if got := tx.Bucket([]byte("a")).Bucket([]byte("nested1")).Get([]byte("w199")); string(got) != "v" {
			return fmt.Errorf("the writer's copy of a/nested0 k199 is %q, want v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
