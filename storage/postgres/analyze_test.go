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
