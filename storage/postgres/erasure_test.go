package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// TestErasureResidue measures what PostgreSQL keeps of an anonymized user's values, by scanning
// the relation files of the engine's tables and indexes (and the WAL) for them: before the
// anonymization, right after it, after the engine's targeted VACUUM, and after Compact (VACUUM
// FULL). It needs the server's files on this machine and a superuser (CHECKPOINT, the data
// directory): true of the local test server, where it runs in CI.
//
// What it asserts is what the engine promises: Compact leaves no value in any relation file and
// ends the pending erasure (scrubbedAt recorded); until then the erasure is reported pending.
// What it logs is the rest of the picture (README.md, "Erasure on each engine").
func TestErasureResidue(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	store := open(t, url, scimserver.Collections())
	pg := superConn(t, url)
	dir := dataDirectory(t, pg)
	files := relationFiles(t, pg, dir)
	svc := scimserver.New(store, scimserver.Options{})
	actor := scimserver.Actor{ID: "test", Name: "test"}
	if _, err := svc.CreateTenant(ctx, actor, scimserver.DefaultTenant, "Default"); err != nil {
		t.Fatal(err)
	}
	users, groups := svc.Users(), svc.Groups()
	create := func(k *scimserver.Kind, body string) string {
		t.Helper()
		id, err := svc.Create(ctx, scimserver.DefaultTenant, actor, k, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := range 40 {
		create(users, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"filler%d@example.com","name":{"givenName":"Fill","familyName":"Er%d"},"emails":[{"value":"filler%d@example.com"}]}`, i, i, i))
	}
	values := []string{"Quillonzeb", "Wrexhamtide", "quillon.wrexhamtide@example.net", "QZW-ext-7731", "+44 7700 900731"}
	victim := create(users, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"quillon.wrexhamtide@example.net",
		"externalId":"QZW-ext-7731","name":{"givenName":"Quillonzeb","familyName":"Wrexhamtide"},"displayName":"Quillonzeb Wrexhamtide",
		"emails":[{"value":"quillon.wrexhamtide@example.net","primary":true}],"phoneNumbers":[{"value":"+44 7700 900731"}]}`)
	if _, err := svc.Patch(ctx, scimserver.DefaultTenant, actor, users, victim, []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"title","value":"Engineer"}]}`), scimserver.Conditions{}, "", nil); err != nil {
		t.Fatal(err)
	}
	create(groups, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Team","members":[{"value":"`+victim+`"}]}`)

	measure := func(phase string) map[string]int {
		t.Helper()
		if _, err := pg.Exec(ctx, "CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
		found := map[string]int{}
		for name, paths := range files {
			for _, p := range paths {
				found[name] += occurrences(t, p, values)
			}
		}
		found["WAL"] = occurrences(t, filepath.Join(dir, "pg_wal"), values)
		var parts []string
		for name, n := range found {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", name, n))
			}
		}
		slices.Sort(parts)
		t.Logf("%-22s values found: %s", phase, strings.Join(parts, ", "))
		return found
	}
	before := measure("before anonymization")
	if before["records"] == 0 || before["entries"] == 0 {
		t.Fatalf("the scan finds no value before the anonymization (%v): it cannot measure anything", before)
	}

	if _, err := svc.Anonymize(ctx, scimserver.DefaultTenant, actor, victim); err != nil {
		t.Fatal(err)
	}
	measure("after anonymization")
	if n, _, err := store.PendingErasures(); err != nil || n != 1 {
		t.Fatalf("pending erasures after the anonymization: %d %v, want 1", n, err)
	}
	if err := store.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	measure("after targeted VACUUM")
	if n, _, _ := store.PendingErasures(); n != 1 {
		t.Fatalf("the targeted VACUUM ended the erasure (%d pending): freed heap space may still hold values", n)
	}

	if _, _, err := store.Compact(ctx, scimserver.ErasureCleared); err != nil {
		t.Fatal(err)
	}
	files = relationFiles(t, pg, dir) // VACUUM FULL writes new files
	after := measure("after compact")
	for name, n := range after {
		if name != "WAL" && n > 0 {
			t.Errorf("after compact, %s still holds %d of the erased values", name, n)
		}
	}
	if n, _, err := store.PendingErasures(); err != nil || n != 0 {
		t.Errorf("pending erasures after compact: %d %v", n, err)
	}
	audit, err := svc.UserAudit(ctx, scimserver.DefaultTenant, victim, scimserver.TrailQuery{})
	if err != nil || audit.ScrubbedAt == nil {
		t.Errorf("scrubbedAt after compact: %+v %v", audit, err)
	}
}

// superConn connects to the test server's database as the test's role, which must be a
// superuser to read the data directory's location and to checkpoint.
func superConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var super bool
	if err := conn.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		skipOrFail(t, "the test role is not a superuser")
	}
	return conn
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("the erasure measurement cannot run and CI=true: %s", why)
	}
	t.Skip("the erasure measurement cannot run: " + why)
}

func dataDirectory(t *testing.T, pg *pgx.Conn) string {
	t.Helper()
	var dir string
	if err := pg.QueryRow(context.Background(), "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(dir); err != nil {
		skipOrFail(t, "the server's data directory is not readable here: "+err.Error())
	}
	return dir
}

// relationFiles maps each of the schema's tables (with its TOAST table) and indexes to its files.
func relationFiles(t *testing.T, pg *pgx.Conn, dir string) map[string][]string {
	t.Helper()
	rows, err := pg.Query(context.Background(), `
		SELECT c.relname, pg_relation_filepath(c.oid) FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')
		UNION ALL
		SELECT c.relname || ' (TOAST)', pg_relation_filepath(x.oid) FROM pg_class c JOIN pg_class x ON x.oid = c.reltoastrelid
		WHERE c.relnamespace = current_schema()::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var name, rel string
		if err := rows.Scan(&name, &rel); err != nil {
			t.Fatal(err)
		}
		segments, _ := filepath.Glob(filepath.Join(dir, rel) + ".*")
		out[name] = append([]string{filepath.Join(dir, rel)}, segments...)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		t.Fatalf("no relation files found: %v", err)
	}
	return out
}

// occurrences counts the values (each also folded to lower case, as index keys are) in a file,
// or in every file of a directory.
func occurrences(t *testing.T, path string, values []string) int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		return 0 // a segment or file gone since it was listed
	}
	paths := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		paths = paths[:0]
		for _, e := range entries {
			if e.Type().IsRegular() {
				paths = append(paths, filepath.Join(path, e.Name()))
			}
		}
	}
	n := 0
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, v := range values {
			n += bytes.Count(raw, []byte(v))
			if low := strings.ToLower(v); low != v {
				n += bytes.Count(raw, []byte(low))
			}
		}
	}
	return n
}
