package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is what a transaction sends its statements through.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// conn is a pooled connection running one transaction whose BEGIN and SAVEPOINTs are held back
// and sent in the same round trip as the statement that follows them (one pipeline, read back
// in order). On a database across a network each round trip is most of a statement's cost: a
// read by id is then BEGIN+SELECT and COMMIT, not three.
type conn struct {
	c       *pgxpool.Conn
	prefix  []string // statements without results to send ahead of the next one
	started bool     // the BEGIN has been sent
}

var _ querier = (*conn)(nil)

// begin holds back the transaction's BEGIN.
func (c *conn) begin(opts pgx.TxOptions) {
	sql := "BEGIN ISOLATION LEVEL READ COMMITTED"
	if opts.IsoLevel == pgx.RepeatableRead {
		sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"
	}
	if opts.AccessMode == pgx.ReadOnly {
		sql += " READ ONLY"
	}
	c.prefix = []string{sql}
}

// hold has sql sent ahead of the next statement.
func (c *conn) hold(sql string) { c.prefix = append(c.prefix, sql) }

// send sends the held statements and b's as one pipeline, and reads the held ones' results.
func (c *conn) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	held := len(c.prefix)
	if held > 0 {
		queued := make([]*pgx.QueuedQuery, 0, held+b.Len())
		for _, sql := range c.prefix {
			queued = append(queued, &pgx.QueuedQuery{SQL: sql})
		}
		b.QueuedQueries = append(queued, b.QueuedQueries...)
		c.prefix, c.started = nil, true
	}
	br := c.c.SendBatch(ctx, b)
	for range held {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

func (c *conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(c.prefix) == 0 {
		return c.c.Exec(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := c.send(ctx, b)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	return tag, errors.Join(err, br.Close())
}

func (c *conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if len(c.prefix) == 0 {
		return c.c.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := c.send(ctx, b)
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

// end commits (or rolls back) the transaction; one that never sent a statement has nothing to
// end. A COMMIT that PostgreSQL answers with ROLLBACK (the transaction had failed) is an error.
func (c *conn) end(ctx context.Context, commit bool) error {
	if !c.started {
		c.prefix = nil
		return nil
	}
	if !commit {
		c.prefix = nil
		_, err := c.c.Exec(ctx, "ROLLBACK")
		return err
	}
	tag, err := c.Exec(ctx, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
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
