package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/bolt"
)

// adminToken creates an admin-scope token of the default tenant and returns its secret.
func (e *testEnv) adminToken() string {
	e.t.Helper()
	_, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "ops", Scopes: []string{scimserver.ScopeAdmin}})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// fetch GETs url with token ("" for none) and returns the status and the body as text.
func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(raw)
}

// sample returns the value of the first sample of metric name whose labels include every one of
// labels (each written as name="value"), from a text exposition.
func sample(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labelPart := ""
		if rest[0] == '{' {
			end := strings.LastIndex(rest, "}")
			labelPart, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(","+labelPart+",", ","+l+",") {
				match = false
			}
		}
		if !match {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

var (
	uuidPattern  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	labelPattern = regexp.MustCompile(`\{[^}]*\}`)
)

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	if _, err := e.svc.CreateTenant(bg, testActor, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range []string{"m.one@example.com", "m.two@example.com", "m.three@example.com"} {
		b := e.do("POST", "/scim/v2/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": name}).must(t, http.StatusCreated)
		ids = append(ids, str(b["id"]))
	}
	e.do("GET", "/scim/v2/Users/"+ids[0], nil).must(t, http.StatusOK)
	e.do("GET", "/scim/v2/Users/"+ids[1], nil).must(t, http.StatusOK)
	e.do("GET", "/scim/v2/Users/no-such-user", nil).must(t, http.StatusNotFound)
	e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Metrics", "members": []any{map[string]any{"value": ids[2]}}}).must(t, http.StatusCreated)
	// A webhook nobody delivers (no deliverer runs here), behind by its own creation's event
	// and two creates.
	hook, _, err := e.svc.CreateWebhook(bg, testActor, scimserver.DefaultTenant, scimserver.WebhookSpec{URL: "https://hooks.example.com/scim"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"m.four@example.com", "m.five@example.com"} {
		e.do("POST", "/scim/v2/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": name}).must(t, http.StatusCreated)
	}

	// On the main address /metrics takes an admin token: none, or a SCIM one, is 401.
	e.doAs("", "GET", "/metrics", nil).must(t, http.StatusUnauthorized)
	e.doAs(e.token, "GET", "/metrics", nil).must(t, http.StatusUnauthorized)
	e.doAs(testPlatformToken, "GET", "/metrics", nil).must(t, http.StatusUnauthorized)

	// A request is counted once its answer has been written, which the client may see first:
	// wait until the last of them is.
	var status int
	var body string
	eventually(t, "the last request counted", func() bool {
		status, body = fetch(t, e.srv.URL+"/metrics", admin)
		n, _ := sample(body, "scimserver_http_requests_total", `route="/metrics"`, `method="GET"`, `status="4xx"`)
		return status != http.StatusOK || n >= 3
	})
	if status != http.StatusOK {
		t.Fatalf("/metrics with an admin token: %d %s", status, body)
	}
	want := func(name string, min float64, labels ...string) {
		t.Helper()
		v, ok := sample(body, name, labels...)
		if !ok {
			t.Errorf("no sample %s%v in:\n%s", name, labels, grepLines(body, name))
			return
		}
		if v < min {
			t.Errorf("%s%v = %v, want at least %v", name, labels, v, min)
		}
	}
	hookLabels := []string{`tenant="default"`, `webhook="` + hook.ID + `"`}
	if v, ok := sample(body, "scimserver_webhook_backlog_events", hookLabels...); v != 3 || !ok {
		t.Errorf("webhook backlog %v %v, want 3:\n%s", v, ok, grepLines(body, "scimserver_webhook"))
	}
	if v, ok := sample(body, "scimserver_webhook_delivered_total", hookLabels...); v != 0 || !ok {
		t.Errorf("webhook delivered %v %v, want 0", v, ok)
	}
	if v, ok := sample(body, "scimserver_webhook_failures", hookLabels...); v != 0 || !ok {
		t.Errorf("webhook failures %v %v, want 0", v, ok)
	}
	want("scimserver_http_requests_total", 2, `route="/scim/v2/Users/{id}"`, `method="GET"`, `status="2xx"`)
	want("scimserver_http_requests_total", 1, `route="/scim/v2/Users/{id}"`, `method="GET"`, `status="4xx"`)
	want("scimserver_http_requests_total", 3, `route="/scim/v2/Users"`, `method="POST"`, `status="2xx"`)
	want("scimserver_http_requests_total", 3, `route="/metrics"`, `method="GET"`, `status="4xx"`)
	want("scimserver_http_request_duration_seconds_count", 2, `route="/scim/v2/Users/{id}"`, `method="GET"`, `status="2xx"`)
	want("scimserver_http_request_duration_seconds_bucket", 2, `route="/scim/v2/Users/{id}"`, `method="GET"`, `status="2xx"`, `le="+Inf"`)
	want("scimserver_http_requests_in_flight", 1) // this scrape
	want("scimserver_auth_failures_total", 3, `scope="admin"`)
	want("scimserver_users", 3, `tenant="default"`)
	want("scimserver_groups", 1, `tenant="default"`)
	want("scimserver_users", 0, `tenant="acme"`)
	want("scimserver_tenants", 2, `state="enabled"`)
	want("scimserver_store_size_bytes", 1)
	// The size is the file's, as ls -l shows it; the live data is a part of it.
	size, _ := sample(body, "scimserver_store_size_bytes")
	used, _ := sample(body, "scimserver_store_used_bytes")
	if s, ok := e.store.(*bolt.Store); ok {
		if fi, err := os.Stat(s.Path()); err != nil || size != float64(fi.Size()) || used <= 0 || used >= size {
			t.Errorf("store size %v, used %v; the file has %d bytes (%v)", size, used, fi.Size(), err)
		}
	} else if used <= 0 || used > size {
		t.Errorf("store size %v, used %v", size, used)
	}
	want("scimserver_store_commit_duration_seconds_count", 4)
	want("scimserver_store_commit_duration_seconds_sum", 1e-9)
	want("scimserver_store_commit_writes_count", 4)
	want("scimserver_store_commit_writes_sum", 4)
	// Every bbolt commit here writes at least a leaf and the freelist besides its meta page;
	// PostgreSQL's commits do not count page writes.
	commits, _ := sample(body, "scimserver_store_commit_writes_count")
	pages, _ := sample(body, "scimserver_store_commit_page_writes_count")
	pagesSum, _ := sample(body, "scimserver_store_commit_page_writes_sum")
	if _, ok := e.store.(*bolt.Store); ok {
		if pages != commits || pagesSum < 2*commits {
			t.Errorf("%v commits, %v with page writes counted, %v page writes in all", commits, pages, pagesSum)
		}
	} else if pages != 0 {
		t.Errorf("%v commits counted page writes over PostgreSQL", pages)
	}
	// bbolt's commit log holds at least the pages of these commits, meta pages included, with
	// no checkpoint yet (its files are 32 MiB); PostgreSQL has no such log.
	logBytes, logged := sample(body, "scimserver_store_commit_log_bytes")
	checkpoints, _ := sample(body, "scimserver_store_checkpoints_total")
	if _, ok := e.store.(*bolt.Store); ok {
		if logBytes < (pagesSum+commits)*4096 || checkpoints != 0 {
			t.Errorf("commit log %v bytes after %v page writes, %v checkpoints:\n%s", logBytes, pagesSum+commits, checkpoints, grepLines(body, "_store_c"))
		}
	} else if logged {
		t.Errorf("a commit log over PostgreSQL: %s", grepLines(body, "commit_log"))
	}
	want("go_goroutines", 1)
	want("process_cpu_seconds_total", 0)
	if v, _ := sample(body, "scimserver_users", `tenant="acme"`); v != 0 {
		t.Errorf("acme has %v users", v)
	}

	// No id in any label: request series are labelled by route pattern, never by path.
	for _, id := range ids {
		if strings.Contains(body, id) {
			t.Errorf("a user id appears in /metrics: %s", grepLines(body, id))
		}
	}
	for _, labels := range labelPattern.FindAllString(body, -1) {
		if uuidPattern.MatchString(labels) || strings.Contains(labels, "no-such-user") {
			t.Errorf("an id in labels %s", labels)
		}
		if strings.Contains(labels, "tenant=") && !strings.Contains(labels, "default") && !strings.Contains(labels, "acme") {
			t.Errorf("unexpected tenant label %s", labels)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "scimserver_http_") && strings.Contains(line, "tenant=") {
			t.Errorf("a request series carries a tenant: %s", line)
		}
	}
	// A method no route knows stays one bounded label value.
	e.do("BREW", "/scim/v2/Users", nil)
	_, body = fetch(t, e.srv.URL+"/metrics", admin)
	if _, ok := sample(body, "scimserver_http_requests_total", `method="OTHER"`); !ok || strings.Contains(body, `method="BREW"`) {
		t.Errorf("unknown method not folded into OTHER:\n%s", grepLines(body, "requests_total"))
	}

	// The handler serve mounts on --metrics-addr answers without a token.
	open := httptest.NewServer(e.server.MetricsHandler())
	defer open.Close()
	status, body = fetch(t, open.URL+"/metrics", "")
	if status != http.StatusOK || !strings.Contains(body, "scimserver_users{") {
		t.Fatalf("metrics handler: %d %.300s", status, body)
	}
}

// TestMetricsPerServer builds several servers in one process: each has its own registry.
func TestMetricsPerServer(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	a.do("POST", "/scim/v2/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "only.in.a@example.com"}).must(t, http.StatusCreated)
	_, bodyA := fetch(t, a.srv.URL+"/metrics", a.adminToken())
	_, bodyB := fetch(t, b.srv.URL+"/metrics", b.adminToken())
	if v, _ := sample(bodyA, "scimserver_users", `tenant="default"`); v != 1 {
		t.Errorf("server a: %v users", v)
	}
	if v, ok := sample(bodyB, "scimserver_users", `tenant="default"`); !ok || v != 0 {
		t.Errorf("server b: %v users (%v)", v, ok)
	}
	if _, ok := sample(bodyB, "scimserver_http_requests_total", `route="/scim/v2/Users"`, `method="POST"`); ok {
		t.Error("server b counts server a's requests")
	}
}

func TestRequestIDEchoedOrReplaced(t *testing.T) {
	e := newEnv(t)
	generated := regexp.MustCompile(`^[0-9a-f]{24}$`)
	safe := "req-2024_01.abc:XYZ"
	if got := e.do("GET", "/scim/v2/Users", nil, "X-Request-Id", safe).header.Get("X-Request-Id"); got != safe {
		t.Errorf("a safe request id came back as %q", got)
	}
	for _, bad := range []string{strings.Repeat("a", 300), "has spaces in it", "semi;colon", "quote\"d", "ünïcode"} {
		got := e.do("GET", "/scim/v2/Users", nil, "X-Request-Id", bad).header.Get("X-Request-Id")
		if got == bad || !generated.MatchString(got) {
			t.Errorf("unsafe request id %.20q came back as %q", bad, got)
		}
	}
	first := e.do("GET", "/scim/v2/Users", nil).header.Get("X-Request-Id")
	second := e.do("GET", "/scim/v2/Users", nil).header.Get("X-Request-Id")
	if !generated.MatchString(first) || first == second {
		t.Errorf("generated ids %q, %q", first, second)
	}
	// An error answer carries the id too, and the log line names it.
	r := e.do("GET", "/scim/v2/Users/nobody", nil, "X-Request-Id", "trace-404")
	if r.status != http.StatusNotFound || r.header.Get("X-Request-Id") != "trace-404" {
		t.Errorf("404: %d %q", r.status, r.header.Get("X-Request-Id"))
	}
	if !strings.Contains(e.logText(), `"requestId":"trace-404"`) {
		t.Error("the request id is not in the log")
	}
}

// grepLines returns the lines of body containing s, for failure messages.
func grepLines(body, s string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
