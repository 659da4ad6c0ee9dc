package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
)

func newUserBody(userName string) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
}

func TestAdminAPIRequiresAdminScope(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	for _, tok := range []string{"", e.token, testPlatformToken, "not-a-token-at-all-0123456789abcdefghij"} {
		for _, path := range []string{"/api/v1/admin/tenants", "/api/v1/admin/backup", "/api/v1/admin/tenants/default/tokens"} {
			r := e.doAs(tok, "GET", path, nil)
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with token %.8q: %d", path, tok, r.status)
			}
		}
		e.doAs(tok, "POST", "/api/v1/admin/tenants", map[string]any{"id": "sneaky"}).must(t, http.StatusUnauthorized)
	}
	if _, err := e.svc.Tenant(bg, "sneaky"); scimserver.ErrorCode(err) != scimserver.NotFound {
		t.Fatal("a non-admin token created a tenant")
	}
	// An admin token is not a SCIM or platform token.
	e.doAs(admin, "GET", "/scim/v2/Users", nil).must(t, http.StatusUnauthorized)
	e.doAs(admin, "GET", "/api/v1/audit", nil).must(t, http.StatusUnauthorized)
	// The platform API is still the platform API next to /api/v1/admin.
	e.api("GET", "/api/v1/audit", nil).must(t, http.StatusOK)
	e.doAs(admin, "GET", "/api/v1/admin/nothing-here", nil).must(t, http.StatusNotFound)
}

func TestAdminTenantsAndTokens(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	adminID := ""
	if toks, _ := e.svc.Tokens(bg, scimserver.DefaultTenant); len(toks) > 0 {
		for _, tk := range toks {
			if scimserver.HasScope(tk, scimserver.ScopeAdmin) {
				adminID = tk.ID
			}
		}
	}
	call := func(method, path string, body any) resp {
		t.Helper()
		r := e.doAs(admin, method, path, body)
		if ct := r.header.Get("Content-Type"); len(r.raw) > 0 && !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		return r
	}

	// Tenants.
	list := call("GET", "/api/v1/admin/tenants", nil).must(t, http.StatusOK)
	if ts, _ := list["tenants"].([]any); len(ts) != 1 || get(ts, 0, "id") != "default" {
		t.Fatalf("tenants: %v", list)
	}
	created := call("POST", "/api/v1/admin/tenants", map[string]any{"id": "acme", "name": "Acme Corp"}).must(t, http.StatusCreated)
	if created["id"] != "acme" || created["name"] != "Acme Corp" || created["disabled"] != false {
		t.Fatalf("created: %v", created)
	}
	call("POST", "/api/v1/admin/tenants", map[string]any{"id": "acme"}).must(t, http.StatusConflict)
	call("POST", "/api/v1/admin/tenants", map[string]any{"id": "Not Valid!"}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants", map[string]any{"name": "no id"}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants", map[string]any{"id": 7}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants", `{"id":`).must(t, http.StatusBadRequest)
	call("GET", "/api/v1/admin/tenants/nope", nil).must(t, http.StatusNotFound)
	if got := call("GET", "/api/v1/admin/tenants/acme", nil).must(t, http.StatusOK); got["users"] != float64(0) {
		t.Fatalf("acme: %v", got)
	}

	// Tokens: the secret is shown once, at creation.
	before := time.Now()
	tok := call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"name": "okta", "scopes": []string{"scim"}, "expiresIn": "720h"})
	body := tok.must(t, http.StatusCreated)
	secret, tokID := str(body["secret"]), str(body["id"])
	if !strings.HasPrefix(secret, "scim_") || tokID == "" || body["tenant"] != "acme" || get(body, "scopes", 0) != "scim" || body["state"] != "active" {
		t.Fatalf("token create: %s", tok.raw)
	}
	if tok.header.Get("Cache-Control") != "no-store" {
		t.Error("the answer holding a secret may be cached")
	}
	if exp, err := time.Parse(time.RFC3339Nano, str(body["expires"])); err != nil || exp.Before(before.Add(719*time.Hour)) || exp.After(time.Now().Add(721*time.Hour)) {
		t.Errorf("expires %v", body["expires"])
	}
	if _, ok := body["hash"]; ok {
		t.Error("the secret's hash is shown")
	}
	e.doAs(secret, "POST", "/scim/v2/Users", newUserBody("acme.person@example.com")).must(t, http.StatusCreated)
	toks := call("GET", "/api/v1/admin/tenants/acme/tokens", nil)
	toks.must(t, http.StatusOK)
	if bytes.Contains(toks.raw, []byte(secret)) || bytes.Contains(toks.raw, []byte(`"secret"`)) || bytes.Contains(toks.raw, []byte(`"hash"`)) {
		t.Fatalf("the token list shows a secret: %s", toks.raw)
	}
	if get(toks.body, "tokens", 0, "id") != tokID || get(toks.body, "tokens", 0, "name") != "okta" || get(toks.body, "tokens", 1) != nil {
		t.Fatalf("token list: %s", toks.raw)
	}
	// Defaults: scim scope, no expiry.
	plain := call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{}).must(t, http.StatusCreated)
	if get(plain, "scopes", 0) != "scim" || plain["expires"] != nil {
		t.Errorf("default token: %v", plain)
	}
	call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"scopes": []string{"root"}}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"scopes": "scim"}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"expiresIn": "soon"}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"expiresIn": "-1h"}).must(t, http.StatusBadRequest)
	call("POST", "/api/v1/admin/tenants/nope/tokens", map[string]any{}).must(t, http.StatusNotFound)
	call("GET", "/api/v1/admin/tenants/nope/tokens", nil).must(t, http.StatusNotFound)
	if got := call("GET", "/api/v1/admin/tenants/acme", nil).must(t, http.StatusOK); got["users"] != float64(1) {
		t.Fatalf("acme after a user: %v", got)
	}

	// Disable: the tenant's tokens get 401 on the next request; enable restores them.
	dis := call("POST", "/api/v1/admin/tenants/acme/disable", nil).must(t, http.StatusOK)
	if dis["disabled"] != true {
		t.Fatalf("disable: %v", dis)
	}
	e.doAs(secret, "GET", "/scim/v2/Users", nil).must(t, http.StatusUnauthorized)
	call("POST", "/api/v1/admin/tenants/acme/disable", nil).must(t, http.StatusOK) // idempotent
	if got := call("GET", "/api/v1/admin/tenants", nil).must(t, http.StatusOK); get(got, "tenants", 0, "id") != "acme" || get(got, "tenants", 0, "disabled") != true {
		t.Fatalf("list after disable: %v", got)
	}
	call("POST", "/api/v1/admin/tenants/acme/enable", nil).must(t, http.StatusOK)
	e.doAs(secret, "GET", "/scim/v2/Users", nil).must(t, http.StatusOK)
	call("POST", "/api/v1/admin/tenants/nope/disable", nil).must(t, http.StatusNotFound)
	// The admin's own tenant cannot be disabled with its own token (it would lock itself out).
	// The answer names a way that exists: the CLI's tenant disable.
	if r := call("POST", "/api/v1/admin/tenants/default/disable", nil).must(t, http.StatusConflict); !strings.Contains(str(r["detail"]), `"scimserver tenant disable"`) {
		t.Errorf("409 detail: %v", r["detail"])
	}
	e.do("GET", "/scim/v2/Users", nil).must(t, http.StatusOK)

	// Revoke.
	call("DELETE", "/api/v1/admin/tenants/default/tokens/"+tokID, nil).must(t, http.StatusNotFound) // another tenant's token
	call("DELETE", "/api/v1/admin/tenants/acme/tokens/nope", nil).must(t, http.StatusNotFound)
	if r := call("DELETE", "/api/v1/admin/tenants/acme/tokens/"+tokID, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	e.doAs(secret, "GET", "/scim/v2/Users", nil).must(t, http.StatusUnauthorized)
	call("DELETE", "/api/v1/admin/tenants/acme/tokens/"+tokID, nil).must(t, http.StatusNoContent) // idempotent
	if got := call("GET", "/api/v1/admin/tenants/acme/tokens", nil).must(t, http.StatusOK); get(got, "tokens", 0, "state") != "revoked" {
		t.Fatalf("after revoke: %v", got)
	}

	// Every change is in the affected tenant's trail, once, with the admin token as the actor.
	var ops []string
	for _, ev := range trailOf(t, e.store, "acme") {
		if ev.ResourceType == "Tenant" || ev.ResourceType == "Token" {
			if ev.ActorID != adminID || ev.ActorName != "ops" {
				t.Errorf("event %s by %q/%q, want the admin token %q", ev.Operation, ev.ActorID, ev.ActorName, adminID)
			}
			ops = append(ops, ev.Operation)
		}
	}
	want := []string{"tenant-create", "token-create", "token-create", "tenant-disable", "tenant-enable", "token-revoke"}
	if !slices.Equal(ops, want) {
		t.Fatalf("acme's trail: %v, want %v", ops, want)
	}
	// The platform reads them through its own audit API too.
	var trail []storage.Event
	_ = e.store.Read(bg, "acme", func(tx storage.Tx) error {
		var err error
		trail, _, err = tx.Trail(storage.TrailQuery{ResourceID: tokID})
		return err
	})
	if len(trail) != 2 || trail[0].Operation != "token-revoke" || trail[1].Operation != "token-create" {
		t.Fatalf("the token's own trail: %+v", trail)
	}
}

// ackedWrite is a user creation the server acknowledged (201), and when the answer arrived.
type ackedWrite struct {
	id, userName string
	at           time.Time
}

// TestAdminBackupDuringWrites takes a backup through the admin API while writers create users,
// and finds in it every user whose creation was acknowledged before the backup began.
func TestAdminBackupDuringWrites(t *testing.T) {
	boltOnly(t, "online backups are snapshots of the data file")
	e := newEnv(t)
	admin := e.adminToken()
	var (
		mu    sync.Mutex
		acked []ackedWrite
		errs  []error
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("writer%d.user%d@example.com", w, i)
				raw, _ := json.Marshal(newUserBody(name))
				req, _ := http.NewRequest("POST", e.srv.URL+"/scim/v2/Users", bytes.NewReader(raw))
				req.Header.Set("Authorization", "Bearer "+e.token)
				req.Header.Set("Content-Type", "application/scim+json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				var out map[string]any
				_ = json.NewDecoder(res.Body).Decode(&out)
				res.Body.Close()
				at := time.Now()
				mu.Lock()
				if res.StatusCode == http.StatusCreated {
					acked = append(acked, ackedWrite{id: str(out["id"]), userName: name, at: at})
				} else {
					errs = append(errs, fmt.Errorf("POST %s: %d", name, res.StatusCode))
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	for deadline := time.Now().Add(20 * time.Second); count() < 40; {
		if time.Now().After(deadline) {
			t.Fatalf("writers too slow: %d acknowledged, errors %v", count(), errs)
		}
		time.Sleep(5 * time.Millisecond)
	}

	began := time.Now()
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/admin/backup", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := filepath.Join(t.TempDir(), "snapshot.db")
	f, err := os.Create(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), res.Body)
	res.Body.Close()
	f.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("backup: %d %v", res.StatusCode, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if res.ContentLength != n || res.Header.Get("Content-Length") != strconv.FormatInt(n, 10) {
		t.Errorf("Content-Length %d (%q), body %d bytes", res.ContentLength, res.Header.Get("Content-Length"), n)
	}
	if got := res.Header.Get("X-Backup-SHA256"); got != hex.EncodeToString(sum.Sum(nil)) {
		t.Errorf("X-Backup-SHA256 %q does not match the body", got)
	}
	// Let the writers go on after the backup, then stop them.
	for after := count() + 20; count() < after; {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writer errors: %v", errs)
	}

	var before []ackedWrite
	afterBackup := 0
	for _, a := range acked {
		if a.at.Before(began) {
			before = append(before, a)
		} else {
			afterBackup++
		}
	}
	if afterBackup == 0 {
		t.Fatal("no write ran concurrently with or after the backup")
	}

	problems, err := bolt.VerifySnapshot(snapshot, scimserver.Collections())
	if err != nil || len(problems) > 0 {
		t.Fatalf("the snapshot fails the check: %v %v", err, problems)
	}
	restored := filepath.Join(t.TempDir(), "restored", "data.db")
	if _, err := bolt.Restore(snapshot, restored, false, scimserver.Collections(), bolt.RestoreHooks{}); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(restored, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var inSnapshot int
	err = s.Read(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		inSnapshot = tx.Count(users)
		for _, a := range before {
			u, err := tx.Get(users, a.id)
			if err != nil {
				t.Errorf("user %s acknowledged %v before the backup began is not in it: %v", a.userName, began.Sub(a.at), err)
				continue
			}
			if !strings.Contains(string(u.Doc), `"userName":"`+a.userName+`"`) {
				t.Errorf("user %s has another userName: %s", a.id, u.Doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inSnapshot < len(before) || inSnapshot > len(acked) {
		t.Errorf("the snapshot holds %d users; %d were acknowledged before it, %d in all", inSnapshot, len(before), len(acked))
	}
	t.Logf("%d writes acknowledged before the backup, %d in the snapshot, %d in all; snapshot %d bytes", len(before), inSnapshot, len(acked), n)
	// The restored file is a working data file: the tokens in it still authenticate.
	if _, err := scimserver.New(s, scimserver.Options{}).Authenticate(bg, testToken); err != nil {
		t.Errorf("the restored file does not know the SCIM token: %v", err)
	}
	// The staging file is gone.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(e.bolt("backups are file snapshots").Path()), ".scimserver-backup-*")); len(left) > 0 {
		t.Errorf("staging files left behind: %v", left)
	}
}

func TestAdminBackupOneAtATime(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	f, err := e.bolt("backups are file snapshots").Snapshot(bg) // the one snapshot, until closed
	if err != nil {
		t.Fatal(err)
	}
	e.doAs(admin, "GET", "/api/v1/admin/backup", nil).must(t, http.StatusConflict)
	f.Close()
	if status, _ := fetch(t, e.srv.URL+"/api/v1/admin/backup", admin); status != http.StatusOK {
		t.Fatalf("backup after the other one ended: %d", status)
	}
}

func TestQueryUsersAndGroups(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for _, u := range []map[string]any{
		{"userName": "ada@example.com", "name": map[string]any{"givenName": "Ada"}, "active": true, "emails": []any{map[string]any{"value": "ada@example.com", "primary": true}}},
		{"userName": "bob@example.org", "active": false},
		{"userName": "cy@example.com", "active": true, "externalId": "ext-3"},
	} {
		u["schemas"] = []string{"urn:ietf:params:scim:schemas:core:2.0:User"}
		ids = append(ids, str(e.do("POST", "/scim/v2/Users", u).must(t, http.StatusCreated)["id"]))
	}
	e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Engineering", "members": []any{map[string]any{"value": ids[0]}, map[string]any{"value": ids[2]}}}).must(t, http.StatusCreated)

	all, err := e.find(e.svc.Users(), scimserver.DefaultTenant, "", 0)
	if err != nil || len(all) != 3 || all[0]["id"] != ids[0] || all[0]["meta"].(map[string]any)["location"] != "/scim/v2/Users/"+ids[0] {
		t.Fatalf("all users: %v %v", err, all)
	}
	if got, _ := e.find(e.svc.Users(), scimserver.DefaultTenant, "", 2); len(got) != 2 {
		t.Fatalf("limit 2: %d", len(got))
	}
	// The same filter as GET /Users?filter=… gives the same users.
	for _, f := range []string{`userName eq "ADA@example.com"`, `active eq false`, `emails.value ew "example.com"`,
		`userName ew ".com" and not (externalId pr)`, `groups.display eq "Engineering"`, `externalId eq "ext-3"`} {
		got, err := e.find(e.svc.Users(), scimserver.DefaultTenant, f, 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		page := e.do("GET", "/scim/v2/Users?filter="+url.QueryEscape(f), nil).must(t, http.StatusOK)
		res, _ := page["Resources"].([]any)
		if len(got) != len(res) || len(got) == 0 {
			t.Errorf("%s: QueryUsers %d, GET /Users %d", f, len(got), len(res))
			continue
		}
		for i := range got {
			if got[i]["id"] != get(res, i, "id") {
				t.Errorf("%s: #%d is %v, GET /Users has %v", f, i, got[i]["id"], get(res, i, "id"))
			}
		}
	}
	if _, err := e.find(e.svc.Users(), scimserver.DefaultTenant, `userName eq`, 0); err == nil {
		t.Fatal("bad filter accepted")
	} else if de := scimserver.ErrorOf(err); de.Code != scimserver.Invalid || de.Type != "invalidFilter" {
		t.Fatalf("bad filter: %T %v", err, err)
	}
	if _, err := e.find(e.svc.Users(), scimserver.DefaultTenant, `nosuch eq "x"`, 0); err == nil {
		t.Fatal("unknown attribute accepted")
	}
	if _, err := e.find(e.svc.Users(), "nope", "", 0); scimserver.ErrorCode(err) != scimserver.NotFound {
		t.Fatalf("unknown tenant: %v", err)
	}
	gs, err := e.find(e.svc.Groups(), scimserver.DefaultTenant, `displayName eq "engineering"`, 0)
	if err != nil || len(gs) != 1 || len(gs[0]["members"].([]any)) != 2 {
		t.Fatalf("groups: %v %v", err, gs)
	}
	if gs, _ := e.find(e.svc.Groups(), scimserver.DefaultTenant, `members.value eq "`+ids[1]+`"`, 0); len(gs) != 0 {
		t.Fatalf("bob is in no group: %v", gs)
	}
}

// find is what an operator's command lists: the service's Find, rendered under /scim/v2.
func (e *testEnv) find(k *scimserver.Kind, tenant, filter string, limit int) ([]map[string]any, error) {
	return e.svc.Find(bg, tenant, k, filter, limit, "/scim/v2")
}
