package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// TestUnpublishedCommitsSpareThePublishedPages: under a commit log, bbolt's writer builds on
// commits whose meta page is not written yet (the log is still syncing them), while readers,
// and the data file after a power cut, stay at the published meta. The commits made meanwhile
// must not overwrite a page that meta uses, even one they freed themselves: the data file
// alone, as a crash before the log's sync leaves it, must read as it did when published.
func TestUnpublishedCommitsSpareThePublishedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	var meta []byte
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{CommitLog: func(pages []bbolt.CommitPage) error {
		meta = slices.Clone(pages[len(pages)-1].Data)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	fill := func(round, n int) {
		t.Helper()
		if err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			for i := range n {
				if err := b.Put(fmt.Appendf(nil, "key-%05d", i), bytes.Repeat([]byte{byte('a' + round)}, 200)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(db *bbolt.DB) (string, int) {
		t.Helper()
		var first byte
		n := 0
		if err := db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if n == 0 {
					first = v[0]
				} else if v[0] != first {
					return fmt.Errorf("%s holds %q, the key before %q", k, v[0], first)
				}
				n++
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return string(first), n
	}

	fill(0, 2000) // values "a…": published
	if err := db.PublishMeta(meta); err != nil {
		t.Fatal(err)
	}
	published, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fill(1, 2000) // "b…" over every value: frees every leaf page of the published tree
	second := meta
	fill(2, 2000) // "c…": frees the pages the commit before wrote, never published yet
	fill(3, 3000) // "d…": allocates more pages than that, from whatever bbolt holds free
	if v, n := read(db); v != "a" || n != 2000 {
		t.Fatalf("a reader sees %d values %q before the commits are published, want the published 2000 %q", n, v, "a")
	}

	// The data file as a power cut before the log's sync leaves it: every page the later
	// commits wrote, but not their meta page. Read as a file of its own, it must be the
	// published one, untouched.
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now[:2*db.Info().PageSize], published[:2*db.Info().PageSize]) {
		t.Fatal("a meta page of the data file changed before PublishMeta")
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	if err := os.WriteFile(cut, now, 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := bbolt.Open(cut, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if v, n := read(after); v != "a" || n != 2000 {
		t.Errorf("after a power cut the data file holds %d values %q, want the published 2000 %q", n, v, "a")
	}
	if err := after.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Errorf("after a power cut the data file is not consistent: %v", err)
	}
	after.Close()

	// The commits are published in turn: the second, whose pages the third freed and the
	// fourth could have taken, reads as it was made.
	if err := db.PublishMeta(second); err != nil {
		t.Fatal(err)
	}
	if v, n := read(db); v != "b" || n != 2000 {
		t.Errorf("a reader sees %d values %q once the second commit is published, want 2000 %q", n, v, "b")
	}
	if err := db.PublishMeta(meta); err != nil {
		t.Fatal(err)
	}
	if v, n := read(db); v != "d" || n != 3000 {
		t.Errorf("a reader sees %d values %q once the last commit is published, want 3000 %q", n, v, "d")
	}
}

// TestReadersBesideUnpublishedCommits: the writer runs ahead of a publisher that lags as a
// log's sync does, while readers walk the published state. Each commit between the published
// one and the writer's will itself be published and read: none of the pages any of them uses
// may be overwritten meanwhile (every value starts with its key, keys come in order).
func TestReadersBesideUnpublishedCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	var last []byte
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{CommitLog: func(pages []bbolt.CommitPage) error {
		last = slices.Clone(pages[len(pages)-1].Data)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	metas := make(chan []byte, 64)
	published := make(chan struct{})
	go func() { // the publisher: a sync's delay, then the latest meta
		defer close(published)
		for m := range metas {
			time.Sleep(200 * time.Microsecond)
			for more := true; more; {
				select {
				case next, ok := <-metas:
					if ok {
						m = next
					}
					more = ok
				default:
					more = false
				}
			}
			if err := db.PublishMeta(m); err != nil {
				t.Error(err)
			}
		}
	}()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := db.View(func(tx *bbolt.Tx) error {
					b := tx.Bucket([]byte("b"))
					if b == nil {
						return nil
					}
					var prev []byte
					return b.ForEach(func(k, v []byte) error {
						if prev != nil && bytes.Compare(prev, k) >= 0 {
							return fmt.Errorf("key %q after %q", k, prev)
						}
						if !bytes.HasPrefix(v, k) {
							return fmt.Errorf("the value of %q is not its own", k)
						}
						prev = slices.Clone(k)
						return nil
					})
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for range 50 {
				k := fmt.Appendf(nil, "k%06d", rng.IntN(20000))
				if rng.IntN(4) == 0 {
					err = b.Delete(k)
				} else {
					err = b.Put(k, append(k, make([]byte, 100+rng.IntN(300))...))
				}
				if err != nil {
					return err
				}
			}
			if i%10 == 0 {
				return errRolledBack // a rollback now and then, as a failed batch does
			}
			return nil
		})
		switch {
		case err == nil:
			metas <- last
		case err != errRolledBack:
			t.Fatal(err)
		}
	}
	close(metas)
	<-published
	close(stop)
	readers.Wait()
}

var errRolledBack = errors.New("rolled back")
