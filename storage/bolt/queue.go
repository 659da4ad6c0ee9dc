package bolt

import (
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// commitQueue gives concurrent writers group commit: one goroutine takes every write waiting at
// that moment and commits them in a single bbolt transaction, so one fsync acknowledges many
// writes. Unlike bbolt's Batch it never waits for company: a lone writer commits at once.
//
// A function may run more than once (when another function in its batch fails, the batch is
// rolled back and rerun without it), so it must derive everything from the transaction.
type commitQueue struct {
	db      *bbolt.DB
	calls   chan *call
	done    chan struct{} // closed by close: take no more writes
	stopped chan struct{} // closed when the writer goroutine has ended
	once    sync.Once
	stats   func(storage.Commit)
	settle  func(committed bool)
}

type call struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

const maxBatch = 256

// newCommitQueue starts the writer of db; settle, when not nil, is told after each commit whether
// it completed (the commit log's settle).
func newCommitQueue(db *bbolt.DB, stats func(storage.Commit), settle func(bool)) *commitQueue {
	q := &commitQueue{db: db, calls: make(chan *call, maxBatch), done: make(chan struct{}), stopped: make(chan struct{}), stats: stats, settle: settle}
	go q.run()
	return q
}

var errClosed = &storage.Error{Code: storage.Unavailable, Message: "the store is closed"}

func (q *commitQueue) write(fn func(*bbolt.Tx) error) error {
	c := &call{fn: fn, err: make(chan error, 1)}
	select {
	case <-q.done:
		return errClosed
	default:
	}
	// The channel has room for a call even after close: the writer goroutine may never take
	// it, so wait for its answer or for the goroutine's end, not for the answer alone.
	select {
	case q.calls <- c:
	case <-q.done:
		return errClosed
	}
	select {
	case err := <-c.err:
		return err
	case <-q.stopped:
		select {
		case err := <-c.err: // answered before the goroutine ended
			return err
		default:
			return errClosed
		}
	}
}

// close fails queued writes and waits for the commit in progress, so that the file can be
// closed under no writer.
func (q *commitQueue) close() {
	q.once.Do(func() { close(q.done) })
	<-q.stopped
}

func (q *commitQueue) run() {
	defer close(q.stopped)
	for {
		var first *call
		select {
		case <-q.done:
			return
		default:
		}
		select {
		case first = <-q.calls:
		case <-q.done:
			return
		}
		batch := []*call{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-q.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		q.commit(batch)
	}
}

// commit runs batch in one transaction. When one function fails, the transaction is rolled back,
// that function is answered with its own error from a solo run, and the rest are retried.
// Errors from the functions pass through unchanged; failures to commit become Unavailable.
func (q *commitQueue) commit(batch []*call) {
	for len(batch) > 0 {
		failed := -1
		err := q.update(len(batch), func(tx *bbolt.Tx) error {
			for i, c := range batch {
				if err := safeRun(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, c := range batch {
				c.err <- wrapBolt(err)
			}
			return
		}
		c := batch[failed]
		c.err <- q.solo(c)
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

func (q *commitQueue) solo(c *call) error {
	var fnErr error
	err := q.update(1, func(tx *bbolt.Tx) error {
		fnErr = safeRun(c.fn, tx)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapBolt(err)
}

// update runs fn in a bbolt write transaction carrying writes writes and, once it has committed,
// reports its figures: bbolt's statistics of a transaction are final when Commit returns. bbolt
// counts a write per node (however many adjacent pages it spans) and one for the meta page.
func (q *commitQueue) update(writes int, fn func(*bbolt.Tx) error) error {
	start := time.Now()
	var committed *bbolt.Tx
	err := q.db.Update(func(tx *bbolt.Tx) error {
		committed = tx
		return fn(tx)
	})
	if q.settle != nil {
		q.settle(err == nil)
	}
	if err == nil && q.stats != nil {
		st := committed.Stats()
		q.stats(storage.Commit{Writes: writes, Took: time.Since(start), PageWrites: int(st.GetWrite()) - 1})
	}
	return err
}

// safeRun turns a panic inside a write function into an error, so one bad request cannot stop
// the writer goroutine that every other request depends on.
func safeRun(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("storage: write function panicked: %v", r)
		}
	}()
	return fn(tx)
}
