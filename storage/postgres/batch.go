package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// A tenant's writes run one at a time (they hold its row lock to their commit), so each waits
// for the commits before it, and a commit waits for the disk. Concurrent writes of one tenant
// therefore share a transaction, as on the bbolt engine: a leader takes the writes waiting for
// the tenant, runs each after a savepoint (a write whose function fails is rolled back to it and
// changes nothing), and commits them together; every writer returns once that commit has.
// Each write keeps its own clock reading and its own versions, as a transaction of its own.

// maxBatch bounds the writes of one transaction (each takes a subtransaction, and PostgreSQL
// slows down for every session once a transaction holds more than 64 of them).
const maxBatch = 32

type batches struct {
	mu sync.Mutex
	m  map[string]*queue // tenant -> its waiting writes, while a leader runs
}

type queue struct{ pending []*writeCall }

type writeCall struct {
	fn   func(*tx) error
	err  error
	done chan struct{}
}

// write runs fn in a write transaction over tenant, shared with the tenant's concurrent writes.
func (s *Store) write(ctx context.Context, tenant string, fn func(*tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	c := &writeCall{fn: fn, done: make(chan struct{})}
	b := &s.batches
	b.mu.Lock()
	if b.m == nil {
		b.m = map[string]*queue{}
	}
	q, running := b.m[tenant]
	if !running {
		q = &queue{}
		b.m[tenant] = q
	}
	q.pending = append(q.pending, c)
	b.mu.Unlock()
	if !running {
		// The leader serves writers that come after this one too: it runs within its own
		// bound (TxTimeout), not this request's.
		go s.lead(context.WithoutCancel(ctx), tenant, q)
	}
	<-c.done
	return c.err
}

// lead commits the tenant's waiting writes, a batch at a time, until none waits.
func (s *Store) lead(ctx context.Context, tenant string, q *queue) {
	b := &s.batches
	for {
		b.mu.Lock()
		calls := q.pending
		if len(calls) > maxBatch {
			calls = calls[:maxBatch]
		}
		q.pending = q.pending[len(calls):]
		if len(calls) == 0 {
			delete(b.m, tenant)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		s.commitBatch(ctx, tenant, calls)
		for _, c := range calls {
			close(c.done)
		}
	}
}

// errNoneLeft ends a batch whose writes all failed: nothing to commit.
var errNoneLeft = errors.New("every write of the batch failed")

func (s *Store) commitBatch(ctx context.Context, tenant string, calls []*writeCall) {
	start := time.Now()
	committed := 0
	err := s.transact(ctx, true, func(ctx context.Context, q *conn) error {
		committed = 0
		t, err := s.open(ctx, q, tenant, true, time.Time{})
		if err != nil {
			return err
		}
		for i, c := range calls {
			if i > 0 {
				t.now, t.changed = s.now(t.lastTime), map[string]bool{}
			}
			q.hold("SAVEPOINT write")
			t.prep, t.factsRead = nil, nil // what the write before read is its own
			saved := t.save()
			c.err = runSafely(c.fn, t)
			if q.failed != nil {
				// A statement held back failed, and the error this write met (or a domain error
				// made of it) is not the write's own: the transaction fails, and so does each write.
				c.err = q.failed
				return q.failed
			}
			if c.err == nil {
				committed++
				continue
			}
			if errors.Is(c.err, errRetry) {
				return errRetry // the whole transaction conflicted: run the batch again
			}
			if _, err := q.Exec(ctx, "ROLLBACK TO SAVEPOINT write"); err != nil {
				return dbError(err)
			}
			t.restore(saved)
		}
		if committed == 0 {
			return errNoneLeft
		}
		return t.flush()
	})
	switch {
	case errors.Is(err, errNoneLeft):
		return // each call holds its own error
	case err != nil:
		for _, c := range calls {
			if c.err == nil {
				c.err = err
			}
		}
		return
	}
	s.observers.Observe(storage.Commit{Writes: committed, Took: time.Since(start)})
	s.wrote(committed)
}

// runSafely turns a panic in a write function into its error, so that one bad request cannot
// stop its tenant's writes.
func runSafely(fn func(*tx) error, t *tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("storage: write function panicked: %v", r)
		}
	}()
	return fn(t)
}

// txState is what a tenant view accumulates for its flush, kept before each write of a batch
// so that a failed one leaves nothing of itself.
type txState struct {
	seq, events, lastTime int64
	appended              bool
	counts                map[string]count
	blocks                map[[2]string]int64
}

func (t *tx) save() txState {
	st := txState{seq: t.seq, events: t.events, lastTime: t.lastTime, appended: t.appended,
		counts: make(map[string]count, len(t.counts)), blocks: maps.Clone(t.blocks)}
	for k, c := range t.counts {
		st.counts[k] = *c
	}
	return st
}

func (t *tx) restore(st txState) {
	t.seq, t.events, t.lastTime, t.appended, t.blocks = st.seq, st.events, st.lastTime, st.appended, st.blocks
	t.counts = make(map[string]*count, len(st.counts))
	for k, c := range st.counts {
		t.counts[k] = &c
	}
}
