package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Statistics. PostgreSQL plans each query from its tables' statistics, which autovacuum keeps
// fresh. Where autovacuum is off, or has not yet caught up with a bulk load, the planner takes a
// grown table for an empty one and may walk every index entry of a collection to find one key
// (seen: 10 ms for a userName lookup among 10,000 users, where the probe takes a fraction of a
// millisecond). So the engine refreshes its own tables' statistics once they changed by
// autovacuum's default measure (50 rows and 10% of the table), checked when it opens and every
// analyzeEvery, by one process at a time, and also each time this process has committed
// checkAfterWrites writes since the last check: a bulk load is analyzed while it runs, not up to
// a minute after it began (measured: a userName lookup took 18 ms among 20,000 users created in
// the last 15 s, walking all their index entries).
//
// Each table is analyzed in a transaction of its own that waits at most lockWait for the table:
// a table autovacuum is working on is skipped rather than waited for, since PostgreSQL cancels an
// autovacuum that holds up another session's lock.
const (
	analyzeEvery     = time.Minute
	checkAfterWrites = 1000
	lockWait         = "100ms"
	analyzeWait      = "5s"
)

// analyzeLock is the advisory lock key of the statistics refresh: one process runs it at a time
// per schema (schemaKey), so that the stores of other schemas in the database do not make this
// one skip its checks. (Migrations and admin writes keep database-wide locks, which every version
// of the engine takes alike: a rolling upgrade still runs them one at a time.)
const analyzeLock = 0x5c1a_a7a1

// schemaKey is the analyze lock's second key: the hash of the schema's name.
const schemaKey = "hashtext(current_schema())"

// statistician refreshes the statistics now, every analyzeEvery and when wrote asks, until the
// store closes.
func (s *Store) statistician() {
	ctx, cancel := s.untilClosed()
	defer cancel()
	tick := time.NewTicker(analyzeEvery)
	defer tick.Stop()
	for {
		_ = s.refreshStatistics(ctx) // failed: the next tick tries again
		select {
		case <-s.stopped:
			return
		case <-tick.C:
		case <-s.recheck:
		}
	}
}

// wrote counts n committed writes, and asks the statistician for a check every
// checkAfterWrites. PostgreSQL counts the changes within a second or so of their commit, so a
// check may come before they show; during a load the next one comes soon.
func (s *Store) wrote(n int) {
	if s.unchecked.Add(int64(n)) < checkAfterWrites {
		return
	}
	s.unchecked.Add(-checkAfterWrites) // what other commits added meanwhile still counts
	select {
	case s.recheck <- struct{}{}:
	default: // a check is already due
	}
}

// Analyze refreshes the statistics of every table of the engine now: for a caller that has just
// loaded much data (a migration) and reads it at once.
func (s *Store) Analyze(ctx context.Context) error { return s.analyze(ctx, false) }

// refreshStatistics refreshes the statistics of the engine's tables that changed enough since
// their last analysis.
func (s *Store) refreshStatistics(ctx context.Context) error { return s.analyze(ctx, true) }

// analyze analyzes the engine's tables, or only those that changed enough; the latter does
// nothing while another process is at it.
func (s *Store) analyze(ctx context.Context, onlyChanged bool) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return dbError(err)
	}
	// A refresh skips while another process refreshes; a caller of Analyze, who reads at once,
	// waits up to analyzeWait for it (a refresh takes moments) before skipping too.
	var mine bool
	if onlyChanged {
		err = c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, "+schemaKey+")", int32(analyzeLock)).Scan(&mine)
	} else if _, err = c.Exec(ctx, "SET lock_timeout = '"+analyzeWait+"'"); err == nil {
		err = c.QueryRow(ctx, "SELECT true FROM pg_advisory_lock($1, "+schemaKey+")", int32(analyzeLock)).Scan(&mine)
		if _, reset := c.Exec(context.WithoutCancel(ctx), "RESET lock_timeout"); reset != nil {
			_ = c.Conn().Close(context.WithoutCancel(ctx)) // must not return to the pool with it set
			c.Release()
			return dbError(reset)
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55P03" { // still held: skip
			err = nil
		}
	}
	if err != nil || !mine {
		c.Release()
		return dbError(err)
	}
	defer func() {
		// A connection that cannot give the lock back must not return to the pool holding it.
		if _, err := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, "+schemaKey+")", int32(analyzeLock)); err != nil {
			_ = c.Conn().Close(context.WithoutCancel(ctx))
		}
		c.Release()
	}()
	rows, err := c.Query(ctx, `SELECT quote_ident(relname) FROM pg_stat_user_tables t WHERE schemaname = current_schema()
		AND (NOT $1 OR n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0))
		AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum v WHERE v.relid = t.relid)`, onlyChanged)
	if err != nil {
		return dbError(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return dbError(err)
	}
	for _, t := range tables {
		err := pgx.BeginFunc(ctx, c, func(q pgx.Tx) error {
			if _, err := q.Exec(ctx, "SET LOCAL lock_timeout = '"+lockWait+"'"); err != nil {
				return err
			}
			_, err := q.Exec(ctx, "ANALYZE "+t)
			return err
		})
		var pe *pgconn.PgError
		if err != nil && !(errors.As(err, &pe) && pe.Code == "55P03") { // 55P03: the table is busy; next time
			return dbError(err)
		}
	}
	return nil
}
