package postgres

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// The schema's migrations are numbered SQL files, applied in order, each once, in one
// transaction with the record of the version they reach. This small scheme rather than a
// migration library: the engine needs exactly "apply what is missing under a lock, refuse a
// newer schema", both fit in this file, and the whole open (migrations and index builds) runs in
// one transaction, which a library applying each file in its own would not give.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLock is the advisory lock key under which a process migrates the schema and builds
// indexes: processes starting together take turns, and the later ones find the work done.
const migrateLock = 0x5c1a_0001

// migrations returns the migration scripts in order; the schema version is their number.
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]string, len(names))
	for i, name := range names {
		if want := fmt.Sprintf("migrations/%03d_", i+1); len(name) < len(want) || name[:len(want)] != want {
			return nil, fmt.Errorf("migration %s is out of sequence", name)
		}
		raw, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out[i] = string(raw)
	}
	return out, nil
}

// SchemaVersion is the version of the schema this version of the engine writes.
func SchemaVersion() int {
	m, _ := migrations()
	return len(m)
}

// migrate brings the schema to this version and builds the indexes decls declare that the
// database lacks, in one transaction under the migration lock.
func (s *Store) migrate(ctx context.Context, decls []*storage.Collection) error {
	steps, err := migrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(q pgx.Tx) error {
		if _, err := q.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return err
		}
		if s.readOnly {
			var exists bool
			if err := q.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("the database holds no scimserver schema (this command creates none)")
			}
		} else if _, err := q.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"); err != nil {
			return err
		}
		var version int
		if err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&version); err != nil {
			return err
		}
		if version > len(steps) {
			return fmt.Errorf("the database schema is version %d; this scimserver knows versions up to %d: upgrade scimserver", version, len(steps))
		}
		if s.readOnly && version < len(steps) {
			return fmt.Errorf("the database schema is version %d, older than this scimserver's (%d), and this command changes nothing: start a server of this version once to migrate it", version, len(steps))
		}
		for i := version; i < len(steps); i++ {
			if _, err := q.Exec(ctx, steps[i]); err != nil {
				return fmt.Errorf("migrate the schema to version %d: %w", i+1, err)
			}
		}
		if version < len(steps) {
			if _, err := q.Exec(ctx, "DELETE FROM schema_version"); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, "INSERT INTO schema_version VALUES ($1)", len(steps)); err != nil {
				return err
			}
		}
		return s.reconcileIndexes(ctx, q, decls)
	})
}

// reconcileIndexes compares the declared indexes with those the entries were built for: an index
// declared since, or now unique or folding where it was not (or the reverse), is built from the
// records. An index no longer declared loses its layout row, so that declaring it again builds it
// afresh (records written meanwhile do not keep it), but keeps its entries: during a rolling
// upgrade, an older server starting must not empty an index the newer ones read.
func (s *Store) reconcileIndexes(ctx context.Context, q pgx.Tx, decls []*storage.Collection) error {
	type built struct{ uniq, fold bool }
	have := map[[2]string]built{}
	rows, err := q.Query(ctx, "SELECT coll, idx, uniq, fold FROM layout")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k [2]string
		var b built
		if err := rows.Scan(&k[0], &k[1], &b.uniq, &b.fold); err != nil {
			return err
		}
		have[k] = b
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range decls {
		declared := map[string]bool{}
		for _, ix := range c.Indexes {
			declared[ix.Name] = true
			if b, ok := have[[2]string{c.Name, ix.Name}]; ok && b == (built{ix.Unique, ix.Fold}) {
				continue
			}
			if s.readOnly {
				return fmt.Errorf("index %s of %s is not built as this scimserver declares it, and this command changes nothing: start a server of this version once to build it", ix.Name, c.Name)
			}
			if err := buildIndex(ctx, q, c, ix); err != nil {
				return err
			}
		}
		for k := range have {
			if k[0] == c.Name && !declared[k[1]] && !s.readOnly {
				if _, err := q.Exec(ctx, "DELETE FROM layout WHERE coll = $1 AND idx = $2", k[0], k[1]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// buildBatch is how many records an index build reads at a time.
const buildBatch = 1000

// buildIndex (re)builds one index of every tenant from the records' documents.
func buildIndex(ctx context.Context, q pgx.Tx, c *storage.Collection, ix storage.Index) error {
	if _, err := q.Exec(ctx, "DELETE FROM entries WHERE coll = $1 AND idx = $2", c.Name, ix.Name); err != nil {
		return err
	}
	var lastTid int64
	lastID := []byte{}
	for {
		rows, err := q.Query(ctx, `SELECT tid, id, doc FROM records WHERE coll = $1 AND (tid, id) > ($2, $3)
			ORDER BY tid, id LIMIT $4`, c.Name, lastTid, lastID, buildBatch)
		if err != nil {
			return err
		}
		var tids []int64
		var ids, keys [][]byte
		n := 0
		for rows.Next() {
			var doc []byte
			if err := rows.Scan(&lastTid, &lastID, &doc); err != nil {
				return err
			}
			n++
			m := map[string]any{}
			d := json.NewDecoder(bytes.NewReader(doc))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				return fmt.Errorf("build index %s.%s: a stored document is not JSON", c.Name, ix.Name)
			}
			for _, k := range normalise(&ix, ix.Keys(m)) {
				tids, ids, keys = append(tids, lastTid), append(ids, slices.Clone(lastID)), append(keys, []byte(k))
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(keys) > 0 {
			_, err := q.Exec(ctx, `INSERT INTO entries (tid, coll, idx, key, id, uniq)
				SELECT t, $1, $2, k, i, $3 FROM unnest($4::bigint[], $5::bytea[], $6::bytea[]) AS x(t, k, i)`,
				c.Name, ix.Name, ix.Unique, tids, keys, ids)
			if err != nil {
				if storage.ErrorCode(dbError(err)) == storage.Conflict {
					return fmt.Errorf("build index %s.%s: two records share a key of this unique index", c.Name, ix.Name)
				}
				return err
			}
		}
		if n < buildBatch {
			break
		}
	}
	_, err := q.Exec(ctx, `INSERT INTO layout (coll, idx, uniq, fold) VALUES ($1, $2, $3, $4)
		ON CONFLICT (coll, idx) DO UPDATE SET uniq = excluded.uniq, fold = excluded.fold`, c.Name, ix.Name, ix.Unique, ix.Fold)
	return err
}
