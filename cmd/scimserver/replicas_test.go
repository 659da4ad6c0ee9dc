package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// Two server processes, the real binary, on one PostgreSQL database: what one replica commits,
// the other must honour at once.

const (
	replicaSCIM     = "replica-scim-token-0123456789abcdefghijklmnopqrstuvwxyz"
	replicaPlatform = "replica-platform-token-0123456789abcdefghijklmnopqrstuvwxyz"
	replicaAdmin    = "replica-admin-token-0123456789abcdefghijklmnopqrstuvwxyz"
)

type replica struct {
	t    *testing.T
	url  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startReplicas starts n servers on the database at data at once (so that they bootstrap
// together) and waits until each answers /healthz.
func startReplicas(t *testing.T, data string, n int, env ...string) []*replica {
	t.Helper()
	bin := scimserverBinary(t)
	dir := t.TempDir()
	rs := make([]*replica, n)
	for i := range rs {
		addr := testtool.FreeAddr(t)
		r := &replica{t: t, url: "http://" + addr, log: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i)), done: make(chan struct{})}
		f, err := os.Create(r.log)
		if err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "--addr", addr, "--data", data, "--log-level", "warn")
		r.cmd.Env = append(os.Environ(), env...)
		r.cmd.Env = append(r.cmd.Env, fmt.Sprintf("SCIMSERVER_BOOTSTRAP_TOKEN_FILE=%s", filepath.Join(dir, fmt.Sprintf("bootstrap-%d", i))))
		r.cmd.Stdout, r.cmd.Stderr = f, f
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		go func() { _ = r.cmd.Wait(); close(r.done) }()
		t.Cleanup(r.stop)
		rs[i] = r
	}
	for _, r := range rs {
		deadline := time.Now().Add(60 * time.Second)
		for {
			res, err := http.Get(r.url + "/healthz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			select {
			case <-r.done:
				t.Fatalf("a replica exited at start:\n%s", r.logText())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("a replica did not come up:\n%s", r.logText())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return rs
}

func (r *replica) stop() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *replica) logText() string {
	raw, _ := os.ReadFile(r.log)
	return string(raw)
}

// do sends a request with a token and returns the status and the decoded body.
func (r *replica) do(token, method, path string, body any) (int, map[string]any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func replicaUser(userName string) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
}

// TestReplicasBootstrapOnce: servers starting together on an empty database create the default
// tenant and its first SCIM token once, and exactly one of them hands out the secret.
func TestReplicasBootstrapOnce(t *testing.T) {
	rs := startReplicas(t, pgtest.URL(t), 3, "SCIMSERVER_ADMIN_TOKEN="+replicaAdmin)
	files := 0
	for i := range rs {
		if _, err := os.Stat(filepath.Join(filepath.Dir(rs[i].log), fmt.Sprintf("bootstrap-%d", i))); err == nil {
			files++
		}
	}
	if files != 1 {
		t.Errorf("%d replicas wrote a first SCIM token, want 1", files)
	}
	status, body := rs[1].do(replicaAdmin, "GET", "/api/v1/admin/tenants/default/tokens", nil)
	if status != 200 {
		t.Fatalf("list tokens: %d %v", status, body)
	}
	raw, _ := json.Marshal(body)
	if n := strings.Count(string(raw), `"bootstrap"`); n != 1 {
		t.Errorf("%d bootstrap tokens: %s", n, raw)
	}
	status, body = rs[2].do(replicaAdmin, "GET", "/api/v1/admin/tenants", nil)
	raw, _ = json.Marshal(body)
	if status != 200 || strings.Count(string(raw), `"id":"default"`) != 1 {
		t.Errorf("tenants: %d %s", status, raw)
	}
}

func TestReplicas(t *testing.T) {
	rs := startReplicas(t, pgtest.URL(t), 2, "SCIMSERVER_TOKEN="+replicaSCIM, "SCIMSERVER_PLATFORM_TOKEN="+replicaPlatform,
		"SCIMSERVER_ADMIN_TOKEN="+replicaAdmin)
	a, b := rs[0], rs[1]

	t.Run("one userName across replicas", func(t *testing.T) {
		const n = 16
		statuses := make([]int, n)
		types := make([]any, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := []string{"racer@example.com", "RACER@example.com", "Racer@Example.com", "rAcEr@example.COM"}[i%4]
				var body map[string]any
				statuses[i], body = rs[i%2].do(replicaSCIM, "POST", "/scim/v2/Users", replicaUser(name))
				types[i] = body["scimType"]
			}()
		}
		wg.Wait()
		created := 0
		for i, s := range statuses {
			switch {
			case s == 201:
				created++
			case s != 409 || types[i] != "uniqueness":
				t.Errorf("create %d: %d %v, want 201 or 409 uniqueness", i, s, types[i])
			}
		}
		if created != 1 {
			t.Errorf("%d creates of one userName succeeded, want 1", created)
		}
	})

	t.Run("a revocation through one replica holds on the other", func(t *testing.T) {
		status, body := a.do(replicaAdmin, "POST", "/api/v1/admin/tenants/default/tokens", map[string]any{"name": "short-lived", "scopes": []string{"scim"}})
		if status != 201 {
			t.Fatalf("create token: %d %v", status, body)
		}
		secret, _ := body["secret"].(string)
		id, _ := body["id"].(string)
		if secret == "" || id == "" {
			t.Fatalf("create token answered %v", body)
		}
		// Both replicas know it (and may remember it).
		for _, r := range rs {
			if status, _ := r.do(secret, "GET", "/scim/v2/Users?count=1", nil); status != 200 {
				t.Fatalf("the new token on a replica: %d", status)
			}
		}
		if status, body := a.do(replicaAdmin, "DELETE", "/api/v1/admin/tenants/default/tokens/"+id, nil); status != 204 {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if status, _ := b.do(secret, "GET", "/scim/v2/Users?count=1", nil); status != 401 {
			t.Errorf("the other replica served a revoked token: %d", status)
		}
	})

	t.Run("a delete racing an interaction on the other replica", func(t *testing.T) {
		const n = 24
		ids := make([]string, n)
		for i := range ids {
			status, body := a.do(replicaSCIM, "POST", "/scim/v2/Users", replicaUser(fmt.Sprintf("audited%d@example.com", i)))
			if status != 201 {
				t.Fatalf("create: %d %v", status, body)
			}
			ids[i] = body["id"].(string)
		}
		facts := make([]int, n)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(2)
			go func() {
				defer wg.Done()
				facts[i], _ = b.do(replicaPlatform, "POST", "/api/v1/users/"+ids[i]+"/interactions", map[string]any{"type": "login"})
			}()
			go func() {
				defer wg.Done()
				if s, body := a.do(replicaSCIM, "DELETE", "/scim/v2/Users/"+ids[i], nil); s != 204 {
					t.Errorf("DELETE %d: %d %v", i, s, body)
				}
			}()
		}
		wg.Wait()
		for i, id := range ids {
			status, body := b.do(replicaSCIM, "GET", "/scim/v2/Users/"+id, nil)
			switch facts[i] {
			case 204: // the interaction first: the user is audited, the DELETE only deactivated it
				if status != 200 || body["active"] != false {
					t.Errorf("user %d had an interaction recorded, then is %d %v", i, status, body)
				}
			case 404: // the DELETE first: gone, and no interaction recorded
				if status != 404 {
					t.Errorf("user %d: the interaction was refused, but the user is %d", i, status)
				}
			default:
				t.Errorf("interaction %d answered %d", i, facts[i])
			}
		}
	})

	t.Run("the change feed of one replica holds every replica's changes once, in order", func(t *testing.T) {
		status, body := a.do(replicaPlatform, "GET", "/api/v1/changes", nil)
		if status != 200 {
			t.Fatalf("changes: %d %v", status, body)
		}
		start, _ := body["nextCursor"].(string)
		const writers, each = 6, 15
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each {
					if s, body := rs[w%2].do(replicaSCIM, "POST", "/scim/v2/Users", replicaUser(fmt.Sprintf("feed-%d-%d@example.com", w, j))); s != 201 {
						t.Errorf("create: %d %v", s, body)
						return
					}
				}
			}()
		}
		// Follow the feed on one replica while the writes land through both.
		seen := map[string]int{}
		var order []int
		cursor := start
		follow := func() {
			status, body := a.do(replicaPlatform, "GET", "/api/v1/changes?limit=7&after="+cursor, nil)
			if status != 200 {
				t.Fatalf("changes: %d %v", status, body)
			}
			changes, _ := body["changes"].([]any)
			for _, c := range changes {
				ch := c.(map[string]any)
				seen[ch["resourceId"].(string)]++
				n, _ := strconv.Atoi(ch["cursor"].(string))
				order = append(order, n)
			}
			cursor = body["nextCursor"].(string)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
			}
			follow()
		}
		for before := -1; before != len(order); {
			before = len(order)
			follow()
		}
		if len(seen) != writers*each {
			t.Errorf("the feed holds %d users, %d were created", len(seen), writers*each)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("user %s appears %d times", id, n)
			}
		}
		for i := 1; i < len(order); i++ {
			if order[i] <= order[i-1] {
				t.Fatalf("the feed goes from %d to %d", order[i-1], order[i])
			}
		}
	})
}

// TestCommandsOnPostgres: operator commands work on a PostgreSQL URL while servers may run, and
// those that work on the bbolt file refuse it, pointing to PostgreSQL's own tools; no message
// shows the URL's password.
func TestCommandsOnPostgres(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2-password") // trust auth ignores it
	data := u.String()
	if _, _, err := run(t, "tenant", "create", "acme", "--name", "Acme Corp", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "tenant", "list", "--data", data)
	if err != nil || !strings.Contains(out, "Acme Corp") {
		t.Fatalf("tenant list: %v %s", err, out)
	}
	out, _, err = run(t, "check", "--data", data)
	if err != nil || !strings.Contains(out, "is consistent") || strings.Contains(out, "hunter2") {
		t.Fatalf("check: %v %s", err, out)
	}
	out, _, err = run(t, "stats", "--data", data)
	if err != nil || !strings.Contains(out, "acme") || strings.Contains(out, "hunter2") {
		t.Fatalf("stats: %v %s", err, out)
	}
	for _, args := range [][]string{
		{"backup", "--out", filepath.Join(t.TempDir(), "b.db")},
		{"restore", "--from", filepath.Join(t.TempDir(), "b.db")},
	} {
		_, _, err := run(t, append(args, "--data", data)...)
		if err == nil || !strings.Contains(err.Error(), "PostgreSQL") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s on PostgreSQL: %v", args[0], err)
		}
	}
	// compact rewrites the tables that hold personal values (TestErasureResidue measures it).
	out, _, err = run(t, "compact", "--data", data)
	if err != nil || !strings.Contains(out, "no erasure is pending") || strings.Contains(out, "hunter2") {
		t.Errorf("compact on PostgreSQL: %v %s", err, out)
	}
	_, _, err = run(t, "backup", "--out", filepath.Join(t.TempDir(), "b.db"), "--data", data)
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("backup does not point to pg_dump: %v", err)
	}
}
