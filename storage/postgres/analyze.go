package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Statistics. PostgreSQL plans each query from its tables' statistics, which autovacuum keeps
// fresh. Where autovacuum is off, or has not yet caught up with a bulk load, the planner takes a
// grown table for an empty one and may walk every index entry of a collection to find one key
// (seen: 10 ms for a userName lookup among 10,000 users, against 0.1 ms). So the engine refreshes
// its own tables' statistics once they changed by autovacuum's default measure (50 rows and 10%
// of the table), checked when it opens and every analyzeEvery, by one process at a time.
const analyzeEvery = time.Minute

// analyzeLock is the advisory lock key of the statistics refresh: one process runs it at a time.
const analyzeLock = 0x5c1a_a7a1

// Analyze refreshes the statistics of every table of the engine now: for a caller that has just
// loaded much data and reads it at once.
func (s *Store) Analyze(ctx context.Context) error { return s.analyze(ctx, false) }

// refreshStatistics refreshes the statistics of the engine's tables that changed enough since
// their last analysis.
func (s *Store) refreshStatistics(ctx context.Context) error { return s.analyze(ctx, true) }

// analyze analyzes the engine's tables, or only those that changed enough; it does nothing while
// another process is at it.
func (s *Store) analyze(ctx context.Context, onlyChanged bool) error {
	return dbError(pgx.BeginFunc(ctx, s.pool, func(q pgx.Tx) error {
		var mine bool
		if err := q.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", int64(analyzeLock)).Scan(&mine); err != nil || !mine {
			return err
		}
		rows, err := q.Query(ctx, `SELECT quote_ident(relname) FROM pg_stat_user_tables WHERE schemaname = current_schema()
			AND (NOT $1 OR n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, 0))`, onlyChanged)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := q.Exec(ctx, "ANALYZE "+t); err != nil {
				return err
			}
		}
		return nil
	}))
}
