package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Check verifies what the schema's constraints do not: that every declared index's entries are
// those the records' documents derive, that the counts match the records, and that each trail's
// counters match its events (no seq lost or repeated), and that the blocks of the id order count
// the records they hold. Memberships need no check: a member's
// groups are read through an index of the same table, which PostgreSQL keeps. It reads one
// snapshot and returns one line per problem.
func (s *Store) Check(ctx context.Context) ([]string, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(q pgx.Tx) error {
		type tenant struct {
			tid, seq, events int64
			id               []byte
		}
		rows, err := q.Query(ctx, "SELECT tid, id, seq, events FROM tenants ORDER BY id")
		if err != nil {
			return err
		}
		tenants, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tenant, error) {
			var t tenant
			return t, row.Scan(&t.tid, &t.id, &t.seq, &t.events)
		})
		if err != nil {
			return err
		}
		for _, t := range tenants {
			var n, maxSeq int64
			if err := q.QueryRow(ctx, "SELECT count(*), coalesce(max(seq), 0) FROM events WHERE tid = $1", t.tid).Scan(&n, &maxSeq); err != nil {
				return err
			}
			if n != t.events || maxSeq != t.seq {
				bad("tenant %s: the trail holds %d events up to seq %d; its counters say %d up to %d", t.id, n, maxSeq, t.events, t.seq)
			}
			for _, c := range s.colls {
				var stored, actual, blocked, misplaced int64
				err := q.QueryRow(ctx, `SELECT coalesce((SELECT count FROM counts WHERE tid = $1 AND coll = $2), 0),
					(SELECT count(*) FROM records WHERE tid = $1 AND coll = $2),
					(SELECT coalesce(sum(n), 0) FROM blocks WHERE tid = $1 AND coll = $2),
					(SELECT count(*) FROM (SELECT b.n, (SELECT count(*) FROM records r WHERE r.tid = $1 AND r.coll = $2 AND r.id >= b.first_id
						AND (b.next IS NULL OR r.id < b.next)) AS actual
						FROM (SELECT first_id, n, lead(first_id) OVER (ORDER BY first_id) AS next FROM blocks WHERE tid = $1 AND coll = $2) b) x
						WHERE n <> actual)`, t.tid, c.Name).Scan(&stored, &actual, &blocked, &misplaced)
				if err != nil {
					return err
				}
				if stored != actual {
					bad("tenant %s: %s counts %d records, holds %d", t.id, c.Name, stored, actual)
				}
				if blocked != actual || misplaced > 0 {
					bad("tenant %s: %s's id order blocks count %d records (%d blocks miscounted), it holds %d", t.id, c.Name, blocked, misplaced, actual)
				}
				p, err := s.checkEntries(ctx, q, t.tid, c.Name)
				if err != nil {
					return err
				}
				for _, line := range p {
					bad("tenant %s: %s", t.id, line)
				}
			}
		}
		return nil
	})
	return problems, err
}

// checkEntries compares a collection's index entries with the keys its records' documents
// derive, a batch of records at a time.
func (s *Store) checkEntries(ctx context.Context, q pgx.Tx, tid int64, coll string) ([]string, error) {
	c := s.colls[coll]
	var declared []string // entries of other indexes are another version's (see reconcileIndexes)
	for _, ix := range c.Indexes {
		declared = append(declared, ix.Name)
	}
	var problems []string
	after := []byte{}
	for {
		rows, err := q.Query(ctx, "SELECT id, doc FROM records WHERE tid = $1 AND coll = $2 AND id > $3 ORDER BY id LIMIT $4",
			tid, coll, after, buildBatch)
		if err != nil {
			return nil, err
		}
		want := map[string]bool{} // id 0 idx 0 key
		var ids [][]byte
		for rows.Next() {
			var id, doc []byte
			if err := rows.Scan(&id, &doc); err != nil {
				return nil, err
			}
			ids = append(ids, slices.Clone(id))
			m := map[string]any{}
			d := json.NewDecoder(bytes.NewReader(doc))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: the document is not JSON", coll, id))
				continue
			}
			for i := range c.Indexes {
				for _, k := range normalise(&c.Indexes[i], c.Indexes[i].Keys(m)) {
					want[string(id)+"\x00"+c.Indexes[i].Name+"\x00"+k] = true
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		last := ids[len(ids)-1]
		// Entries of the batch's id range, including any of a record that does not exist.
		rows, err = q.Query(ctx, "SELECT id, idx, key FROM entries WHERE tid = $1 AND coll = $2 AND id > $3 AND id <= $4 AND idx = ANY($5)",
			tid, coll, after, last, declared)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, key []byte
			var idx string
			if err := rows.Scan(&id, &idx, &key); err != nil {
				return nil, err
			}
			k := string(id) + "\x00" + idx + "\x00" + string(key)
			if !want[k] {
				problems = append(problems, fmt.Sprintf("%s index %s has an entry no record accounts for: %q", coll, idx, key))
			}
			delete(want, k)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for k := range want {
			parts := bytes.SplitN([]byte(k), []byte{0}, 3)
			problems = append(problems, fmt.Sprintf("%s index %s lacks an entry: %q", coll, parts[1], parts[2]))
		}
		after = last
		if len(ids) < buildBatch {
			break
		}
	}
	var orphans int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM entries e WHERE tid = $1 AND coll = $2 AND id > $3 AND idx = ANY($4)
		AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tid = e.tid AND r.coll = e.coll AND r.id = e.id)`, tid, coll, after, declared).Scan(&orphans)
	if err != nil {
		return nil, err
	}
	if orphans > 0 {
		problems = append(problems, fmt.Sprintf("%s: %d index entries follow the last record", coll, orphans))
	}
	slices.Sort(problems)
	return problems, nil
}
