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
// Commits are made durable by a second goroutine, the publisher, which syncs the commit log
// and publishes the meta page (bbolt's PublishMeta) while the writer makes the next commit: the
// disk's sync and the writer's work overlap. Every answer, an error as much as a success, waits
// for the commits made before it to be published, so that no client learns of a state that a
// crash could still take back.
//
// A function may run more than once (when another function in its batch fails, the batch is
// rolled back and rerun without it), so it must derive everything from the transaction.
type commitQueue struct {
	db      *bbolt.DB
	log     *commitLog
	calls   chan *call
	made    chan made     // to the publisher, in commit order; closed when the writer ends
	done    chan struct{} // closed by close: take no more writes
	stopped chan struct{} // closed when the publisher has answered everything and ended
	once    sync.Once
	stats   func(storage.Commit)
	after   []func() // what the commit being made asked to run once published (writer only)
}

type call struct {
	fn  func(*bbolt.Tx) error
	err chan error
}

// made is what the writer hands the publisher: a commit to make durable and publish (meta
// set), the answers to give once it is, and work to run then; or, with drained set, a point
// to report reaching.
type made struct {
	calls   []*call
	errs    []error // each call's answer; nil when the commit's outcome answers them all
	meta    []byte
	after   []func()
	commit  storage.Commit // Took counts from start
	start   time.Time
	drained chan struct{}
}

const maxBatch = 256

// newCommitQueue starts the writer and the publisher of db, whose commits go through log.
func newCommitQueue(db *bbolt.DB, log *commitLog, stats func(storage.Commit)) *commitQueue {
	q := &commitQueue{db: db, log: log, calls: make(chan *call, maxBatch), made: make(chan made, maxBatch),
		done: make(chan struct{}), stopped: make(chan struct{}), stats: stats}
	log.drain = q.drain
	go q.run()
	go q.publish()
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
	// it, so wait for its answer or for the goroutines' end, not for the answer alone.
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
		case err := <-c.err: // answered before the goroutines ended
			return err
		default:
			return errClosed
		}
	}
}

// close fails queued writes and waits for the commit in progress to be published, so that the
// file can be closed under no writer.
func (q *commitQueue) close() {
	q.once.Do(func() { close(q.done) })
	<-q.stopped
}

// later runs fn once the commit being made is published; dropped if it is rolled back. Only
// write functions call it.
func (q *commitQueue) later(fn func()) { q.after = append(q.after, fn) }

// drain returns once every commit made so far is published. Only the writer calls it.
func (q *commitQueue) drain() {
	ch := make(chan struct{})
	q.made <- made{drained: ch}
	<-ch
}

func (q *commitQueue) run() {
	defer close(q.made)
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
				q.answer(batch, wrapBolt(err))
			}
			return
		}
		c := batch[failed]
		q.solo(c)
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

func (q *commitQueue) solo(c *call) {
	var fnErr error
	err := q.update([]*call{c}, func(tx *bbolt.Tx) error {
		fnErr = safeRun(c.fn, tx)
		return fnErr
	})
	switch {
	case fnErr != nil:
		q.answer([]*call{c}, fnErr)
	case err != nil:
		q.answer([]*call{c}, wrapBolt(err))
	}
}

// answer has the publisher give calls err once the commits before are published: a refusal
// can rest on what they wrote.
func (q *commitQueue) answer(calls []*call, err error) {
	errs := make([]error, len(calls))
	for i := range errs {
		errs[i] = err
	}
	q.made <- made{calls: calls, errs: errs}
}

// update runs fn in a bbolt write transaction for calls and, once it has committed, hands the
// commit to the publisher, which answers calls; on an error it answers nothing. bbolt's
// statistics of a transaction are final when Commit returns. bbolt counts a write per node
// (however many adjacent pages it spans), and none for the meta page, which it leaves to the
// publisher.
func (q *commitQueue) update(calls []*call, fn func(*bbolt.Tx) error) error {
	start := time.Now()
	q.after = nil
	var committed *bbolt.Tx
	err := q.db.Update(func(tx *bbolt.Tx) error {
		committed = tx
		return fn(tx)
	})
	q.log.settle(err == nil)
	if err != nil {
		return err
	}
	st := committed.Stats()
	m := made{calls: calls, meta: q.log.meta, after: q.after, start: start,
		commit: storage.Commit{Writes: len(calls), PageWrites: int(st.GetWrite())}}
	q.log.meta, q.after = nil, nil
	q.made <- m
	return nil
}

// publish makes the commits the writer hands over durable, as many at once as are waiting
// (one sync of the log), publishes the last one's meta page, then gives the answers and runs
// what the commits left to run.
func (q *commitQueue) publish() {
	defer close(q.stopped)
	for m := range q.made {
		batch := []made{m}
	more:
		for {
			select {
			case m, ok := <-q.made:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		var meta []byte
		for _, m := range batch {
			if m.meta != nil {
				meta = m.meta
			}
		}
		var err error
		if meta != nil {
			if err = q.log.flush(); err == nil {
				if err = q.db.PublishMeta(meta); err != nil {
					err = q.log.fail(fmt.Errorf("publish a commit: %w", err))
				}
			}
		}
		for _, m := range batch {
			if err == nil && m.meta != nil {
				for _, fn := range m.after {
					fn()
				}
				if q.stats != nil {
					m.commit.Took = time.Since(m.start)
					q.stats(m.commit)
				}
			}
			for i, c := range m.calls {
				switch {
				case err != nil:
					c.err <- wrapBolt(err)
				case m.errs != nil:
					c.err <- m.errs[i]
				default:
					c.err <- nil
				}
			}
			if m.drained != nil {
				close(m.drained)
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
