package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// roundTrips records what a connection sends, one entry per round trip (a statement alone, or
// a pipeline).
type roundTrips struct {
	mu    sync.Mutex
	trips [][]string
}

func (r *roundTrips) add(sql ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trips = append(r.trips, sql)
}

func (r *roundTrips) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.trips
	r.trips = nil
	return t
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	var sql []string
	for _, q := range d.Batch.QueuedQueries {
		sql = append(sql, q.SQL)
	}
	r.add(sql...)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestTransactionRoundTrips pins what a transaction sends and when: its BEGIN and held
// statements ride with the first statement that needs an answer, and a transaction that never
// sent anything ends without a round trip, committed or not.
func TestTransactionRoundTrips(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
	for _, tc := range []struct {
		name   string
		run    func(c *conn) error // the transaction's statements
		commit bool
		want   [][]string
	}{
		{"nothing, committed", func(*conn) error { return nil }, true, nil},
		{"nothing, rolled back", func(*conn) error { return nil }, false, nil},
		{"held only, rolled back", func(c *conn) error { c.hold("SAVEPOINT w"); return nil }, false, nil},
		{"held only, committed", func(c *conn) error { c.hold("SAVEPOINT w"); return nil }, true,
			[][]string{{begin, "SAVEPOINT w", "COMMIT"}}},
		{"a statement, committed", func(c *conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err }, true,
			[][]string{{begin, "SELECT 1"}, {"COMMIT"}}},
		{"a statement, rolled back", func(c *conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err }, false,
			[][]string{{begin, "SELECT 1"}, {"ROLLBACK"}}},
		{"a statement, then held, committed", func(c *conn) error {
			_, err := c.Exec(ctx, "SELECT 1")
			c.hold("SAVEPOINT w")
			return err
		}, true, [][]string{{begin, "SELECT 1"}, {"SAVEPOINT w", "COMMIT"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Release()
			trips.take()
			c := &conn{c: pc}
			c.begin(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
			if err := tc.run(c); err != nil {
				t.Fatal(err)
			}
			if err := c.end(ctx, tc.commit); err != nil {
				t.Fatal(err)
			}
			if got := trips.take(); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("round trips %q, want %q", got, tc.want)
			}
			if st := pc.Conn().PgConn().TxStatus(); st != 'I' {
				t.Errorf("the connection is left in transaction state %q, not idle", st)
			}
		})
	}
}
