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
// Another goroutine answers them once the commit log has made their commit durable and
// published it (flush), while the writer goes on with the next commit.
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
	flush   func(txid uint64) error
	// committed carries each commit, in order, to the goroutine that answers it; acked is
	// closed when that goroutine has ended.
	committed chan commitDone
	acked     chan struct{}
}

// commitDone is a commit waiting to be durable: its calls are answered when it is.
type commitDone struct {
	txid  uint64
	calls []*call
	start time.Time
	pages int
}

type call struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

const maxBatch = 256

// newCommitQueue starts the writer of db and the goroutine that answers its commits; settle is
// told after each commit whether it completed, and flush makes the commits up to a txid durable
// and published (the commit log's).
func newCommitQueue(db *bbolt.DB, stats func(storage.Commit), settle func(bool), flush func(uint64) error) *commitQueue {
	q := &commitQueue{db: db, calls: make(chan *call, maxBatch), done: make(chan struct{}), stopped: make(chan struct{}),
		stats: stats, settle: settle, flush: flush, committed: make(chan commitDone, maxBatch), acked: make(chan struct{})}
	go q.run()
	go q.answer()
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

// close fails queued writes and waits for the commit in progress to be answered, so that the
// file can be closed under no writer.
func (q *commitQueue) close() {
	q.once.Do(func() { close(q.done) })
	<-q.stopped
	<-q.acked
}

func (q *commitQueue) run() {
	defer close(q.stopped)
	defer close(q.committed)
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
		err := q.update(batch, func(tx *bbolt.Tx) error {
			for i, c := range batch {
				if err := safeRun(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if err != nil {
				for _, c := range batch {
					c.err <- wrapBolt(err)
				}
			}
			return
		}
		c := batch[failed]
		q.solo(c)
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// solo commits c on its own, or answers it with its own error.
func (q *commitQueue) solo(c *call) {
	var fnErr error
	err := q.update([]*call{c}, func(tx *bbolt.Tx) error {
		fnErr = safeRun(c.fn, tx)
		return fnErr
	})
	switch {
	case fnErr != nil:
		c.err <- fnErr
	case err != nil:
		c.err <- wrapBolt(err)
	}
}

// update runs fn in a bbolt write transaction for calls and, once it has committed, hands the
// calls to answer (q.committed), with bbolt's statistics of the transaction, final when Commit
// returns. bbolt counts a write per node (however many adjacent pages it spans) and one for the
// meta page.
func (q *commitQueue) update(calls []*call, fn func(*bbolt.Tx) error) error {
	start := time.Now()
	var committed *bbolt.Tx
	var txid uint64
	err := q.db.Update(func(tx *bbolt.Tx) error {
		committed, txid = tx, uint64(tx.ID()) // the ID is gone once the transaction closes
		return fn(tx)
	})
	q.settle(err == nil)
	if err == nil {
		st := committed.Stats()
		q.committed <- commitDone{txid: txid, calls: calls, start: start, pages: int(st.GetWrite()) - 1}
	}
	return err
}

// answer answers each commit's calls once flush has made it durable and published, taking at
// once every commit waiting: one sync for them all.
func (q *commitQueue) answer() {
	defer close(q.acked)
	for first := range q.committed {
		done := []commitDone{first}
	more:
		for {
			select {
			case d, ok := <-q.committed:
				if !ok {
					break more
				}
				done = append(done, d)
			default:
				break more
			}
		}
		err := wrapBolt(q.flush(done[len(done)-1].txid))
		for _, d := range done {
			if err == nil { // reported before the answers, which a caller may read the figures after
				q.stats(storage.Commit{Writes: len(d.calls), Took: time.Since(d.start), PageWrites: d.pages})
			}
			for _, c := range d.calls {
				c.err <- err
			}
		}
	}
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
