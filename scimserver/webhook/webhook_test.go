package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/scimserver/httpapi"
	"github.com/scimserver/scimserver/storage/bolt"
)

const (
	scimToken     = "webhook-test-scim-token-0123456789abcdef"
	platformToken = "webhook-test-platform-token-0123456789abcdef"
)

// env is the real server over a bbolt file, with an admin token, and what a test needs to
// start deliverers on the same data.
type env struct {
	t     *testing.T
	store *bolt.Store
	svc   *scimserver.Service
	url   string
	admin string
}

func newEnv(t *testing.T, allowPrivate bool) *env {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := scimserver.New(store, scimserver.Options{WebhookPrivateTargets: allowPrivate})
	if err := svc.Bootstrap(context.Background(), scimserver.EnvTokens{SCIM: scimToken, Platform: platformToken}, nil); err != nil {
		t.Fatal(err)
	}
	_, admin, err := svc.CreateToken(context.Background(), scimserver.Actor{ID: "test", Name: "test"},
		scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "ops", Scopes: []string{scimserver.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(svc, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return &env{t: t, store: store, svc: svc, url: ts.URL, admin: admin}
}

func (e *env) do(token, method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

func (e *env) createUser(name string) string {
	e.t.Helper()
	code, m := e.do(scimToken, "POST", "/scim/v2/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": name})
	if code != 201 {
		e.t.Fatalf("create: %d %v", code, m)
	}
	return m["id"].(string)
}

// deliverer runs a deliverer over svc until the test ends (or stop is called).
func (e *env) deliverer(svc *scimserver.Service, holder string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d := New(svc, Options{Holder: holder, MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Timeout: 5 * time.Second, Rescan: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	stop = func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return sync.OnceFunc(stop)
}

// receiver records deliveries after refusing the first failFirst of them with 503, checking
// each signature with the secret as Standard Webhooks receivers do.
type receiver struct {
	t         *testing.T
	key       []byte
	mu        sync.Mutex
	failFirst int
	requests  int
	bodies    map[string][]byte // by webhook-id
	order     []string          // webhook-ids in the order first taken
	bad       []string
}

func newReceiver(t *testing.T, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, failFirst: failFirst, bodies: map[string][]byte{}}
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return r, ts
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	sec, err := strconv.ParseInt(ts, 10, 64)
	switch {
	case req.Method != "POST" || req.Header.Get("Content-Type") != "application/json":
		r.bad = append(r.bad, "method or content type: "+req.Method+" "+req.Header.Get("Content-Type"))
	case id == "" || !hmac.Equal([]byte(sig), []byte(want)):
		r.bad = append(r.bad, fmt.Sprintf("signature of %s: %q, want %q", id, sig, want))
	case err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute:
		r.bad = append(r.bad, "timestamp "+ts)
	case r.bodies[id] != nil && !bytes.Equal(r.bodies[id], body):
		r.bad = append(r.bad, "a retry of "+id+" with another body")
	}
	if r.requests <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.bodies[id] == nil {
		r.bodies[id] = body
		r.order = append(r.order, id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// taken returns the changes delivered, in the order first taken.
func (r *receiver) taken() []scimserver.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []scimserver.Change
	for _, id := range r.order {
		var c scimserver.Change
		if err := json.Unmarshal(r.bodies[id], &c); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func (e *env) createWebhook(url string, body map[string]any) (int, map[string]any) {
	e.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	body["url"] = url
	return e.do(e.admin, "POST", "/api/v1/admin/tenants/default/webhooks", body)
}

// feedFrom reads the whole feed after a cursor.
func (e *env) feedFrom(after string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for {
		code, m := e.do(platformToken, "GET", "/api/v1/changes?limit=1000&after="+after, nil)
		if code != 200 {
			e.t.Fatalf("feed: %d %v", code, m)
		}
		cs := m["changes"].([]any)
		if len(cs) == 0 {
			return out
		}
		for _, c := range cs {
			out = append(out, c.(map[string]any))
		}
		after = m["nextCursor"].(string)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
	}
}

// TestWebhookDeliversEverythingInOrder: a receiver that fails the first deliveries still gets
// every change of the feed, once each by webhook-id, in the feed's order, each correctly signed;
// a deliverer stopped midway and another started later go on from the stored position; the
// admin API shows the delivery state.
func TestWebhookDeliversEverythingInOrder(t *testing.T) {
	e := newEnv(t, true)
	rcv, ts := newReceiver(t, 5)
	code, hook := e.createWebhook(ts.URL+"/hook?tenant=default", nil)
	if code != 201 || !strings.HasPrefix(fmt.Sprint(hook["secret"]), "whsec_") || hook["state"] != "current" {
		t.Fatalf("create: %d %v", code, hook)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(hook["secret"].(string), "whsec_"))
	rcv.key = key
	start := hook["position"].(string)
	id := hook["id"].(string)

	for i := range 10 {
		e.createUser(fmt.Sprintf("hook%d@example.com", i))
	}
	stop := e.deliverer(e.svc, "first")
	waitFor(t, "some deliveries", func() bool { return len(rcv.taken()) >= 3 })
	stop()
	for i := range 10 {
		uid := e.createUser(fmt.Sprintf("later%d@example.com", i))
		if i%2 == 0 {
			e.do(scimToken, "DELETE", "/scim/v2/Users/"+uid, nil)
		}
	}
	e.deliverer(e.svc, "second") // the first released its lease when it stopped
	want := e.feedFrom(start)
	waitFor(t, "every change delivered", func() bool { return len(rcv.taken()) >= len(want) })

	got := rcv.taken()
	if len(got) != len(want) {
		t.Fatalf("%d changes delivered, the feed has %d", len(got), len(want))
	}
	for i, c := range got {
		if c.Cursor != want[i]["cursor"] || c.Operation != want[i]["operation"] || c.ResourceID != want[i]["resourceId"] {
			t.Fatalf("delivery %d: %+v, the feed has %v", i, c, want[i])
		}
	}
	rcv.mu.Lock()
	bad, requests := rcv.bad, rcv.requests
	rcv.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad deliveries: %v", bad)
	}
	if requests < len(want)+5 {
		t.Fatalf("%d requests for %d changes and 5 refusals", requests, len(want))
	}
	waitFor(t, "the state to show everything delivered", func() bool {
		_, st := e.do(e.admin, "GET", "/api/v1/admin/tenants/default/webhooks/"+id, nil)
		return st["state"] == "current" && st["delivered"].(float64) >= float64(len(want)) && st["lastSuccessAt"] != nil
	})
	_, list := e.do(e.admin, "GET", "/api/v1/admin/tenants/default/webhooks", nil)
	if hooks := list["webhooks"].([]any); len(hooks) != 1 || hooks[0].(map[string]any)["secret"] != nil {
		t.Fatalf("list: %v", list)
	}
	// Deleted, it delivers no more.
	if code, _ := e.do(e.admin, "DELETE", "/api/v1/admin/tenants/default/webhooks/"+id, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	n := len(rcv.taken())
	e.createUser("after-delete@example.com")
	time.Sleep(300 * time.Millisecond)
	if len(rcv.taken()) != n {
		t.Fatal("a deleted webhook still delivers")
	}
}

// TestWebhookFailureState: while a receiver refuses, the admin API shows the failures and the
// reason, and the position stays put.
func TestWebhookFailureState(t *testing.T) {
	e := newEnv(t, true)
	_, ts := newReceiver(t, 1<<30)
	_, hook := e.createWebhook(ts.URL, map[string]any{"after": "0"})
	id := hook["id"].(string)
	if hook["position"] != "0" {
		t.Fatalf("a webhook from the beginning starts at %v", hook["position"])
	}
	e.createUser("refused@example.com")
	e.deliverer(e.svc, "one")
	waitFor(t, "failures in the state", func() bool {
		_, st := e.do(e.admin, "GET", "/api/v1/admin/tenants/default/webhooks/"+id, nil)
		return st["state"] == "failing" && st["failures"].(float64) >= 3 && strings.Contains(fmt.Sprint(st["lastError"]), "503") &&
			st["position"] == "0" && st["nextAttemptAt"] != nil
	})
}

// TestWebhookTargets: without --webhook-allow-private, private targets are refused when the
// webhook is created, and an address reached through a host name is refused when dialled;
// redirects are never followed; a bad secret or cursor is a 400.
func TestWebhookTargets(t *testing.T) {
	e := newEnv(t, false)
	for _, u := range []string{"http://127.0.0.1/x", "http://localhost:8080/x", "http://10.1.2.3/x", "http://[::1]/x",
		"http://169.254.169.254/latest/meta-data", "http://100.100.100.200/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
		"ftp://example.com/", "https://user:pw@example.com/", "/relative", "https://example.com/#frag"} {
		if code, m := e.createWebhook(u, nil); code != 400 || strings.Contains(fmt.Sprint(m["detail"]), u) {
			t.Errorf("%s: %d %v", u, code, m)
		}
	}
	for _, body := range []map[string]any{{"secret": "plain"}, {"secret": "whsec_c2hvcnQ="}, {"after": "x"}, {"after": "999999"}} {
		if code, m := e.createWebhook("https://hooks.example.com/scim", body); code != 400 {
			t.Errorf("%v: %d %v", body, code, m)
		}
	}
	if code, m := e.createWebhook("https://hooks.example.com/scim", map[string]any{"secret": "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))}); code != 201 || m["secret"] != nil {
		t.Fatalf("an operator's secret: %d %v", code, m)
	}
	if code, _ := e.do(e.admin, "GET", "/api/v1/admin/tenants/nope/webhooks", nil); code != 404 {
		t.Fatalf("an unknown tenant: %d", code)
	}

	// A webhook to a loopback receiver, created where private targets are allowed, is still not
	// delivered by a server that does not allow them: the dial is refused.
	rcv, ts := newReceiver(t, 0)
	permissive := scimserver.New(e.store, scimserver.Options{WebhookPrivateTargets: true})
	h, _, err := permissive.CreateWebhook(context.Background(), scimserver.Actor{}, scimserver.DefaultTenant,
		scimserver.WebhookSpec{URL: strings.Replace(ts.URL, "127.0.0.1", "localhost", 1), After: new(uint64)})
	if err != nil {
		t.Fatal(err)
	}
	e.createUser("to-deliver@example.com")
	stopStrict := e.deliverer(e.svc, "strict")
	waitFor(t, "a refused dial", func() bool {
		got, err := e.svc.Webhook(context.Background(), scimserver.DefaultTenant, h.ID)
		return err == nil && got.Failures > 0 && strings.Contains(got.LastError, "private")
	})
	if len(rcv.taken()) != 0 {
		t.Fatal("delivered to a loopback address")
	}
	stopStrict()

	// A redirect is a failed delivery, and its target gets nothing.
	target, tts := newReceiver(t, 0)
	redirect := httptest.NewServer(http.RedirectHandler(tts.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	hr, _, err := permissive.CreateWebhook(context.Background(), scimserver.Actor{}, scimserver.DefaultTenant,
		scimserver.WebhookSpec{URL: redirect.URL, After: new(uint64)})
	if err != nil {
		t.Fatal(err)
	}
	e.deliverer(permissive, "permissive")
	waitFor(t, "a failed redirect", func() bool {
		got, err := e.svc.Webhook(context.Background(), scimserver.DefaultTenant, hr.ID)
		return err == nil && got.Failures > 0 && strings.Contains(got.LastError, "307")
	})
	if len(target.taken()) != 0 {
		t.Fatal("a redirect was followed")
	}
}

// TestWebhookLease: of two deliverers on the same data, one delivers a webhook while its lease
// lasts; the other takes over when it is released.
func TestWebhookLease(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	h, _, err := e.svc.CreateWebhook(ctx, scimserver.Actor{}, scimserver.DefaultTenant, scimserver.WebhookSpec{URL: "http://127.0.0.1:9/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "a", time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "b", time.Hour, nil); scimserver.ErrorCode(err) != scimserver.Conflict {
		t.Fatalf("a second holder: %v", err)
	}
	rep := &scimserver.DeliveryReport{Position: 5, Delivered: 5}
	if got, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "a", 0, rep); err != nil || got.Position < 5 {
		t.Fatalf("release: %+v %v", got, err)
	}
	got, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "b", time.Hour, &scimserver.DeliveryReport{Position: 2})
	if err != nil || got.Holder != "b" || got.Position < 5 || got.Delivered != 5 {
		t.Fatalf("after the release: %+v %v (the position never moves back)", got, err)
	}
	// A holder that stops without releasing (a server killed) loses the lease when it runs out,
	// and another takes it over with the progress reported so far.
	if _, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "b", 50*time.Millisecond, &scimserver.DeliveryReport{Position: 7, Delivered: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "c", time.Hour, nil); scimserver.ErrorCode(err) != scimserver.Conflict {
		t.Fatalf("a lease taken while held: %v", err)
	}
	waitFor(t, "the lease to run out", func() bool {
		got, _, err = e.svc.LeaseWebhook(ctx, scimserver.DefaultTenant, h.ID, "c", time.Hour, nil)
		return err == nil
	})
	if got.Holder != "c" || got.Position != 7 || got.Delivered != 7 {
		t.Fatalf("taken over: %+v, want holder c at position 7 with 7 delivered", got)
	}
}

// TestWebhookDeliversTheRestoreMark: after a restore from a backup took changes back, a
// webhook whose position the backup held delivers the mark as a change "restored" naming the
// cursors taken back, in its place among the changes, so that a receiver that may have been
// sent them learns to resync.
func TestWebhookDeliversTheRestoreMark(t *testing.T) {
	e := newEnv(t, true)
	rcv, ts := newReceiver(t, 0)
	code, hook := e.createWebhook(ts.URL+"/hook", nil)
	if code != 201 {
		t.Fatalf("create: %d %v", code, hook)
	}
	rcv.key, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(hook["secret"].(string), "whsec_"))
	before := e.createUser("before@example.com")
	head, err := e.svc.Head(context.Background(), scimserver.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	// As `scimserver restore` does when the file it replaces had gone 3 changes further.
	if _, err := e.svc.MarkRestored(context.Background(), map[string]uint64{scimserver.DefaultTenant: head + 3}); err != nil {
		t.Fatal(err)
	}
	after := e.createUser("after@example.com")
	e.deliverer(e.svc, "only")
	waitFor(t, "three deliveries", func() bool { return len(rcv.taken()) >= 3 })
	got := rcv.taken()
	want := scimserver.CursorRange{After: scimserver.FormatCursor(head), Through: scimserver.FormatCursor(head + 3)}
	if len(got) != 3 || got[0].ResourceID != before || got[1].Operation != "restored" || got[1].TakenBack == nil ||
		*got[1].TakenBack != want || got[2].ResourceID != after {
		t.Fatalf("delivered %+v, want the create before, the mark taking back %+v, the create after", got, want)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("bad deliveries: %v", rcv.bad)
	}
}
