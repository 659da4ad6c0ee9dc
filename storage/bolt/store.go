// Package bolt is the embedded storage engine: every tenant's data, the tenants and the tokens in
// one bbolt file. Every write is one bbolt transaction, durable before it returns (appended to
// the commit log and fdatasynced: commitlog.go); concurrent writers share commits (group
// commit). It implements the storage contract and passes its conformance suite.
package bolt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/internal/observe"
	"github.com/scimserver/scimserver/storage/internal/watch"
)

// Top-level buckets.
var (
	bktMeta     = []byte("meta")
	bktTenants  = []byte("tenants")
	bktTokens   = []byte("tokens")   // hash(secret) -> token
	bktTokenIDs = []byte("tokenIDs") // token id -> hash(secret)
	bktData     = []byte("t")        // tenant id -> the tenant's buckets
)

// Per-tenant buckets besides the collections' records and indexes.
var (
	bktMembers      = []byte("members")      // groupID 0 seq -> member, its id within (members.go)
	bktMemberOf     = []byte("memberOf")     // memberID 0 groupID -> seq; memberID 0 -> stamp (members.go)
	bktTrail        = []byte("trail")        // seq -> event
	bktTrailBy      = []byte("trailBy")      // resourceID 0 seq -> empty, for events no record header lists (trail.go)
	bktCounts       = []byte("counts")       // counter name -> uint64
	bktFacts        = []byte("facts")        // userID -> Facts
	bktParticipants = []byte("participants") // campaignID 0 userID -> assigned at
	bktCampaignsOf  = []byte("campaignsOf")  // userID 0 campaignID -> empty: every campaign ever
)

var fixedBuckets = [][]byte{bktMembers, bktMemberOf, bktTrail, bktTrailBy, bktCounts, bktFacts, bktParticipants, bktCampaignsOf}

// Options tune Open.
type Options struct {
	// Collections are the record collections the domain declares. Indexes declared since the
	// file was last opened for writing are built from the records at open.
	Collections []*storage.Collection
	// Timeout bounds the wait for the file lock held by another process; 0 means one second.
	Timeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
	// ErasureCleared is called, in the write transaction that records it, for each user whose
	// erasure (Tx.Erased) the free-page scrub has covered, with the scrub's time: the domain
	// records it. Nil records nothing.
	ErasureCleared func(tx storage.Tx, user string, at time.Time) error
	// CommitLogBytes is the size at which a commit log file is checkpointed and the other takes
	// over; 0 means DefaultCommitLogBytes.
	CommitLogBytes int64
}

// DefaultCommitLogBytes and MinCommitLogBytes bound Options.CommitLogBytes: larger files mean
// fewer syncs of the data file, and more log to write back after a crash.
const (
	DefaultCommitLogBytes = 32 << 20
	MinCommitLogBytes     = 64 << 10
)

// Store is an open data file.
type Store struct {
	db        *bbolt.DB
	path      string
	log       *commitLog // nil when read-only
	layout    *layout
	queue     *commitQueue
	clock     func() time.Time // the system clock; see now
	last      atomic.Int64     // the latest reading of now, in Unix nanoseconds
	commits   atomic.Uint64
	writes    atomic.Uint64
	readers   *readers
	watchers  *watch.Set
	scrub     *scrubber                                 // nil when read-only
	cleared   func(storage.Tx, string, time.Time) error // Options.ErasureCleared
	observers observe.Commits
}

var _ storage.Store = (*Store)(nil)

// ErrLocked is the failure to open a data file another process holds.
var ErrLocked = errors.New("the data file is locked by another process")

// Open opens (creating when needed) the data file at path. A file written by an older version
// is migrated to the current format in one write transaction; a file of a newer format than
// this version understands is refused.
func Open(path string, opts Options) (s *Store, openErr error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.CommitLogBytes != 0 && opts.CommitLogBytes < MinCommitLogBytes {
		return nil, fmt.Errorf("a commit log file of %d bytes is too small: at least %d", opts.CommitLogBytes, MinCommitLogBytes)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	// A writer's commits go through the commit log, which can only be opened once bbolt holds
	// the file: no commit runs before.
	var log *commitLog
	bopts := &bbolt.Options{
		Timeout:         opts.Timeout,
		ReadOnly:        opts.ReadOnly,
		PreLoadFreelist: opts.ReadOnly, // for Sizes; a writer loads it anyway
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMapSize(path, opts.ReadOnly),
	}
	if !opts.ReadOnly {
		bopts.CommitLog = func(pages []bbolt.CommitPage) error {
			if log == nil { // bbolt commits within Open only for a file without a synced freelist
				return errors.New("the data file has no freelist stored: it was not written by scimserver")
			}
			return log.append(pages)
		}
	}
	db, err := openBolt(path, bopts)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if log, err = openLog(path, db.Sync, cmp.Or(opts.CommitLogBytes, DefaultCommitLogBytes)); err != nil {
			db.Close()
			return nil, fmt.Errorf("open the commit log of %s: %w", path, err)
		}
	}
	s = &Store{db: db, path: path, log: log, clock: time.Now, readers: newReaders(), watchers: &watch.Set{}, cleared: opts.ErasureCleared}
	if opts.ReadOnly {
		err = db.View(func(tx *bbolt.Tx) error {
			var err error
			s.layout, err = readLayout(tx, opts.Collections)
			return err
		})
	} else {
		err = db.Update(func(tx *bbolt.Tx) error {
			var err error
			s.layout, err = migrate(tx, opts.Collections)
			return err
		})
		log.settle(err == nil)
		if err == nil && s.layout.membersByID {
			if err = migrateMembers(db, log.settle); err == nil {
				s.layout.membersByID = false
			}
		}
	}
	if err != nil {
		s.closeLog()
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !opts.ReadOnly {
		defer func() {
			// A scrub owed from before a crash runs now, while no request can hold pages; then
			// the worker takes over.
			if s == nil {
				return
			}
			if err := s.scrubOnce(nil); err != nil {
				s.queue.close()
				s.closeLog()
				db.Close()
				s, openErr = nil, fmt.Errorf("overwrite free pages of %s: %w", path, err)
				return
			}
			s.scrub = newScrubber()
			go s.scrubLoop()
		}()
		s.queue = newCommitQueue(db, func(c storage.Commit) {
			s.commits.Add(1)
			s.writes.Add(uint64(c.Writes))
			s.observers.Observe(c)
		}, log.settle)
	}
	return s, nil
}

// openBolt opens a bbolt file, once the commits its log holds from before a crash are written
// back, saying in one way, with the path once, why it could not: another process holds its
// lock, or the operating system refused (permissions, a missing directory).
func openBolt(path string, opts *bbolt.Options) (*bbolt.DB, error) {
	f, err := openLocked(path, opts.ReadOnly, opts.Timeout)
	if err == nil {
		locked := *opts
		locked.OpenFile = func(string, int, os.FileMode) (*os.File, error) { return f, nil }
		var db *bbolt.DB
		if db, err = bbolt.Open(path, 0o600, &locked); err == nil {
			return db, nil
		}
		f.Close()
	}
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, ErrLocked):
		return nil, err
	case errors.As(err, &pathErr) && pathErr.Path == path:
		return nil, err // already "open PATH: reason"
	default:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// errLocked is how every command says that a server (or another command) holds the data file.
func errLocked(path string) error {
	return fmt.Errorf("open %s: %w", path, ErrLocked)
}

// initialMapSize maps twice the file (at least 1 GiB) from the start. bbolt maps the file anew
// when it outgrows the mapping, and to do that it waits for every open read transaction to end
// while holding up every write: a backup or a long listing would then stall all writes. Address
// space is cheap on 64-bit systems and pages never touched cost no memory.
func initialMapSize(path string, readOnly bool) int {
	if readOnly || strconv.IntSize < 64 {
		return 0
	}
	size := 1 << 30
	if st, err := os.Stat(path); err == nil {
		size = max(size, int(2*st.Size()))
	}
	return size
}

// Close stops a scrub in progress (the erasures it was for stay pending and are scrubbed at the
// next Open), fails queued writes, wakes the watchers, then closes the file.
func (s *Store) Close() error {
	if s.scrub != nil {
		s.scrub.closeOnce.Do(func() { close(s.scrub.stop) })
		<-s.scrub.done
	}
	if s.queue != nil {
		s.queue.close()
	}
	s.watchers.Close()
	lerr := s.closeLog()
	if err := s.db.Close(); err != nil {
		return err
	}
	return lerr
}

// closeLog checkpoints and closes the commit log of a writable store, and deletes its files
// unless they may hold values of an erasure not yet scrubbed: the next open's scrub overwrites
// them.
func (s *Store) closeLog() error {
	if s.log == nil {
		return nil
	}
	n, _, err := s.PendingErasures()
	return s.log.close(err == nil && n == 0)
}

// now is a transaction's clock reading: the system clock in UTC, but always later than the
// reading before. Each write transaction so has a time of its own, which is how a record
// changed twice in one transaction gets one new version (its Modified is the transaction's
// time), and the trail's times follow its sequence, which Trail's Since relies on, even when the
// system clock is coarse or set back.
func (s *Store) now() time.Time {
	for {
		last := s.last.Load()
		n := s.clock().UnixNano()
		if n <= last {
			n = last + 1
		}
		if s.last.CompareAndSwap(last, n) {
			return time.Unix(0, n).UTC()
		}
	}
}

// Path is the data file's path.
func (s *Store) Path() string { return s.path }

// ObserveCommits has fn called after each commit with how many writes it carried, how long it
// took and how many pages it wrote (for metrics). It may be called at any time, also while
// writes run.
func (s *Store) ObserveCommits(fn func(storage.Commit)) { s.observers.Add(fn) }

// LogFigures reports the commit log: zeros for a read-only store, which has none.
func (s *Store) LogFigures() storage.LogFigures {
	if s.log == nil {
		return storage.LogFigures{}
	}
	return s.log.figures()
}

var _ storage.Checkpointed = (*Store)(nil)

// CommitStats reports how many transactions were committed and how many writes they carried.
func (s *Store) CommitStats() (commits, writes uint64) { return s.commits.Load(), s.writes.Load() }

// pagesEnd is where the file's last page ends: the size the file must have at least.
func (s *Store) pagesEnd() int64 {
	var n int64
	_ = s.view(func(tx *bbolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Sizes reports the data file's size on disk and how many of its bytes hold live data. The rest
// is free pages, which later writes reuse and compact gives back, and room bbolt grew the file
// by ahead of need.
func (s *Store) Sizes() (file, used int64, err error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return 0, 0, err
	}
	err = s.view(func(tx *bbolt.Tx) error {
		free := s.db.Stats().FreePageN + s.db.Stats().PendingPageN
		used = tx.Size() - int64(free)*int64(s.db.Info().PageSize)
		return nil
	})
	return st.Size(), used, err
}

// Ping checks that the store is open and can commit a write.
func (s *Store) Ping(context.Context) error {
	return s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktMeta).Put([]byte("ping"), []byte(s.now().Format(time.RFC3339Nano)))
	})
}

// Read runs fn in a read-only transaction over tenant.
func (s *Store) Read(_ context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.view(func(tx *bbolt.Tx) error {
		t, err := s.tenantTx(tx, tenant, s.now())
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// Write runs fn in a write transaction over tenant, shared with concurrent writers.
func (s *Store) Write(_ context.Context, tenant string, fn func(storage.Tx) error) error {
	return s.update(func(tx *bbolt.Tx) error {
		t, err := s.tenantTx(tx, tenant, s.now())
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// ReadAdmin runs fn in a read-only transaction over tenants and tokens.
func (s *Store) ReadAdmin(_ context.Context, fn func(storage.AdminTx) error) error {
	return s.view(func(tx *bbolt.Tx) error { return fn(&adminTx{s: s, tx: tx, now: s.now()}) })
}

// WriteAdmin runs fn in a write transaction over tenants and tokens.
func (s *Store) WriteAdmin(_ context.Context, fn func(storage.AdminTx) error) error {
	return s.update(func(tx *bbolt.Tx) error { return fn(&adminTx{s: s, tx: tx, now: s.now()}) })
}

// update runs fn in a write transaction shared with concurrent writers (group commit).
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	if s.queue == nil {
		return storage.Errorf(storage.Unavailable, "the store is open read-only")
	}
	return s.queue.write(fn)
}

func (s *Store) view(fn func(*bbolt.Tx) error) error {
	defer s.readers.leave(s.readers.enter())
	var fnErr error
	err := s.db.View(func(tx *bbolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return wrapBolt(err)
}

// wrapBolt turns a bbolt or I/O failure (disk full, read-only file, closed store) into
// Unavailable, so the HTTP edge answers a clear 5xx rather than guessing.
func wrapBolt(err error) error {
	if err == nil {
		return nil
	}
	return &storage.Error{Code: storage.Unavailable, Message: "the data file cannot be written: " + err.Error()}
}
