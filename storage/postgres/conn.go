package postgres

import (
	"cmp"
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scimserver/scimserver/storage"
)

// conn is a pooled connection running one transaction. Statements whose only result is
// success (BEGIN, SAVEPOINT, a trail append) are held back and sent in the same round trip as the
// statement that follows them (one pipeline, read back in order); on a database across a network
// each round trip is most of a statement's cost. A held statement that fails fails the whole
// transaction: its error would otherwise be taken for the next statement's.
type conn struct {
	c       *pgxpool.Conn
	prefix  []*pgx.QueuedQuery // held statements, to send ahead of the next one
	started bool               // the BEGIN has been sent
	failed  error              // a held statement failed: the transaction cannot commit
}

// begin holds back the transaction's BEGIN.
func (c *conn) begin(opts pgx.TxOptions) {
	sql := "BEGIN ISOLATION LEVEL READ COMMITTED"
	if opts.IsoLevel == pgx.RepeatableRead {
		sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"
	}
	if opts.AccessMode == pgx.ReadOnly {
		sql += " READ ONLY"
	}
	c.prefix = []*pgx.QueuedQuery{{SQL: sql}}
}

// hold has sql sent ahead of the next statement; it fails the transaction if it fails.
func (c *conn) hold(sql string, args ...any) {
	c.prefix = append(c.prefix, &pgx.QueuedQuery{SQL: sql, Arguments: args})
}

// send sends the held statements and b's as one pipeline, and reads the held ones' results.
func (c *conn) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	if c.failed != nil {
		return nil, c.failed
	}
	held := len(c.prefix)
	if held > 0 {
		b.QueuedQueries = append(c.prefix, b.QueuedQueries...)
		c.prefix, c.started = nil, true
	}
	br := c.c.SendBatch(ctx, b)
	for range held {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			c.failed = heldFailure(err)
			return nil, c.failed
		}
	}
	return br, nil
}

// direct reports whether a statement can go alone, with nothing held before it.
func (c *conn) direct() bool { return len(c.prefix) == 0 && c.failed == nil }

// sendOne sends sql after the held statements.
func (c *conn) sendOne(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return c.send(ctx, b)
}

func (c *conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if c.direct() {
		return c.c.Exec(ctx, sql, args...)
	}
	br, err := c.sendOne(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

func (c *conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if c.direct() {
		return c.c.Query(ctx, sql, args...)
	}
	br, err := c.sendOne(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (c *conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

func (c *conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	br, err := c.send(ctx, b)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return br
}

// end commits (or rolls back) the transaction; one that never sent a statement and holds
// nothing but its BEGIN has nothing to end. A COMMIT that PostgreSQL answers with ROLLBACK (the
// transaction had failed) is an error.
func (c *conn) end(ctx context.Context, commit bool) error {
	if !commit || c.failed != nil {
		c.prefix = nil
		if !c.started {
			return nil
		}
		_, err := c.c.Exec(ctx, "ROLLBACK")
		return cmp.Or(c.failed, err)
	}
	if !c.started && len(c.prefix) == 1 {
		c.prefix = nil
		return nil
	}
	tag, err := c.Exec(ctx, "COMMIT") // with whatever is held
	if err == nil && tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return err
}

// heldFailure is the error of a transaction whose held statement failed: never Conflict, which
// the caller would take for its own write's (a refused append means the trail is not as the
// engine left it, which check reports).
func heldFailure(err error) error {
	err = dbError(err)
	if storage.ErrorCode(err) == storage.Conflict {
		return storage.Errorf(storage.Unavailable, "the database refused a statement sent ahead of this one: %v", err)
	}
	return err
}

// batchRows are a pipeline's last result: closing them closes the pipeline.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err, r.br = r.br.Close(), nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// rowOf is the first row of rows, as pgx's QueryRow gives it.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
