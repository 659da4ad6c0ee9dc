package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// TestMigrate copies a directory built through the SCIM API and the platform's facts into a new
// file, from that file into PostgreSQL and back into a file; each copy keeps the source's trail
// event for event, authenticates the old token, finds what every lookup found before, keeps
// the audited-delete rule and remembers a campaign the user left. A second run, as after an interruption, duplicates nothing.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	src, dst, back := filepath.Join(dir, "src.db"), filepath.Join(dir, "dst.db"), filepath.Join(dir, "back.db")
	users, groups := seedDirectory(t, src)
	err := withService(&config{data: src}, func(ctx context.Context, s *scimserver.Service) error {
		if err := s.RecordInteraction(ctx, scimserver.DefaultTenant, testActor, users[0], "login", time.Now()); err != nil {
			return err
		}
		if err := s.AssignCampaign(ctx, scimserver.DefaultTenant, testActor, "q2-review", users[2]); err != nil {
			return err
		}
		if err := s.UnassignCampaign(ctx, scimserver.DefaultTenant, testActor, "q2-review", users[2]); err != nil {
			return err
		}
		return s.AssignCampaign(ctx, scimserver.DefaultTenant, testActor, "q3-review", users[2])
	})
	if err != nil {
		t.Fatal(err)
	}
	want := trailOf(t, src)

	stdout, stderr, err := run(t, "migrate", "--from", src, "--to", dst, "--batch", "2")
	if err != nil || !strings.Contains(stdout, "migrated and verified") {
		t.Fatalf("migrate: %v %q %q", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "tenant default: users 3/3") || !strings.Contains(stderr, "tenant default: groups 2/2") {
		t.Errorf("progress lacks the final counts: %q", stderr)
	}
	// Run again over a complete copy: nothing is duplicated (storage/transfer tests a real interruption).
	if _, _, err := run(t, "migrate", "--from", src, "--to", dst); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	checkMigrated(t, dst, want, users, groups)
	t.Run("through PostgreSQL and back", func(t *testing.T) {
		pg := pgtest.URL(t)
		for _, hop := range [][2]string{{src, pg}, {pg, back}} {
			if _, stderr, err := run(t, "migrate", "--from", hop[0], "--to", hop[1], "--batch", "2"); err != nil {
				t.Fatalf("migrate to %s: %v %s", filepath.Base(hop[1]), err, stderr)
			}
		}
		// The copy into PostgreSQL leaves its tables analyzed, for the first server's plans.
		conn, err := pgx.Connect(context.Background(), pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var unanalyzed int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND last_analyze IS NULL AND last_autoanalyze IS NULL`).Scan(&unanalyzed); err != nil || unanalyzed != 0 {
			t.Errorf("tables of the copy never analyzed: %d %v", unanalyzed, err)
		}
		checkMigrated(t, pg, want, users, groups)
		checkMigrated(t, back, want, users, groups)
	})

	// Command-line mistakes.
	for _, args := range [][]string{
		{"migrate", "--from", src},
		{"migrate", "--to", dst},
		{"migrate", "--from", src, "--to", src},
		{"migrate", "--from", src, "--to", dst, "--batch", "0"},
	} {
		if _, _, err := run(t, args...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// checkMigrated checks a copy of seedDirectory's data: it checks clean, holds the source's trail
// (want), the old token authenticates, lookups find what they found in the source, and the
// audited-delete rule holds (users[0] reported a login).
func checkMigrated(t *testing.T, data string, want []string, users, groups []string) {
	t.Helper()
	if out, _, err := run(t, "check", "--data", data); err != nil || !strings.Contains(out, "is consistent") {
		t.Fatalf("check of a copy: %v %q", err, out)
	}
	if got := trailOf(t, data); !slices.Equal(want, got) || len(want) < 7 {
		t.Fatalf("trail of a copy:\n%q\nwant\n%q", got, want)
	}
	err := withService(&config{data: data}, func(ctx context.Context, s *scimserver.Service) error {
		if _, err := s.Authenticate(ctx, opsSCIMToken); err != nil {
			t.Errorf("the source's token does not authenticate on the copy: %v", err)
		}
		for _, c := range []struct {
			kind   *scimserver.Kind
			filter string
			want   string
		}{
			{s.Users(), `userName eq "ADA@example.com"`, users[0]},
			{s.Users(), `externalId eq "okta-1"`, users[0]},
			{s.Users(), `emails.value eq "cy@example.com"`, users[2]},
			{s.Groups(), `displayName eq "engineering"`, groups[0]},
			{s.Groups(), `members.value eq "` + users[2] + `"`, groups[0]},
			{s.Groups(), `externalId eq "g-sales"`, groups[1]},
		} {
			found, err := s.Find(ctx, scimserver.DefaultTenant, c.kind, c.filter, 0, "")
			if err != nil || len(found) != 1 || found[0]["id"] != c.want {
				t.Errorf("%s on a copy: %v %v, want the one resource %s", c.filter, found, err, c.want)
			}
		}
		for _, u := range users[:2] {
			if err := s.Delete(ctx, scimserver.DefaultTenant, testActor, s.Users(), u, scimserver.Conditions{}); err != nil {
				return err
			}
		}
		// Back in a campaign left before the copy: not a new campaign for the count.
		if err := s.AssignCampaign(ctx, scimserver.DefaultTenant, testActor, "q2-review", users[2]); err != nil {
			return err
		}
		audit, err := s.UserAudit(ctx, scimserver.DefaultTenant, users[2], scimserver.TrailQuery{Limit: 1})
		if err != nil || audit.CampaignCount != 2 || len(audit.CurrentCampaigns) != 2 {
			t.Errorf("campaigns on a copy after rejoining one: %d, current %v, %v; want 2 and both current", audit.CampaignCount, audit.CurrentCampaigns, err)
		}
		kept, err := s.Find(ctx, scimserver.DefaultTenant, s.Users(), `id eq "`+users[0]+`"`, 0, "")
		if err != nil || len(kept) != 1 || kept[0]["active"] != false {
			t.Errorf("audited user after DELETE on a copy: %v %v, want it kept inactive", kept, err)
		}
		if gone, err := s.Find(ctx, scimserver.DefaultTenant, s.Users(), `id eq "`+users[1]+`"`, 0, ""); err != nil || len(gone) != 0 {
			t.Errorf("unaudited user after DELETE on a copy: %v %v, want it gone", gone, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// trailOf lists the default tenant's trail, one line per event with its number and time.
func trailOf(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	err := withService(&config{data: data}, func(ctx context.Context, s *scimserver.Service) error {
		return s.Store().Read(ctx, scimserver.DefaultTenant, func(tx storage.Tx) error {
			return tx.Events(0, func(ev storage.Event) (bool, error) {
				raw, err := json.Marshal(ev)
				out = append(out, string(raw))
				return true, err
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
