package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// TestAnalyzeRefreshesStatistics: after a bulk load, whether or not autovacuum runs, RefreshStatistics
// (the refresh the engine runs every minute) gives the planner statistics under which a lookup by key probes the key (the primary key of
// entries) instead of walking the collection's entries.
func TestAnalyzeRefreshesStatistics(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
	err := s.Write(ctx, "t", func(tx storage.Tx) error {
		for i := range 5000 {
			name := fmt.Sprintf("u%d", i)
			r := storage.Record{ID: storage.NewID(), Doc: []byte(`{}`), Keys: storagetest.People.KeysOf(map[string]any{"userName": name})}
			if _, err := tx.Insert(storagetest.People, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The server counts a transaction's changes for autovacuum (and Analyze) within a second or
	// so of its commit.
	var analyzed bool
	for deadline := time.Now().Add(20 * time.Second); !analyzed && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := postgres.RefreshStatistics(s, ctx); err != nil {
			t.Fatal(err)
		}
		err := conn.QueryRow(ctx, `SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL AND n_mod_since_analyze < 50
			FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'entries'`).Scan(&analyzed)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !analyzed {
		t.Fatal("entries was not analyzed after 5,000 inserts")
	}
	var plan strings.Builder
	rows, err := conn.Query(ctx, `EXPLAIN SELECT id FROM entries WHERE tid = (SELECT tid FROM tenants WHERE id = 't')
		AND coll = 'people' AND idx = 'userName' AND key = 'u77'::bytea`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "entries_pkey") {
		t.Errorf("a lookup by key after Analyze does not probe the primary key:\n%s", plan.String())
	}
}

// TestAnalyzeSkipsABusyTable: a table another session holds locked (as autovacuum or a schema
// change would) is skipped after the short lock wait, not waited for: Analyze returns while the
// lock is still held, with the other tables analyzed and the locked one not.
func TestAnalyzeSkipsABusyTable(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
	lastAnalyzed := func(table string) (at *time.Time) {
		t.Helper()
		// Inside the locking transaction, statistics are read from a snapshot taken at their
		// first read, unless it is cleared.
		if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = $1`,
			table).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	if lastAnalyzed("entries") != nil || lastAnalyzed("records") != nil {
		t.Fatal("a new schema's tables are already analyzed")
	}
	lock, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE entries IN SHARE UPDATE EXCLUSIVE MODE"); err != nil { // the lock ANALYZE and VACUUM take
		t.Fatal(err)
	}
	// Analyze does nothing while the store's own refresh holds the advisory lock: try again.
	for deadline := time.Now().Add(20 * time.Second); lastAnalyzed("records") == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		done := make(chan error, 1)
		go func() { done <- s.Analyze(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Analyze with a table locked: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Analyze waits for a locked table")
		}
	}
	if lastAnalyzed("records") == nil {
		t.Fatal("the unlocked tables were not analyzed")
	}
	if lastAnalyzed("entries") != nil {
		t.Fatal("the locked table was analyzed")
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWritesRefreshStatisticsBeforeTheMinute: a store that has just taken many writes does not
// wait for its minute to refresh the statistics. Right after a bulk load of users (an identity
// provider's first push) PostgreSQL holds no statistics for the grown tables, and its plan for a
// userName lookup walked all 60,000 index entries of 20,000 users: 18 ms a lookup, 36 ms at c=8
// over HTTP, until the minute's refresh. Here one record per write, until the store analyzed
// entries on its own (nothing calls Analyze or RefreshStatistics, and the minute has not passed).
func TestWritesRefreshStatisticsBeforeTheMinute(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
	analyzed := func() bool {
		t.Helper()
		var at *time.Time
		if err := conn.QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'entries'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at != nil
	}
	if analyzed() {
		t.Fatal("a new schema's entries are already analyzed")
	}
	writes := 0
	for deadline := time.Now().Add(40 * time.Second); !analyzed() && time.Now().Before(deadline); {
		for range 100 {
			err := s.Write(ctx, "t", func(tx storage.Tx) error {
				r := storage.Record{ID: storage.NewID(), Doc: []byte(`{}`), Keys: storagetest.People.KeysOf(map[string]any{"userName": fmt.Sprintf("u%d", writes)})}
				_, err := tx.Insert(storagetest.People, r)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			writes++
		}
	}
	if !analyzed() {
		t.Fatalf("entries was not analyzed after %d writes", writes)
	}
}

// TestAnalyzeLockIsPerSchema: the refresh runs one at a time per schema, not per database: a
// store skips it while its own schema's lock is held elsewhere, and runs it while another
// schema's is.
func TestAnalyzeLockIsPerSchema(t *testing.T) {
	s, conn := openTenant(t)
	ctx := context.Background()
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	lastAnalyzed := func() (at *time.Time) {
		t.Helper()
		if err := conn.QueryRow(ctx, `SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'records'`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	lock := func(of string) (unlock func()) {
		t.Helper()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, hashtext($2))", int32(postgres.AnalyzeLock), of); err != nil {
			t.Fatal(err)
		}
		return func() {
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", int32(postgres.AnalyzeLock), of); err != nil {
				t.Fatal(err)
			}
		}
	}
	unlockOther := lock(schema + "_other")
	// The store's own refresh (at open) may hold the lock a moment: try again.
	for deadline := time.Now().Add(20 * time.Second); lastAnalyzed() == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := lastAnalyzed()
	if first == nil {
		t.Fatal("another schema's lock kept the store from analyzing")
	}
	unlockOther()
	defer lock(schema)()
	for range 3 {
		if err := s.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if at := lastAnalyzed(); !at.Equal(*first) {
		t.Fatal("the store analyzed while its schema's lock was held elsewhere")
	}
}
