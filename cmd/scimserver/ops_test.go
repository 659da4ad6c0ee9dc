package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/scimserver/httpapi"
	"github.com/scimserver/scimserver/storage/bolt"
)

const opsSCIMToken = "ops-test-scim-token-0123456789abcdefghijklmnop"

// liveServer is a real server over the data file, reached through real HTTP.
type liveServer struct {
	t     *testing.T
	store *bolt.Store
	srv   *httptest.Server
	admin string
	feed  string // a token of the platform scope (the change feed), once changes made one
}

func startLive(t *testing.T, data string) *liveServer {
	t.Helper()
	store, err := bolt.Open(data, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	svc := scimserver.New(store, scimserver.Options{})
	if err := svc.Bootstrap(context.Background(), scimserver.EnvTokens{SCIM: opsSCIMToken}, nil); err != nil {
		t.Fatal(err)
	}
	_, admin, err := svc.CreateToken(context.Background(), testActor, scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "ops", Scopes: []string{scimserver.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpapi.New(svc, httpapi.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	l := &liveServer{t: t, store: store, srv: httptest.NewServer(s), admin: admin}
	t.Cleanup(l.stop)
	return l
}

func (l *liveServer) stop() {
	if l.srv != nil {
		l.srv.Close()
		l.store.Close()
		l.srv = nil
	}
}

// post sends a SCIM POST and returns the created resource's id.
func (l *liveServer) post(path string, body map[string]any) string {
	l.t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", l.srv.URL+"/scim/v2"+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+opsSCIMToken)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	if res.StatusCode != http.StatusCreated {
		l.t.Fatalf("POST %s: %d %v", path, res.StatusCode, out)
	}
	id, _ := out["id"].(string)
	return id
}

const (
	userURN  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupURN = "urn:ietf:params:scim:schemas:core:2.0:Group"
)

// seedDirectory creates three users and two groups through the SCIM API, and stops the server.
func seedDirectory(t *testing.T, data string) (users []string, groups []string) {
	t.Helper()
	l := startLive(t, data)
	for _, u := range []map[string]any{
		{"userName": "ada@example.com", "displayName": "Ada Lovelace", "active": true, "externalId": "okta-1"},
		{"userName": "bob@example.org", "name": map[string]any{"givenName": "Bob", "familyName": "Byte"}, "active": false},
		{"userName": "cy@example.com", "active": true, "emails": []any{map[string]any{"value": "cy@example.com", "type": "work"}}},
	} {
		u["schemas"] = []string{userURN}
		users = append(users, l.post("/Users", u))
	}
	groups = append(groups,
		l.post("/Groups", map[string]any{"schemas": []string{groupURN}, "displayName": "Engineering",
			"members": []any{map[string]any{"value": users[0]}, map[string]any{"value": users[2]}}}),
		l.post("/Groups", map[string]any{"schemas": []string{groupURN}, "displayName": "Sales", "externalId": "g-sales"}))
	l.stop()
	return users, groups
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func TestBackupAndRestoreStoppedServer(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.db")
	users, _ := seedDirectory(t, data)
	out := filepath.Join(dir, "backups", "snap.db")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := run(t, "backup", "--out", out, "--data", data)
	if err != nil {
		t.Fatalf("backup: %v %s", err, stderr)
	}
	sum := sha256File(t, out)
	st, _ := os.Stat(out)
	if !strings.Contains(stdout, sum) || !strings.Contains(stdout, " "+strconv.FormatInt(st.Size(), 10)+" bytes") || !strings.Contains(stdout, "checked") {
		t.Fatalf("backup output %q lacks the SHA-256 %s or the size %d", stdout, sum, st.Size())
	}
	if stderr != "" {
		t.Errorf("progress written to a stderr that is not a terminal: %q", stderr)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Error("the temporary file was left behind")
	}
	// An existing backup is not replaced without --force.
	if _, _, err := run(t, "backup", "--out", out, "--data", data); err == nil || isUsage(err) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if _, _, err := run(t, "backup", "--out", out, "--force", "--data", data); err != nil {
		t.Fatalf("backup --force: %v", err)
	}
	// Command-line mistakes exit 2.
	for _, args := range [][]string{
		{"backup", "--data", data},
		{"backup", "--out", out + "2", "--token", "x", "--data", data},
		{"backup", "--out", out + "2", "--url", "http://127.0.0.1:1", "--token", "", "--data", data},
		{"backup", "extra", "--out", out + "2", "--data", data},
		{"restore", "--data", data},
		{"backup", "--no-such-flag"},
	} {
		if _, _, err := run(t, args...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	// A running server holds the file: the stopped-server mode says to use --url.
	l := startLive(t, data)
	if _, _, err := run(t, "backup", "--out", out+"3", "--data", data); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("backup of a file in use: %v", err)
	}
	if _, _, err := run(t, "restore", "--from", out, "--force", "--data", data); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("restore over a file in use: %v", err)
	}
	l.stop()

	// Restore into a new path.
	fresh := filepath.Join(dir, "restored", "data.db")
	stdout, _, err = run(t, "restore", "--from", out, "--data", fresh)
	if err != nil || !strings.Contains(stdout, "restored") {
		t.Fatalf("restore: %v %q", err, stdout)
	}
	if got := sha256File(t, fresh); got != sha256File(t, out) {
		t.Fatal("the restored file differs from the snapshot")
	}
	if stdout, _, err := run(t, "check", "--data", fresh); err != nil || !strings.Contains(stdout, "is consistent") {
		t.Fatalf("check after restore: %v %q", err, stdout)
	}
	if stdout, _, err := run(t, "users", "show", users[1], "--data", fresh); err != nil || !strings.Contains(stdout, "bob@example.org") {
		t.Fatalf("users show on the restored file: %v %q", err, stdout)
	}
	// Over an existing data file only with --force.
	if _, _, err := run(t, "restore", "--from", out, "--data", data); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over an existing file: %v", err)
	}
	if _, _, err := run(t, "restore", "--from", out, "--force", "--data", data); err != nil {
		t.Fatalf("restore --force: %v", err)
	}
	// A damaged snapshot is refused and the data file left alone.
	before := sha256File(t, data)
	damaged := filepath.Join(dir, "damaged.db")
	raw, _ := os.ReadFile(out)
	_ = os.WriteFile(damaged, raw[:len(raw)/2], 0o600)
	if _, _, err := run(t, "restore", "--from", damaged, "--force", "--data", data); err == nil {
		t.Fatal("a truncated snapshot was restored")
	}
	_ = os.WriteFile(damaged, []byte("garbage"), 0o600)
	if _, _, err := run(t, "restore", "--from", damaged, "--force", "--data", data); err == nil {
		t.Fatal("garbage was restored")
	}
	if sha256File(t, data) != before {
		t.Fatal("a refused restore changed the data file")
	}
	if left, _ := filepath.Glob(data + ".*"); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// changes reads the change feed after cursor: the status and the answer.
func (l *liveServer) changes(after string) (int, map[string]any) {
	l.t.Helper()
	if l.feed == "" {
		var err error
		_, l.feed, err = scimserver.New(l.store, scimserver.Options{}).CreateToken(context.Background(), testActor,
			scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "feed", Scopes: []string{scimserver.ScopePlatform}})
		if err != nil {
			l.t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", l.srv.URL+"/api/v1/changes?after="+after, nil)
	req.Header.Set("Authorization", "Bearer "+l.feed)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		l.t.Fatalf("changes after %s: %d, not JSON: %v", after, res.StatusCode, err)
	}
	return res.StatusCode, out
}

// TestRestoreTakesBackFeedCursors: a consumer of the change feed that read past the snapshot a
// restore puts back is told to resync (410), instead of waiting for cursors the restored trail
// hands out again to other changes, and a consumer behind the snapshot reads on without a gap.
func TestRestoreTakesBackFeedCursors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.db")
	seedDirectory(t, data)
	l := startLive(t, data)
	_, page := l.changes("0")
	atSnapshot := page["nextCursor"].(string)
	snap := filepath.Join(dir, "snap.db")
	if _, stderr, err := run(t, "backup", "--url", l.srv.URL, "--token", l.admin, "--out", snap); err != nil {
		t.Fatalf("backup: %v %s", err, stderr)
	}
	l.post("/Users", map[string]any{"schemas": []string{userURN}, "userName": "lost.after.snapshot@example.com"})
	l.post("/Users", map[string]any{"schemas": []string{userURN}, "userName": "lost.too@example.com"})
	_, page = l.changes(atSnapshot)
	ahead := page["nextCursor"].(string)
	if len(page["changes"].([]any)) != 2 || ahead == atSnapshot {
		t.Fatalf("changes after the snapshot: %v", page)
	}
	l.stop()

	stdout, stderr, err := run(t, "restore", "--from", snap, "--force", "--data", data)
	if err != nil {
		t.Fatalf("restore: %v %s", err, stderr)
	}
	if !strings.Contains(stdout, "tenant default:") || !strings.Contains(stdout, "410") {
		t.Fatalf("restore does not say what it took back: %q", stdout)
	}
	if stdout, _, err := run(t, "check", "--data", data); err != nil || !strings.Contains(stdout, "is consistent") {
		t.Fatalf("check after restore: %v %q", err, stdout)
	}

	l = startLive(t, data)
	created := l.post("/Users", map[string]any{"schemas": []string{userURN}, "userName": "after.restore@example.com"})
	// Past the snapshot: the changes up to the cursor are gone, and the cursor must not silently
	// skip the new change.
	status, body := l.changes(ahead)
	if status != http.StatusGone || !strings.Contains(fmt.Sprint(body["detail"]), "restored from a backup") || body["oldestCursor"] != "0" {
		t.Fatalf("a cursor past the snapshot: %d %v", status, body)
	}
	// At the snapshot: the restore's mark, naming what it took back, then the new change.
	status, page = l.changes(atSnapshot)
	changes, _ := page["changes"].([]any)
	if status != http.StatusOK || len(changes) != 2 || changes[1].(map[string]any)["resourceId"] != created {
		t.Fatalf("changes after the snapshot's cursor: %d %v", status, page)
	}
	if mark := changes[0].(map[string]any); mark["operation"] != "restored" ||
		fmt.Sprint(mark["takenBack"]) != fmt.Sprint(map[string]any{"after": atSnapshot, "through": ahead}) {
		t.Fatalf("the restore's mark: %v", mark)
	}
	if next, _ := strconv.ParseUint(page["nextCursor"].(string), 10, 64); next <= mustUint(t, ahead) {
		t.Fatalf("the new change took cursor %d, not above the taken-back %s", next, ahead)
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackupFromRunningServer(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.db")
	users, _ := seedDirectory(t, data)
	l := startLive(t, data)
	extra := l.post("/Users", map[string]any{"schemas": []string{userURN}, "userName": "while.running@example.com"})

	out := filepath.Join(dir, "online.db")
	// The SCIM base URL, the one an operator has at hand, names the server as well as its root.
	stdout, stderr, err := run(t, "backup", "--url", l.srv.URL+"/scim/v2/", "--token", l.admin, "--out", out)
	if err != nil {
		t.Fatalf("backup --url: %v %s", err, stderr)
	}
	if !strings.Contains(stdout, sha256File(t, out)) {
		t.Fatalf("output %q lacks the SHA-256", stdout)
	}
	// The token may come from SCIMSERVER_ADMIN_TOKEN, and --url may name the endpoint itself.
	t.Setenv("SCIMSERVER_ADMIN_TOKEN", l.admin)
	if _, _, err := run(t, "backup", "--url", l.srv.URL+"/api/v1/admin/backup", "--out", out, "--force"); err != nil {
		t.Fatalf("backup with the token from the environment: %v", err)
	}
	// A SCIM token is refused by the server; nothing is written.
	bad := filepath.Join(dir, "refused.db")
	_, _, err = run(t, "backup", "--url", l.srv.URL, "--token", opsSCIMToken, "--out", bad)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "bearer token") {
		t.Fatalf("backup with a SCIM token: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("a refused backup left a file")
	}
	if _, err := os.Stat(bad + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("a refused backup left a temporary file")
	}
	l.stop()

	// The online backup holds what the server had acknowledged.
	for _, id := range append(users, extra) {
		if stdout, _, err := run(t, "users", "show", id, "--format", "json", "--data", out); err != nil || !strings.Contains(stdout, id) {
			t.Fatalf("user %s in the online backup: %v %q", id, err, stdout)
		}
	}
}

func TestUsersAndGroupsCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data.db")
	users, groups := seedDirectory(t, data)

	// list, table
	out, _, err := run(t, "users", "list", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], users[0]) ||
		!strings.Contains(lines[1], "Ada Lovelace") || !strings.Contains(lines[2], "Bob Byte") || !strings.Contains(lines[2], "false") {
		t.Fatalf("users list:\n%s", out)
	}
	// --filter uses the SCIM filter syntax.
	out, _, err = run(t, "users", "list", "--filter", `active eq false`, "--data", data)
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, "bob@example.org") {
		t.Fatalf("filter active eq false: %v\n%s", err, out)
	}
	out, _, err = run(t, "users", "list", "--filter", `userName ew "example.com" and not (externalId pr)`, "--format", "json", "--data", data)
	var rs []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 || rs[0]["id"] != users[2] {
		t.Fatalf("filter, json: %v\n%s", err, out)
	}
	if _, ok := rs[0]["password"]; ok || rs[0]["meta"] == nil {
		t.Fatalf("json rendering: %v", rs[0])
	}
	out, _, err = run(t, "users", "list", "--filter", `emails[type eq "work" and value co "cy"]`, "--format", "json", "--data", data)
	if err != nil || !strings.Contains(out, users[2]) || strings.Contains(out, users[0]) {
		t.Fatalf("value path filter: %v\n%s", err, out)
	}
	// --limit
	out, stderr, err := run(t, "users", "list", "--limit", "2", "--data", data)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(stderr, "first 2") {
		t.Fatalf("limit 2: %v\n%s\n%s", err, out, stderr)
	}
	if out, _, err = run(t, "users", "list", "--limit", "0", "--format", "json", "--data", data); err != nil || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 3 {
		t.Fatalf("limit 0: %v %s", err, out)
	}
	// Mistakes exit 2: a bad filter, a bad format, a negative limit.
	for _, args := range [][]string{
		{"users", "list", "--filter", `userName eq`},
		{"users", "list", "--filter", `nosuch eq "x"`},
		{"users", "list", "--format", "xml"},
		{"users", "list", "--limit", "-1"},
		{"users", "show"},
		{"groups", "list", "--filter", `userName eq "x"`},
	} {
		if _, _, err := run(t, append(args, "--data", data)...); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, _, err := run(t, "users", "list", "--tenant", "nope", "--data", data); err == nil || isUsage(err) {
		t.Errorf("unknown tenant: %v", err)
	}

	// show by id or by userName, table and json
	out, _, err = run(t, "users", "show", users[1], "--data", data)
	if err != nil || !strings.Contains(out, "name.givenName") || !strings.Contains(out, "Bob") || !strings.Contains(out, "userName") {
		t.Fatalf("users show (table): %v\n%s", err, out)
	}
	out, _, err = run(t, "users", "show", "ADA@example.com", "--format", "json", "--data", data)
	var one map[string]any
	if err != nil || json.Unmarshal([]byte(out), &one) != nil || one["id"] != users[0] {
		t.Fatalf("users show by userName: %v\n%s", err, out)
	}
	if groupsOf, _ := one["groups"].([]any); len(groupsOf) != 1 {
		t.Fatalf("ada's groups: %v", one["groups"])
	}
	if _, _, err := run(t, "users", "show", "nobody", "--data", data); err == nil || isUsage(err) {
		t.Fatalf("show of an unknown user: %v", err)
	}

	// groups
	out, _, err = run(t, "groups", "list", "--data", data)
	if err != nil || !strings.Contains(out, "Engineering") || !strings.Contains(out, "Sales") || !strings.Contains(out, "DISPLAYNAME") {
		t.Fatalf("groups list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Engineering") && !strings.Contains(line, " 2 ") {
			t.Errorf("Engineering should show 2 members: %q", line)
		}
	}
	out, _, err = run(t, "groups", "list", "--filter", `members.value eq "`+users[2]+`"`, "--format", "json", "--data", data)
	if err != nil || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 || rs[0]["id"] != groups[0] {
		t.Fatalf("groups by member: %v\n%s", err, out)
	}
	out, _, err = run(t, "groups", "show", "sales", "--data", data)
	if err != nil || !strings.Contains(out, groups[1]) || !strings.Contains(out, "g-sales") {
		t.Fatalf("groups show by displayName: %v\n%s", err, out)
	}
	out, _, err = run(t, "groups", "show", groups[0], "--format", "json", "--data", data)
	if err != nil || !strings.Contains(out, users[0]) || !strings.Contains(out, users[2]) {
		t.Fatalf("groups show (json): %v\n%s", err, out)
	}
}

func TestStatsCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data.db")
	seedDirectory(t, data)
	if _, _, err := run(t, "tenant", "create", "acme", "--name", "Acme Corp", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "stats", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, data) || !strings.Contains(out, "tenants    2") || !strings.Contains(out, "bytes") {
		t.Fatalf("stats header:\n%s", out)
	}
	var def, acme string
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 0 && f[0] == "default":
			def = line
		case len(f) > 0 && f[0] == "acme":
			acme = line
		}
	}
	// default: 3 users, 2 groups, 10 trail events (the tenant and two tokens, one per create,
	// one per membership begun), 2 live tokens (SCIM, admin).
	if f := strings.Fields(def); len(f) < 8 || f[len(f)-4] != "3" || f[len(f)-3] != "2" || f[len(f)-2] != "10" || f[len(f)-1] != "2" {
		t.Fatalf("default row %q in:\n%s", def, out)
	}
	if !strings.Contains(acme, "Acme Corp") || !strings.Contains(acme, "enabled") {
		t.Fatalf("acme row %q", acme)
	}
	out, _, err = run(t, "stats", "--format", "json", "--data", data)
	var st struct {
		File      string        `json:"file"`
		SizeBytes int64         `json:"sizeBytes"`
		UsedBytes int64         `json:"usedBytes"`
		Tenants   []tenantStats `json:"tenants"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Tenants) != 2 {
		t.Fatalf("stats json: %v\n%s", err, out)
	}
	// The size is the file's, as ls -l shows it; the live data is a part of it.
	if fi, err := os.Stat(data); err != nil || st.SizeBytes != fi.Size() || st.UsedBytes <= 0 || st.UsedBytes >= st.SizeBytes {
		t.Fatalf("stats sizes: %d bytes, %d used; the file has %d", st.SizeBytes, st.UsedBytes, fi.Size())
	}
	if d := st.Tenants[1]; d.ID != "default" || d.Users != 3 || d.Groups != 2 || d.TrailEvents != 10 || d.ActiveTokens != 2 {
		t.Fatalf("default: %+v", d)
	}
	if _, _, err := run(t, "stats", "--format", "yaml", "--data", data); !isUsage(err) {
		t.Fatalf("bad format: %v", err)
	}
	if _, _, err := run(t, "stats", "--data", filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Fatal("stats of a missing file succeeded")
	}
}

func TestOpsCommandsHaveHelp(t *testing.T) {
	for _, args := range [][]string{{"backup"}, {"restore"}, {"users", "list"}, {"users", "show"}, {"groups", "list"}, {"groups", "show"}, {"stats"}} {
		out, _, err := run(t, append(args, "--help")...)
		if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "--data") {
			t.Errorf("%v --help: %v\n%s", args, err, out)
		}
	}
	out, _, err := run(t, "completion", "bash")
	if err != nil || !strings.Contains(out, "scimserver") {
		t.Errorf("completion bash: %v", err)
	}
}

// TestServeMetricsAddr runs the real serve command with --metrics-addr: /metrics answers there
// without a token, and on the main address only to an admin token.
func TestServeMetricsAddr(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d.db")
	addr, maddr := testtool.FreeAddr(t), testtool.FreeAddr(t)
	t.Setenv("SCIMSERVER_TOKEN", opsSCIMToken)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	cmd := newRoot()
	cmd.SetArgs([]string{"--addr", addr, "--metrics-addr", maddr, "--data", data})
	cmd.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	get := func(url, token string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(raw)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code, _ := get("http://"+maddr+"/metrics", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics listener did not start: %s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get("http://"+addr+"/scim/v2/Users", opsSCIMToken); code != http.StatusOK {
		t.Fatalf("SCIM: %d", code)
	}
	// A request is counted once its answer has been written, which the client may see first.
	want := `scimserver_http_requests_total{method="GET",route="/scim/v2/Users",status="2xx"} 1`
	code, body := get("http://"+maddr+"/metrics", "")
	for deadline := time.Now().Add(5 * time.Second); code == http.StatusOK && !strings.Contains(body, want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		code, body = get("http://"+maddr+"/metrics", "")
	}
	if code != http.StatusOK || !strings.Contains(body, want) || !strings.Contains(body, `scimserver_users{tenant="default"} 0`) {
		t.Fatalf("metrics on --metrics-addr: %d\n%s", code, body)
	}
	if code, _ := get("http://"+maddr+"/scim/v2/Users", opsSCIMToken); code != http.StatusNotFound {
		t.Errorf("the metrics listener serves more than /metrics: %d", code)
	}
	if code, _ := get("http://"+addr+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the main address without a token: %d", code)
	}
	if code, _ := get("http://"+addr+"/metrics", opsSCIMToken); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the main address with a SCIM token: %d", code)
	}
	if !strings.Contains(stderr.String(), "serving /metrics without authentication") {
		t.Errorf("the metrics listener is not logged: %s", stderr)
	}
}

func TestBackupURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://scim.example.com":                          "https://scim.example.com/api/v1/admin/backup",
		"https://scim.example.com/":                         "https://scim.example.com/api/v1/admin/backup",
		"https://scim.example.com/scim/v2":                  "https://scim.example.com/api/v1/admin/backup",
		"https://scim.example.com/SCIM/v2/":                 "https://scim.example.com/api/v1/admin/backup",
		"http://10.0.0.1:8080/idp/scim/v2":                  "http://10.0.0.1:8080/idp/api/v1/admin/backup",
		"https://scim.example.com/api/v1/admin/backup":      "https://scim.example.com/api/v1/admin/backup",
		"https://proxy.example.com/scimserver":              "https://proxy.example.com/scimserver/api/v1/admin/backup",
		"https://proxy.example.com/scimserver/scim/v2?x=1":  "",
		"scim.example.com":                                  "",
		"ftp://scim.example.com":                            "",
		"https://proxy.example.com/scimserver/scim/v2#frag": "",
	} {
		got, err := backupURL(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("backupURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1.0 KiB", 45056: "44.0 KiB",
		16805888: "16.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
