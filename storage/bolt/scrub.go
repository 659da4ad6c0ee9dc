package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// bbolt does not clear a page when it frees it: after a record is overwritten, its old bytes
// stay readable in the raw file until the page is reused. Scrub overwrites every free page, so
// that values erased by anonymization leave no residue in the file.

var bktScrub = []byte("scrub")

// readers tracks open read transactions by epoch, so that Scrub can wait for every reader that
// could still hold freed pages (bbolt keeps a page pending while an older reader is open).
type readers struct {
	mu    sync.Mutex
	cond  *sync.Cond
	epoch uint64
	open  map[uint64]int
}

func newReaders() *readers {
	r := &readers{open: map[uint64]int{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *readers) enter() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[r.epoch]++
	return r.epoch
}

func (r *readers) leave(e uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[e]--; r.open[e] == 0 {
		delete(r.open, e)
		r.cond.Broadcast()
	}
}

// waitOlder starts a new epoch and waits until every reader of the earlier ones has left, or
// until timeout; it reports whether they all left.
func (r *readers) waitOlder(timeout time.Duration) bool {
	timer := time.AfterFunc(timeout, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.epoch
	r.epoch++
	for {
		busy := false
		for e := range r.open {
			if e <= target {
				busy = true
			}
		}
		if !busy {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		r.cond.Wait()
	}
}

// Scrub overwrites the file's free pages with random bytes. It first commits a barrier write
// and waits for older readers, so that the pages freed by every earlier write are reusable;
// then it fills them with a scratch bucket and drops it. It returns the number of pages
// overwritten.
func (s *Store) Scrub() (int, error) {
	owed := s.owedScrubs()                               // erasures committed up to now; later ones need their own scrub
	if err := s.Ping(context.Background()); err != nil { // barrier: readers from now on see the latest commit
		return 0, err
	}
	if !s.readers.waitOlder(30 * time.Second) {
		return 0, storage.Errorf(storage.Unavailable, "scrub: a long-running read kept freed pages in use; retry")
	}
	pages := 0
	err := s.update(func(tx *bbolt.Tx) error {
		pages = 0
		for id := 0; ; id++ {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil {
				break
			}
			if info.Type == "free" {
				pages++
			}
		}
		if pages == 0 {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bktScrub)
		if err != nil {
			return err
		}
		b.FillPercent = 1.0
		// Four values to a page; a few more than the free pages, to reach those the writes
		// of this transaction free in turn.
		size := tx.DB().Info().PageSize/4 - 64
		var k [8]byte
		for i := 0; i < pages*4+256; i++ {
			val := make([]byte, size) // bbolt keeps the value until commit: one buffer each
			_, _ = rand.Read(val)
			binary.BigEndian.PutUint64(k[:], uint64(i))
			if err := b.Put(k[:], val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return pages, s.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bktScrub) != nil {
			if err := tx.DeleteBucket(bktScrub); err != nil {
				return err
			}
		}
		if owedIn(tx) != owed {
			return nil // another erasure committed meanwhile: its own scrub clears the mark
		}
		return tx.Bucket(bktMeta).Delete(keyScrubOwed)
	})
}

// keyScrubOwed, in the meta bucket, counts erasures whose values may still sit in free pages:
// incremented in the transaction that erases them, removed by a scrub that started after the
// last of them. A scrub that could not finish (a long read, a crash) is so never forgotten.
var keyScrubOwed = []byte("scrubOwed")

func owedIn(tx *bbolt.Tx) uint64 {
	v := tx.Bucket(bktMeta).Get(keyScrubOwed)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Erased records, in the transaction that erases values, that a scrub must follow.
func (t *tx) Erased(string) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], owedIn(t.tx)+1)
	return t.tx.Bucket(bktMeta).Put(keyScrubOwed, v[:])
}

func (s *Store) owedScrubs() uint64 {
	var n uint64
	_ = s.view(func(tx *bbolt.Tx) error {
		n = owedIn(tx)
		return nil
	})
	return n
}

// ScrubOwed reports whether erased values may still sit in free pages.
func (s *Store) ScrubOwed() bool { return s.owedScrubs() > 0 }

var _ storage.Eraser = (*Store)(nil)

// Erase overwrites the free pages (Scrub).
func (s *Store) Erase(context.Context) error {
	_, err := s.Scrub()
	return err
}

// EraseOwed reports whether a scrub is still owed.
func (s *Store) EraseOwed() bool { return s.ScrubOwed() }
