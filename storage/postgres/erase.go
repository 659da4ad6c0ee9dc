package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Erasure on PostgreSQL. An UPDATE or DELETE leaves the old row version in its heap page, and
// its index entries in their index pages, until VACUUM removes them; VACUUM then leaves a removed
// tuple's bytes in the page's free space until another row is written there; the WAL holds every
// written value until its segment is recycled and overwritten. So after an erasure the engine
// runs a targeted VACUUM of the tables that hold personal values (records, index entries,
// memberships) as soon as no transaction older than the erasure is open, and keeps the erasure
// pending until Compact has rewritten those tables (VACUUM FULL): only then does no relation
// file hold the old values. What remains where, measured, is in erasure_test.go and README.md.

// personalTables hold values an erasure overwrites: documents, index keys, member display names.
const personalTables = "records, entries, members"

var _ storage.Eraser = (*Store)(nil)

// errCompactClears is AwaitErasure's answer: the erasure stays pending until Compact.
var errCompactClears = storage.Errorf(storage.Unavailable, "freed PostgreSQL heap space is cleared by compact (VACUUM FULL)")

// AwaitErasure starts the targeted VACUUM in the background and reports the erasure pending:
// on PostgreSQL only Compact clears the freed space, so there is nothing worth waiting for.
func (s *Store) AwaitErasure(context.Context) error {
	select {
	case s.vacuums <- struct{}{}:
	default: // one is due already
	}
	return errCompactClears
}

// PendingErasures counts the erasures Compact has not yet covered, and the oldest one's time.
func (s *Store) PendingErasures() (int, time.Time, error) {
	var n int
	var oldest int64
	err := s.pool.QueryRow(context.Background(), "SELECT count(*), coalesce(min(at), 0) FROM erasures").Scan(&n, &oldest)
	if err != nil || n == 0 {
		return n, time.Time{}, dbError(err)
	}
	return n, time.Unix(0, oldest).UTC(), nil
}

// vacuumer runs the targeted VACUUM each time an erasure asks for it, until the store closes.
func (s *Store) vacuumer() {
	ctx, cancel := s.untilClosed()
	defer cancel()
	for {
		select {
		case <-s.stopped:
			return
		case <-s.vacuums:
			_ = s.Vacuum(ctx) // failed: the next erasure, or Compact, tries again
		}
	}
}

// Vacuum removes the dead row versions erasures left in the tables that hold personal values,
// and their index entries, once no transaction that could still see them is open.
func (s *Store) Vacuum(ctx context.Context) error {
	if err := s.awaitOlderSnapshots(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "VACUUM (INDEX_CLEANUP ON) "+personalTables)
	return dbError(err)
}

// awaitOlderSnapshots waits until no transaction of this database that began before the newest
// pending erasure is still open: while one is, VACUUM keeps the row versions it might read.
func (s *Store) awaitOlderSnapshots(ctx context.Context) error {
	for {
		var older int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
			AND xact_start < to_timestamp((SELECT coalesce(max(at), 0) FROM erasures) / 1e9)`).Scan(&older)
		if err != nil || older == 0 {
			return dbError(err)
		}
		select {
		case <-ctx.Done():
			return dbError(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Compact rewrites the tables that hold personal values (VACUUM FULL), so that no relation file
// keeps a value an erasure overwrote, and then ends every erasure committed before it began:
// cleared is called for each, in a write transaction of its tenant (the domain records the
// user's scrubbedAt). VACUUM FULL locks each table while it copies it: requests that need the
// table wait, so run it when the load is low. It returns the database's size before and after.
func (s *Store) Compact(ctx context.Context, cleared func(tx storage.Tx, user string, at time.Time) error) (before, after int64, err error) {
	if before, _, err = s.Sizes(); err != nil {
		return 0, 0, err
	}
	var began int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(at), 0) FROM erasures").Scan(&began); err != nil {
		return 0, 0, dbError(err)
	}
	if err := s.awaitOlderSnapshots(ctx); err != nil {
		return 0, 0, err
	}
	if _, err := s.pool.Exec(ctx, "VACUUM FULL "+personalTables); err != nil {
		return 0, 0, dbError(err)
	}
	type pending struct {
		tenant, user string
		at           int64
	}
	rows, err := s.pool.Query(ctx, `SELECT t.id, e.uid, e.at FROM erasures e JOIN tenants t ON t.tid = e.tid
		WHERE e.at <= $1 ORDER BY e.at`, began)
	if err != nil {
		return 0, 0, dbError(err)
	}
	var done []pending
	for rows.Next() {
		var tenant, user []byte
		var at int64
		if err := rows.Scan(&tenant, &user, &at); err != nil {
			rows.Close()
			return 0, 0, dbError(err)
		}
		done = append(done, pending{string(tenant), string(user), at})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, dbError(err)
	}
	for _, p := range done {
		err := s.Write(ctx, p.tenant, func(st storage.Tx) error {
			t := st.(*tx)
			tag, err := t.q.Exec(t.ctx, "DELETE FROM erasures WHERE tid = $1 AND uid = $2 AND at = $3", t.tid, []byte(p.user), p.at)
			if err != nil || tag.RowsAffected() == 0 || cleared == nil {
				return dbError(err) // ended by a concurrent Compact, or nothing to record
			}
			return cleared(st, p.user, t.now)
		})
		if err != nil {
			return 0, 0, fmt.Errorf("recording a cleared erasure: %w", err)
		}
	}
	after, _, err = s.Sizes()
	return before, after, err
}
