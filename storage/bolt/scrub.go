package bolt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// bbolt does not clear a page when it frees it: after a record is overwritten, its old bytes
// stay readable in the raw file until the page is reused. A scrub overwrites every free page,
// so that values erased by anonymization leave no residue in the file.
//
// An erasure commits first and is scrubbed after: a page is reusable only once every reader
// that began before the write that freed it has ended, and no request may wait for another
// tenant's slow read. Each erasure is recorded as pending in its own transaction (so a crash
// cannot lose it: Open scrubs before serving); a background worker scrubs as soon as the older
// readers are gone, and hands each erasure it covered to Options.ErasureCleared, in the
// transaction that ends its pending state.

var (
	bktScrub        = []byte("scrub")        // scratch bucket that fills the free pages
	bktScrubPending = []byte("scrubPending") // in meta: tenant 0 userID -> time of the erasure
	// keyScrubOwed, in meta, counted erasures owed a scrub in format 1; a file that still has
	// it is scrubbed at open, with no user to mark.
	keyScrubOwed = []byte("scrubOwed")
)

var _ storage.Eraser = (*Store)(nil)

// readers tracks open read transactions by epoch, so that a scrub can wait for every reader
// that could still hold freed pages (bbolt keeps a page pending while an older reader is open).
type readers struct {
	mu    sync.Mutex
	epoch uint64
	open  map[uint64]int
	idle  map[uint64]chan struct{} // closed when the epoch's last reader leaves
}

func newReaders() *readers {
	return &readers{open: map[uint64]int{}, idle: map[uint64]chan struct{}{}}
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
		if c, ok := r.idle[e]; ok {
			close(c)
			delete(r.idle, e)
		}
	}
}

// waitOlder starts a new epoch and waits until every reader of the earlier ones has left; it
// reports false when stop closed first.
func (r *readers) waitOlder(stop <-chan struct{}) bool {
	r.mu.Lock()
	var waits []chan struct{}
	for e := range r.open {
		c, ok := r.idle[e]
		if !ok {
			c = make(chan struct{})
			r.idle[e] = c
		}
		waits = append(waits, c)
	}
	r.epoch++
	r.mu.Unlock()
	for _, c := range waits {
		select {
		case <-c:
		case <-stop:
			return false
		}
	}
	return true
}

// scrubber runs scrubs in the background, one at a time, and lets callers wait for one.
type scrubber struct {
	wake      chan struct{} // a scrub is wanted
	stop      chan struct{} // the store is closing
	closeOnce sync.Once
	done      chan struct{} // the worker has stopped

	mu       sync.Mutex
	started  uint64        // scrubs begun
	finished uint64        // scrubs ended, with or without success
	last     error         // how the last one ended
	ended    chan struct{} // closed and replaced whenever a scrub ends
}

func newScrubber() *scrubber {
	return &scrubber{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		ended: make(chan struct{})}
}

// scrubLoop is the worker: a scrub whenever one is asked for, again after a failure, and a
// look for pending erasures every minute whatever happens.
func (s *Store) scrubLoop() {
	sc := s.scrub
	defer close(sc.done)
	var retry time.Duration
	for {
		again := time.After(time.Minute)
		if retry > 0 {
			again = time.After(retry)
		}
		select {
		case <-sc.stop:
			sc.end(errClosed)
			return
		case <-sc.wake:
		case <-again:
		}
		sc.mu.Lock()
		sc.started++
		sc.mu.Unlock()
		err := s.scrubOnce(sc.stop)
		sc.end(err)
		if err == nil {
			retry = 0
		} else {
			retry = min(2*retry+time.Second, time.Minute)
		}
	}
}

func (sc *scrubber) end(err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.finished++
	sc.last = err
	close(sc.ended)
	sc.ended = make(chan struct{})
}

// AwaitErasure asks for a scrub of every erasure committed so far and waits until one has run:
// nil when it succeeded (nothing owed: at once), its error when it failed (the worker tries
// again by itself), ctx.Err() when ctx ends first (the scrub still runs).
func (s *Store) AwaitErasure(ctx context.Context) error {
	if s.scrub == nil {
		return storage.Errorf(storage.Unavailable, "the store is open read-only")
	}
	if n, _, err := s.PendingErasures(); err != nil || n == 0 {
		return err
	}
	sc := s.scrub
	sc.mu.Lock()
	want := sc.started + 1 // the next scrub to start sees every erasure committed before now
	sc.mu.Unlock()
	select {
	case sc.wake <- struct{}{}:
	default: // one is asked for already, and has not started
	}
	for {
		sc.mu.Lock()
		finished, last, ended := sc.finished, sc.last, sc.ended
		sc.mu.Unlock()
		if finished >= want || errors.Is(last, errClosed) {
			return last
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// scrubOnce overwrites the free pages for every erasure pending when it starts. It commits a
// barrier write and waits for the readers older than it, so that the pages freed by every
// earlier write are reusable; then it fills them with a scratch bucket, drops it, and marks
// the erasures scrubbed.
func (s *Store) scrubOnce(stop <-chan struct{}) error {
	owed, legacy, err := s.pendingKeys()
	if err != nil || (len(owed) == 0 && !legacy) {
		return err
	}
	if err := s.Ping(context.Background()); err != nil { // barrier: readers from now on see the latest commit
		return err
	}
	if !s.readers.waitOlder(stop) {
		return errClosed
	}
	for {
		done := false
		if err := s.update(func(tx *bbolt.Tx) error {
			var err error
			done, err = fillFree(tx, maxScrubPages)
			return err
		}); err != nil {
			return err
		}
		if done {
			break
		}
	}
	if err := s.clearLog(); err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bktScrub) != nil {
			if err := tx.DeleteBucket(bktScrub); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktMeta).Delete(keyScrubOwed); err != nil {
			return err
		}
		return s.markScrubbed(tx, owed, s.now())
	})
}

// clearLog overwrites both files of the commit log, which hold images of the pages written
// before: the active one is checkpointed and zeroed, then the other, which may still hold
// records of an earlier epoch past its header.
func (s *Store) clearLog() error {
	for range 2 {
		var done <-chan struct{}
		if err := s.update(func(*bbolt.Tx) error {
			done = s.log.rotate()
			return nil
		}); err != nil {
			return err
		}
		<-done
	}
	return s.log.failure()
}

// maxScrubPages bounds the pages one scrub transaction fills (4 MiB of 4 KiB pages), so that
// a file with much free space is scrubbed in steps with other writes between them.
const maxScrubPages = 1024

// fillFree writes random bytes over the pages free when tx began, up to max of them, in the
// scratch bucket; it reports whether it reached them all.
//
// The count comes from bbolt's statistics, which the last write transaction left: every write
// runs on the commit queue's goroutine, one after another, so they are exact for this one
// (free pages, plus pending pages of which this transaction may have released some). Pages are
// taken one at a time, free ones first, so writing as many pages as were free or pending uses
// every free page; the file grows by the pending pages that stayed pending, and no page is read.
func fillFree(tx *bbolt.Tx, max int) (bool, error) {
	st := tx.DB().Stats()
	want := st.FreePageN + st.PendingPageN
	if want == 0 {
		return true, nil
	}
	b, err := tx.CreateBucketIfNotExists(bktScrub)
	if err != nil {
		return false, err
	}
	b.FillPercent = 1.0
	// Four values to a page: each leaf is one page, and there is a leaf for every four values.
	size := tx.DB().Info().PageSize/4 - 64
	for i := 0; i < 4*min(want, max); i++ {
		seq, err := b.NextSequence()
		if err != nil {
			return false, err
		}
		val := make([]byte, size) // bbolt keeps the value until commit: one buffer each
		_, _ = rand.Read(val)
		if err := b.Put(seqKey(seq), val); err != nil {
			return false, err
		}
	}
	return want <= max, nil
}

// markScrubbed ends the pending state of the erasures owed (keys of bktScrubPending), handing
// each to the ErasureCleared hook.
func (s *Store) markScrubbed(btx *bbolt.Tx, owed [][]byte, now time.Time) error {
	pending := btx.Bucket(bktMeta).Bucket(bktScrubPending)
	for _, k := range owed {
		if pending.Get(k) == nil {
			continue
		}
		if err := pending.Delete(k); err != nil {
			return err
		}
		tenant, uid := splitPair(k)
		t, err := s.tenantTx(btx, tenant, now)
		if err != nil || s.cleared == nil {
			continue // the tenant is gone, or nobody records: nothing to mark
		}
		if err := s.cleared(t, uid, now); err != nil {
			return err
		}
	}
	return nil
}

func splitPair(k []byte) (string, string) {
	for i, c := range k {
		if c == 0 {
			return string(k[:i]), string(k[i+1:])
		}
	}
	return string(k), ""
}

// Erased records, in the transaction that erases user's values, that a scrub must follow.
func (t *tx) Erased(user string) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(t.now.UnixNano()))
	return t.tx.Bucket(bktMeta).Bucket(bktScrubPending).Put(pair(t.tenant, user), v[:])
}

// pendingKeys lists the erasures pending (tenant 0 user), and whether a count of format 1 is
// owed too.
func (s *Store) pendingKeys() (keys [][]byte, legacy bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		legacy = tx.Bucket(bktMeta).Get(keyScrubOwed) != nil
		p := tx.Bucket(bktMeta).Bucket(bktScrubPending)
		if p == nil {
			return nil
		}
		return p.ForEach(func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
	})
	return keys, legacy, err
}

// PendingErasures reports how many erasures wait for their scrub, and when the oldest of them
// committed (zero when none does).
func (s *Store) PendingErasures() (n int, oldest time.Time, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		p := tx.Bucket(bktMeta).Bucket(bktScrubPending)
		if p == nil {
			return nil
		}
		return p.ForEach(func(_, v []byte) error {
			n++
			if len(v) == 8 {
				if at := time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(); oldest.IsZero() || at.Before(oldest) {
					oldest = at
				}
			}
			return nil
		})
	})
	return n, oldest, err
}
