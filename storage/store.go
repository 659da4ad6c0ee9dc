// Package storage keeps tenants, tokens, users, groups, memberships, their indexes and the audit
// trail in one bbolt file. Every write is one transaction that keeps all of them consistent, and
// is durable (fsync) before the call returns. Nothing here knows about HTTP or SCIM JSON: records
// carry their documents as opaque bytes and the index keys the caller derived from them.
package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Top-level buckets.
var (
	bktMeta     = []byte("meta")
	bktTenants  = []byte("tenants")
	bktTokens   = []byte("tokens")   // sha256(secret) -> token
	bktTokenIDs = []byte("tokenIDs") // token id -> sha256(secret)
	bktData     = []byte("t")        // tenant id -> per-tenant buckets
)

// Per-tenant buckets.
var (
	bktUsers     = []byte("users")
	bktGroups    = []byte("groups")
	bktMembers   = []byte("members")  // groupID 0 memberID -> member
	bktMemberOf  = []byte("memberOf") // memberID 0 groupID -> empty
	bktUserName  = []byte("ix.userName")
	bktUserExt   = []byte("ix.user.externalId")
	bktEmail     = []byte("ix.email")
	bktGroupName = []byte("ix.displayName")
	bktGroupExt  = []byte("ix.group.externalId")
	bktTrail     = []byte("trail")
	bktTrailBy   = []byte("trailBy") // resourceID 0 seq -> empty
	bktCounts    = []byte("counts")
	// The platform's facts about users (what makes a user audited).
	bktFacts        = []byte("facts")        // userID -> Facts
	bktParticipants = []byte("participants") // campaignID 0 userID -> assigned at
	bktCampaignsOf  = []byte("campaignsOf")  // userID 0 campaignID -> empty: every campaign ever
)

var tenantBuckets = [][]byte{bktUsers, bktGroups, bktMembers, bktMemberOf, bktUserName, bktUserExt,
	bktEmail, bktGroupName, bktGroupExt, bktTrail, bktTrailBy, bktCounts, bktFacts, bktParticipants, bktCampaignsOf}

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock held by another process; 0 means one second.
	Timeout time.Duration
	// ReadOnly opens the file without taking the write lock.
	ReadOnly bool
}

// Store is an open data file.
type Store struct {
	db        *bolt.DB
	path      string
	queue     *commitQueue
	now       func() time.Time
	commits   atomic.Uint64
	writes    atomic.Uint64
	readers   *readers
	scrub     *scrubber // nil when read-only
	auth      authCache
	observers atomic.Pointer[[]func(writes int, took time.Duration)] // see ObserveCommits
	observeMu sync.Mutex                                             // serialises ObserveCommits
}

// ObserveCommits has fn called after each commit with how many writes it carried and how long
// it took (for metrics). It may be called at any time, also while writes run.
func (s *Store) ObserveCommits(fn func(writes int, took time.Duration)) {
	s.observeMu.Lock()
	defer s.observeMu.Unlock()
	var fns []func(int, time.Duration)
	if old := s.observers.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, fn)
	s.observers.Store(&fns)
}

// Open opens (creating when needed) the data file at path.
func Open(path string, opts Options) (s *Store, openErr error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	db, err := openBolt(path, &bolt.Options{
		Timeout:         opts.Timeout,
		ReadOnly:        opts.ReadOnly,
		PreLoadFreelist: opts.ReadOnly, // for Sizes; a writer loads it anyway
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMapSize(path, opts.ReadOnly),
	})
	if err != nil {
		return nil, err
	}
	s = &Store{db: db, path: path, now: func() time.Time { return time.Now().UTC() }, readers: newReaders()}
	if !opts.ReadOnly {
		if err := db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bktMeta, bktTenants, bktTokens, bktTokenIDs, bktData} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			if _, err := tx.Bucket(bktMeta).CreateBucketIfNotExists(bktScrubPending); err != nil {
				return err
			}
			// A file written by an older version may lack newer per-tenant buckets.
			return tx.Bucket(bktTenants).ForEach(func(id, _ []byte) error {
				t, err := getTenant(tx, string(id))
				if err != nil {
					return err
				}
				return createTenant(tx, t)
			})
		}); err != nil {
			db.Close()
			return nil, fmt.Errorf("initialise %s: %w", path, err)
		}
		defer func() {
			// A scrub owed from before a crash runs now, while no request can hold pages; then
			// the worker takes over.
			if s == nil {
				return
			}
			if err := s.scrubOnce(nil); err != nil {
				s.queue.close()
				db.Close()
				s, openErr = nil, fmt.Errorf("overwrite free pages of %s: %w", path, err)
				return
			}
			s.scrub = newScrubber()
			go s.scrubLoop()
		}()
		s.queue = newCommitQueue(db, func(n int, took time.Duration) {
			s.commits.Add(1)
			s.writes.Add(uint64(n))
			if fns := s.observers.Load(); fns != nil {
				for _, fn := range *fns {
					fn(n, took)
				}
			}
		})
	}
	return s, nil
}

// openBolt opens a bbolt file, saying in one way, with the path once, why it could not: another
// process holds its lock, or the operating system refused (permissions, a missing directory).
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, opts)
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, errLocked(path)
	case errors.As(err, &pathErr) && pathErr.Path == path:
		return nil, err // already "open PATH: reason"
	default:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
}

// errLocked is how every command says that a server (or another command) holds the data file.
func errLocked(path string) error {
	return fmt.Errorf("open %s: the data file is locked by another process", path)
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

// Close waits for nothing new: a scrub in progress stops (the erasures it was for stay
// pending, and are scrubbed at the next Open), queued writes fail, then the file is closed.
func (s *Store) Close() error {
	if s.scrub != nil {
		s.scrub.closeOnce.Do(func() { close(s.scrub.stop) })
		<-s.scrub.done
	}
	if s.queue != nil {
		s.queue.close()
	}
	return s.db.Close()
}

// Path is the data file's path.
func (s *Store) Path() string { return s.path }

// CommitStats reports how many transactions were committed and how many writes they carried.
func (s *Store) CommitStats() (commits, writes uint64) { return s.commits.Load(), s.writes.Load() }

// pagesEnd is where the file's last page ends: the size the file must have at least.
func (s *Store) pagesEnd() int64 {
	var n int64
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
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
	err = s.view(func(tx *bolt.Tx) error {
		free := s.db.Stats().FreePageN + s.db.Stats().PendingPageN
		used = tx.Size() - int64(free)*int64(s.db.Info().PageSize)
		return nil
	})
	return st.Size(), used, err
}

// Ping checks that the store is open and can commit a write.
func (s *Store) Ping() error {
	if s.queue == nil {
		return Errorf(Unavailable, "the store is open read-only")
	}
	return s.queue.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put([]byte("ping"), []byte(s.now().Format(time.RFC3339Nano)))
	})
}

// update runs fn in a write transaction shared with concurrent writers (group commit).
func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.queue == nil {
		return Errorf(Unavailable, "the store is open read-only")
	}
	return s.queue.write(fn)
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	defer s.readers.leave(s.readers.enter())
	var fnErr error
	err := s.db.View(func(tx *bolt.Tx) error {
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
	return &Error{Code: Unavailable, Message: "the data file cannot be written: " + err.Error()}
}
