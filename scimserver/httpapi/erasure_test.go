package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

// holdRead opens a read transaction on tenant and keeps it open until the returned function
// is called: what a slow listing of any tenant does to an erasure's scrub.
func holdRead(t *testing.T, store storage.Store, tenant string) (release func()) {
	t.Helper()
	reading, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = store.Read(bg, tenant, func(storage.Tx) error {
			close(reading)
			<-done
			return nil
		})
	}()
	<-reading
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// metric reads one sample from /metrics.
func (e *testEnv) metric(admin, name string, labels ...string) float64 {
	e.t.Helper()
	status, body := fetch(e.t, e.srv.URL+"/metrics", admin)
	if status != http.StatusOK {
		e.t.Fatalf("/metrics: %d", status)
	}
	v, ok := sample(body, name, labels...)
	if !ok {
		e.t.Fatalf("no %s %v in /metrics", name, labels)
	}
	return v
}

// eventually polls cond every 10 ms for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}

// TestErasureDoesNotWaitForOldReads: an anonymization that committed answers 200 even while a
// read that began before it keeps the freed pages from being overwritten. The user and the
// audit record say the overwrite is pending; it completes by itself, with no retry, as soon as
// the read ends, and then no erased value is left in the file.
func TestErasureDoesNotWaitForOldReads(t *testing.T) {
	boltOnly(t, "the overwrite of the data file's free pages")
	dir := t.TempDir()
	e := newEnvService(t, filepath.Join(dir, "data.db"), scimserver.Options{ErasureWait: 100 * time.Millisecond}, Options{})
	admin := e.adminToken()
	id, vals := personalUser(e, "61")
	release := holdRead(t, e.store, scimserver.DefaultTenant)
	defer release()

	r := e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil).must(t, 200)
	if get(r, lifecycleURN, "anonymizedAt") == nil || get(r, lifecycleURN, "scrubbedAt") != nil || str(r["userName"]) == vals[0] {
		t.Fatalf("while an older read runs: %v", r[lifecycleURN])
	}
	if p := e.api("POST", "/api/v1/users/"+id+"/anonymize", nil).must(t, 200); p["changed"] != false || p["scrubbed"] != false {
		t.Fatalf("platform repeat while pending: %v", p)
	}
	a := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	if a["anonymizedAt"] == nil || a["scrubbedAt"] != nil || get(a, "trail", 0, "operation") != "anonymize" {
		t.Fatalf("audit while pending: %v", a)
	}
	if n := e.metric(admin, "scimserver_scrub_pending"); n != 1 {
		t.Fatalf("scimserver_scrub_pending %v, want 1", n)
	}
	if age := e.metric(admin, "scimserver_scrub_pending_age_seconds"); age <= 0 {
		t.Fatalf("scimserver_scrub_pending_age_seconds %v", age)
	}

	release()
	var u map[string]any
	eventually(t, "scrubbedAt after the old read ended", func() bool {
		u = e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		return get(u, lifecycleURN, "scrubbedAt") != nil
	})
	at, _ := time.Parse(time.RFC3339Nano, str(get(u, lifecycleURN, "anonymizedAt")))
	if sc, err := time.Parse(time.RFC3339Nano, str(get(u, lifecycleURN, "scrubbedAt"))); err != nil || sc.Before(at) {
		t.Fatalf("scrubbedAt %v before anonymizedAt %v", sc, at)
	}
	a = e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	if a["scrubbedAt"] == nil || get(a, "trail", 0, "operation") != "scrub" || get(a, "trail", 1, "operation") != "anonymize" {
		t.Fatalf("audit after the scrub: %v", a)
	}
	if n := e.metric(admin, "scimserver_scrub_pending"); n != 0 {
		t.Fatalf("scimserver_scrub_pending %v after the scrub", n)
	}
	if age := e.metric(admin, "scimserver_scrub_pending_age_seconds"); age != 0 {
		t.Fatalf("scimserver_scrub_pending_age_seconds %v after the scrub", age)
	}
	residue(t, dir, e.logText(), vals)
}

// TestErasureUnderSlowListings reproduces one tenant's expensive listings racing another
// tenant's erasure: many concurrent listings of a larger tenant sorted by an attribute no index
// serves, and meanwhile an anonymization in the default tenant. The listings are bounded (200,
// 400 tooMany or 429, never 5xx); the anonymization answers 200; the overwrite of the free pages
// completes by itself, and no erased value stays in the file.
func TestErasureUnderSlowListings(t *testing.T) {
	boltOnly(t, "the overwrite of the data file's free pages")
	dir := t.TempDir()
	e := newEnvService(t, filepath.Join(dir, "data.db"), scimserver.Options{ScanTimeout: 20 * time.Millisecond, MaxScans: 2, ErasureWait: 200 * time.Millisecond}, Options{})
	if _, err := e.svc.CreateTenant(bg, testActor, "big", "Big"); err != nil {
		t.Fatal(err)
	}
	_, bigToken, err := e.svc.CreateToken(bg, testActor, tokenSpec("big"))
	if err != nil {
		t.Fatal(err)
	}
	err = e.store.Write(bg, "big", func(tx storage.Tx) error {
		for i := 0; i < 3000; i++ {
			name := fmt.Sprintf("big-%05d@example.com", i)
			doc := map[string]any{"userName": name, "name": map[string]any{"givenName": fmt.Sprintf("G%05d", (i*7919)%3000)}}
			if _, err := putRecord(tx, users, doc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	id, vals := personalUser(e, "71")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.srv.URL+"/scim/v2/Users?sortBy=name.givenName&count=1", nil)
				req.Header.Set("Authorization", "Bearer "+bigToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	r := e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil)
	close(stop)
	wg.Wait()
	if r.status != http.StatusOK || get(r.body, lifecycleURN, "anonymizedAt") == nil {
		t.Fatalf("anonymization during the listings: %d %s", r.status, r.raw)
	}
	for status, n := range statuses {
		if status != 200 && status != 400 && status != 429 {
			t.Errorf("%d listings answered %d", n, status)
		}
	}
	t.Logf("listings: %v", statuses)
	eventually(t, "scrubbedAt", func() bool {
		return get(e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200), lifecycleURN, "scrubbedAt") != nil
	})
	residue(t, dir, e.logText(), vals)
}

// TestScanBudget: a listing that no index serves stops at the scan timeout with 400 tooMany;
// lookups, plain pages and pages sorted by the name index are not bounded by it.
func TestScanBudget(t *testing.T) {
	e := newEnvService(t, filepath.Join(t.TempDir(), "data.db"), scimserver.Options{ScanTimeout: time.Nanosecond}, Options{})
	admin := e.adminToken()
	var id string
	for i := 0; i < 130; i++ {
		id = e.createUser(fmt.Sprintf("budget-%03d@example.com", i), map[string]any{"name": map[string]any{"givenName": fmt.Sprintf("B%03d", 130-i)}})
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/scim/v2/Users?sortBy=name.givenName", 400},
		{filterURL("Users", `name.givenName sw "B"`), 400},
		{"/scim/v2/?filter=" + strings.ReplaceAll(`displayName pr`, " ", "%20"), 400},
		{"/scim/v2/Users/" + id, 200},
		{filterURL("Users", `userName eq "budget-007@example.com"`), 200},
		{filterURL("Users", `userName eq "budget-007@example.com" or emails eq "x@example.com"`), 200},
		{"/scim/v2/Users?count=10&startIndex=50", 200},
		{"/scim/v2/Users?sortBy=userName&sortOrder=descending&count=10", 200},
	} {
		r := e.do("GET", c.path, nil)
		if r.status != c.status || c.status == 400 && r.body["scimType"] != "tooMany" {
			t.Errorf("%s: %d %s, want %d", c.path, r.status, r.raw, c.status)
		}
	}
	if n := e.metric(admin, "scimserver_query_scans_stopped_total", `reason="budget"`); n != 3 {
		t.Errorf("scans stopped for the budget: %v, want 3", n)
	}
	if n := e.metric(admin, "scimserver_query_scans_running"); n != 0 {
		t.Errorf("scans running after all answered: %v", n)
	}
	// With the default budget the same listing is answered.
	e2 := newEnv(t)
	e2.createUser("one@example.com", map[string]any{"name": map[string]any{"givenName": "One"}})
	e2.do("GET", "/scim/v2/Users?sortBy=name.givenName", nil).must(t, 200)
}

// TestBusyAnswer: a request the service has no room for (every scan slot taken: see the
// service's TestScanSlots) is a 429 with Retry-After.
func TestBusyAnswer(t *testing.T) {
	req := httptest.NewRequest("GET", "/scim/v2/Users?sortBy=name.givenName", nil)
	rec := httptest.NewRecorder()
	writeError(rec, req, &scimserver.Error{Code: scimserver.Busy, Message: "no room"})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("busy: %d %v", rec.Code, rec.Header())
	}
}

// TestAbandonedScanStops: a listing whose client has gone stops reading (the request's context
// is checked as it scans), frees its slot, and is logged and counted as not delivered.
func TestAbandonedScanStops(t *testing.T) {
	e := newEnvService(t, filepath.Join(t.TempDir(), "data.db"), scimserver.Options{ScanTimeout: time.Hour, MaxScans: 1}, Options{})
	admin := e.adminToken()
	for i := 0; i < 130; i++ {
		e.createUser(fmt.Sprintf("gone-%03d@example.com", i), map[string]any{"name": map[string]any{"givenName": "Gone"}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone before the server reads
	req := httptest.NewRequest("GET", "/scim/v2/Users?sortBy=name.givenName", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	e.server.ServeHTTP(rec, req)
	if rec.Code != statusClientGone {
		t.Fatalf("abandoned listing: %d %s", rec.Code, rec.Body)
	}
	if n := e.metric(admin, "scimserver_query_scans_stopped_total", `reason="gone"`); n != 1 {
		t.Errorf("scans stopped for a gone client: %v, want 1", n)
	}
	if n := e.metric(admin, "scimserver_query_scans_running"); n != 0 {
		t.Errorf("scans running: %v", n)
	}
	e.do("GET", "/scim/v2/Users?sortBy=name.givenName", nil).must(t, 200) // the slot is free again
	logLine(t, e.logText(), `"route":"/scim/v2/Users"`, `"status":499`, `"error":"the client went away before the answer was ready"`)
}

// TestUndeliveredAnswerIsNotLoggedAsSent: an answer cut by the server's write timeout is logged
// and counted as not delivered (499, with the status it would have had), never as a 200.
func TestUndeliveredAnswerIsNotLoggedAsSent(t *testing.T) {
	boltOnly(t, "the answer is held by the wait for the overwrite of the data file's free pages")
	dir := t.TempDir()
	e := newEnvService(t, filepath.Join(dir, "data.db"), scimserver.Options{ErasureWait: 2 * time.Second}, Options{},
		func(hs *http.Server) { hs.WriteTimeout = 500 * time.Millisecond })
	admin := e.adminToken()
	id := e.createUser("undelivered@example.com", nil)
	release := holdRead(t, e.store, scimserver.DefaultTenant) // the answer waits ErasureWait for the scrub
	req, _ := http.NewRequest("POST", e.srv.URL+"/scim/v2/Users/"+id+"/.anonymize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the client got %d past the write timeout", res.StatusCode)
	}
	release()
	line := logLine(t, e.logText(), `"route":"/scim/v2/Users/{id}/.anonymize"`)
	for _, want := range []string{`"status":499`, `"intendedStatus":200`, `"delivery":"the write timeout passed before the answer was sent"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}
	if n, ok := sample(metricsText(t, e, admin), "scimserver_http_requests_total", `route="/scim/v2/Users/{id}/.anonymize"`, `status="2xx"`); ok && n > 0 {
		t.Errorf("the undelivered answer was counted as 2xx")
	}
	if n := e.metric(admin, "scimserver_http_requests_total", `route="/scim/v2/Users/{id}/.anonymize"`, `status="4xx"`); n != 1 {
		t.Errorf("undelivered answers counted: %v, want 1", n)
	}
}

// TestDeliveredAnswerIsNotLoggedAsGone: a client that reads the whole answer and closes its
// connection at once (curl, a client without keep-alive) got the answer: it is logged and
// counted with its status, never as 499, however soon the close follows the answer.
func TestDeliveredAnswerIsNotLoggedAsGone(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	id := e.createUser("delivered@example.com", nil)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	const n = 300
	for range n {
		req, _ := http.NewRequest("GET", e.srv.URL+"/scim/v2/Users/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		e.sent.Add(1)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || !bytes.Contains(body, []byte(id)) {
			t.Fatalf("GET: %d %v %s", res.StatusCode, err, body)
		}
	}
	if gone := strings.Count(e.logText(), `"status":499`); gone != 0 {
		t.Errorf("%d of %d answers the client read whole were logged as 499", gone, n)
	}
	if got := e.metric(admin, "scimserver_http_requests_total", `route="/scim/v2/Users/{id}"`, `method="GET"`, `status="2xx"`); got != n {
		t.Errorf("GETs counted as 2xx: %v, want %d", got, n)
	}
}

func metricsText(t *testing.T, e *testEnv, admin string) string {
	t.Helper()
	_, body := fetch(t, e.srv.URL+"/metrics", admin)
	return body
}

// logLine returns the first log line that holds every one of parts.
func logLine(t *testing.T, logs string, parts ...string) string {
	t.Helper()
next:
	for _, line := range strings.Split(logs, "\n") {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		return line
	}
	t.Fatalf("no log line with %q in:\n%s", parts, logs)
	return ""
}
