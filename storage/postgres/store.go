// Package postgres is the storage engine for PostgreSQL: every tenant's data, the tenants and the
// tokens in one database (one schema of it), shared by any number of scimserver processes. It
// implements the storage contract and passes its conformance suite.
//
// Writes are serialised per tenant by a row lock on the tenant's row, taken first in every write
// transaction and held until its commit; admin writes are serialised by an advisory lock. A write
// returns nil only once PostgreSQL has answered its COMMIT (synchronous_commit is never turned
// off). Change-feed watchers are woken through LISTEN/NOTIFY, so a commit by any process wakes
// the watchers of every process. Statements whose only answer is success (BEGIN, SAVEPOINT, a
// trail append) travel in one pipeline with the statement after them (conn.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/internal/observe"
	"github.com/scimserver/scimserver/storage/internal/watch"
)

// Options tune Open.
type Options struct {
	// Collections are the record collections the domain declares. Indexes declared since the
	// database was last opened, or declared differently, are built from the records at open.
	Collections []*storage.Collection
	// MaxConns bounds the connection pool (the URL's pool_max_conns wins); 0 means 16.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt (the URL's connect_timeout wins); 0 means
	// five seconds. While the database is unreachable, requests fail after it rather than hang.
	ConnectTimeout time.Duration
	// TxTimeout bounds a transaction whose context has no deadline; 0 means one minute.
	TxTimeout time.Duration
	// ReadOnly opens for reading (a check, an export) without changing the database: a schema
	// older than this version's, or an index it declares and the database lacks, is refused
	// rather than migrated or built, and the statistics are left to the servers.
	ReadOnly bool
}

// Store is an open PostgreSQL database.
type Store struct {
	pool      *pgxpool.Pool
	colls     map[string]*storage.Collection
	channel   string // the NOTIFY channel of this schema's trail commits
	watchers  *watch.Set
	listener  *listener
	closed    atomic.Bool
	closeOnce sync.Once
	vacuums   chan struct{}  // asks the vacuumer for a targeted VACUUM (erase.go)
	stopped   chan struct{}  // closed by Close: the background work ends
	workers   sync.WaitGroup // the background work: the vacuumer and the statistics refresh
	recheck   chan struct{}  // asks the statistician for a check (analyze.go)
	unchecked atomic.Int64   // writes committed since the last such request
	last      atomic.Int64   // the latest clock reading (Unix ns)
	observers observe.Commits
	txTimeout time.Duration
	readOnly  bool
	batches   batches
	tids      sync.Map // tenant id -> its row number (tenants.tid), which never changes
}

var (
	_ storage.Store        = (*Store)(nil)
	_ storage.Instrumented = (*Store)(nil)
	_ storage.Importer     = (*Store)(nil)
)

// IsURL reports whether data names a PostgreSQL database rather than a file.
func IsURL(data string) bool {
	return strings.HasPrefix(data, "postgres://") || strings.HasPrefix(data, "postgresql://")
}

// Redact returns the URL without its password, for logs and messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// Open connects to the database at rawURL, applies the schema migrations this version has and
// the database lacks (refusing a database whose schema is newer), and builds the indexes
// declared since the last open. Several processes may open one database at once: migrations and
// index builds run under an advisory lock, once.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: the URL is invalid", Redact(rawURL))
	}
	if !strings.Contains(rawURL, "pool_max_conns") {
		cfg.MaxConns = 16
		if opts.MaxConns > 0 {
			cfg.MaxConns = opts.MaxConns
		}
	}
	if !strings.Contains(rawURL, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
		if opts.ConnectTimeout > 0 {
			cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		}
	}
	// A commit is durable when it returns, whatever the server's or role's default says.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", Redact(rawURL), err)
	}
	s := &Store{pool: pool, colls: map[string]*storage.Collection{}, watchers: &watch.Set{}, txTimeout: opts.TxTimeout, readOnly: opts.ReadOnly,
		vacuums: make(chan struct{}, 1), recheck: make(chan struct{}, 1), stopped: make(chan struct{})}
	if s.txTimeout <= 0 {
		s.txTimeout = time.Minute
	}
	for _, c := range opts.Collections {
		s.colls[c.Name] = c
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", Redact(rawURL), err)
	}
	if err := s.migrate(ctx, opts.Collections); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", Redact(rawURL), err)
	}
	s.channel = channelOf(schema)
	if s.listener, err = listen(ctx, cfg.ConnConfig.Copy(), s.channel, s.watchers); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: listen for commits: %w", Redact(rawURL), err)
	}
	s.workers.Go(s.vacuumer)
	if !s.readOnly { // the servers keep the statistics
		s.workers.Go(s.statistician)
	}
	return s, nil
}

// Close stops the listener, wakes every watcher and closes the pool (waiting for transactions
// in progress). Closing twice does no harm.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stopped)
		s.workers.Wait()
		s.listener.stop()
		s.watchers.Close()
		s.pool.Close()
	})
	return nil
}

var errClosed = &storage.Error{Code: storage.Unavailable, Message: "the store is closed"}

// untilClosed returns a context that ends when the store closes.
func (s *Store) untilClosed() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Ping checks that the database answers and takes writes (it is not a standby in recovery).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	var recovering bool
	if err := s.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering); err != nil {
		return dbError(err)
	}
	if recovering {
		return storage.Errorf(storage.Unavailable, "the database is a standby in recovery and takes no writes")
	}
	return nil
}

// now is a transaction's clock reading: the system clock in UTC, but always later than this
// process's reading before (see the bolt engine's now); a write also reads later than its
// tenant's newest event, whichever process wrote it, so that trail times follow seq order.
func (s *Store) now(after int64) time.Time {
	for {
		last := s.last.Load()
		n := time.Now().UnixNano()
		n = max(n, last+1, after+1)
		if s.last.CompareAndSwap(last, n) {
			return time.Unix(0, n).UTC()
		}
	}
}

// Read runs fn in a read-only REPEATABLE READ transaction: one snapshot of tenant's data.
func (s *Store) Read(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.transact(ctx, false, func(ctx context.Context, q *conn) error {
		t, err := s.open(ctx, q, tenant, false, time.Time{})
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// Write runs fn in a write transaction over tenant, shared with the tenant's concurrent writers
// (see batches).
func (s *Store) Write(ctx context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.write(ctx, tenant, func(t *tx) error { return fn(t) })
}

// Import runs fn like Write, with the import methods.
func (s *Store) Import(ctx context.Context, tenant string, fn func(storage.ImportTx) error) error {
	return s.write(ctx, tenant, func(t *tx) error { return fn(importTx{t}) })
}

// adminLock is the advisory lock key every admin write holds: admin writes check tokens'
// uniqueness and bootstrap the default tenant, each once across every process.
const adminLock = 0x5c1a_ad01

// ReadAdmin runs fn in a read-only transaction over tenants and tokens.
func (s *Store) ReadAdmin(ctx context.Context, fn func(storage.AdminTx) error) error {
	return s.transact(ctx, false, func(ctx context.Context, q *conn) error {
		return fn(&adminTx{s: s, ctx: ctx, q: q, now: s.now(0), views: map[string]*tx{}})
	})
}

// WriteAdmin runs fn in a write transaction over tenants and tokens, serialised with every other
// admin write by an advisory lock; AdminTx.In then takes the tenant's row lock too (always in
// that order, admin lock first, so that no two transactions wait for each other).
func (s *Store) WriteAdmin(ctx context.Context, fn func(storage.AdminTx) error) (err error) {
	start := time.Now()
	defer func() {
		if err == nil {
			s.observers.Observe(storage.Commit{Writes: 1, Took: time.Since(start)})
		}
	}()
	return s.transact(ctx, true, func(ctx context.Context, q *conn) error {
		if _, err := q.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(adminLock)); err != nil {
			return dbError(err)
		}
		a := &adminTx{s: s, ctx: ctx, q: q, write: true, now: s.now(0), views: map[string]*tx{}}
		if err := fn(a); err != nil {
			return err
		}
		for _, t := range a.views {
			if err := t.flush(); err != nil {
				return err
			}
		}
		return nil
	})
}

// maxAttempts bounds the reruns of a transaction that PostgreSQL aborted for a conflict with a
// concurrent one (a deadlock or serialisation failure; the tenant lock makes them rare).
const maxAttempts = 8

// transact runs fn in a transaction and commits it when fn returns nil, rerunning it after a
// serialisation failure or deadlock.
//
// The transaction runs on a context detached from ctx's cancellation, as transactions of the
// bbolt engine do: a request whose client went away still finishes the write it began rather
// than leave its outcome unknown, and a reader is stopped by the domain's own checks of ctx,
// which answer for the client that left. ctx's deadline still holds, and without one
// TxTimeout bounds the transaction, so that a database that stops answering fails requests
// rather than hangs them.
func (s *Store) transact(ctx context.Context, write bool, fn func(context.Context, *conn) error) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := s.once(ctx, write, fn)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errRetry) {
			return err
		}
		if attempt == maxAttempts {
			return storage.Errorf(storage.Unavailable, "the transaction kept conflicting with concurrent ones")
		}
		select {
		case <-ctx.Done():
			return dbError(ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// bound detaches ctx from its cancellation but keeps its deadline, or sets TxTimeout's (see
// transact).
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.txTimeout)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

func (s *Store) once(ctx context.Context, write bool, fn func(context.Context, *conn) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	if !write {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		if s.closed.Load() {
			return errClosed
		}
		return dbError(err)
	}
	// The pool closes a connection released in the middle of a transaction.
	defer pc.Release()
	c := &conn{c: pc}
	c.begin(opts)
	if err := fn(ctx, c); err != nil {
		_ = c.end(context.WithoutCancel(ctx), false)
		return err
	}
	return dbError(c.end(ctx, true))
}

// ObserveCommits has fn called after each committed write transaction with how many writes it
// carried and how long it took from BEGIN to COMMIT; pages are not counted.
func (s *Store) ObserveCommits(fn func(storage.Commit)) { s.observers.Add(fn) }

// Sizes reports the size of the schema's tables with their indexes and TOAST, and how much of
// that the live rows take by PostgreSQL's statistics (the rest is dead rows and free space that
// VACUUM makes reusable).
func (s *Store) Sizes() (total, used int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = s.pool.QueryRow(ctx, `
		SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,
		       coalesce(sum(pg_total_relation_size(c.oid) * CASE WHEN st.n_live_tup + st.n_dead_tup > 0
		           THEN st.n_live_tup::float8 / (st.n_live_tup + st.n_dead_tup) ELSE 1 END), 0)::bigint
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
		WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&total, &used)
	return total, used, dbError(err)
}

// errRetry marks a transaction PostgreSQL aborted for a conflict with a concurrent one: it is
// run again.
var errRetry = &storage.Error{Code: storage.Unavailable, Message: "the transaction conflicted with a concurrent one"}

// dbError turns a driver or server failure into a storage error whose message holds no value:
// PostgreSQL's own messages quote keys and rows, so only the error class is kept.
func dbError(err error) error {
	if err == nil {
		return nil
	}
	var se *storage.Error
	if errors.As(err, &se) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return storage.Errorf(storage.Conflict, "a unique value is already taken")
		case pe.Code == "40001" || pe.Code == "40P01":
			return errRetry
		case pe.Code == "25006" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53"):
			return storage.Errorf(storage.Unavailable, "the database cannot take the request now (SQLSTATE %s)", pe.Code)
		}
		return storage.Errorf(storage.Unavailable, "the database failed the operation (SQLSTATE %s)", pe.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return storage.Errorf(storage.Unavailable, "the database did not answer in time")
	}
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return storage.Errorf(storage.Unavailable, "the transaction failed and was rolled back")
	}
	return storage.Errorf(storage.Unavailable, "the database is unreachable")
}
