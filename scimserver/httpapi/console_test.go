package httpapi

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// noRedirects is a client that shows redirects instead of following them (it shares the
// default transport, whose idle connections TestMain closes).
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// page is an answer read whole, whatever its body.
type page struct {
	status int
	header http.Header
	body   string
}

// send makes a request with headers given as name, value pairs ("Cookie" included).
func (e *testEnv) send(method, path, body string, headers ...string) page {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// consoleSession is a signed-in console: its cookie and CSRF token.
type consoleSession struct {
	cookie string // "name=value"
	id     string
	csrf   string
}

// signIn signs in to the console with secret, as the sign-in page does.
func (e *testEnv) signIn(secret string) consoleSession {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": secret})
	p := e.send("POST", "/console/session", string(body), "Content-Type", "application/json", "Origin", e.srv.URL)
	if p.status != http.StatusOK {
		e.t.Fatalf("sign-in: %d %s", p.status, p.body)
	}
	var view sessionView
	if err := json.Unmarshal([]byte(p.body), &view); err != nil {
		e.t.Fatal(err)
	}
	c := sessionCookieOf(e.t, p.header)
	return consoleSession{cookie: c.Name + "=" + c.Value, id: c.Value, csrf: view.CSRF}
}

func sessionCookieOf(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", h["Set-Cookie"])
	return nil
}

// as sends a request of the console session: with its cookie, its CSRF token and the
// console's origin, as the console's script does.
func (e *testEnv) as(s consoleSession, method, path string, body any) resp {
	e.t.Helper()
	var raw string
	if body != nil {
		b, _ := json.Marshal(body)
		raw = string(b)
	}
	p := e.send(method, path, raw, "Cookie", s.cookie, csrfHeader, s.csrf, "Origin", e.srv.URL, "Content-Type", "application/json")
	out := resp{status: p.status, header: p.header, raw: []byte(p.body)}
	if p.body != "" {
		if err := json.Unmarshal(out.raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: not a JSON object: %q", method, path, p.body)
		}
	}
	if p.status >= 400 {
		checkErrorBody(e.t, method+" "+path, out)
	}
	return out
}

// consoleRoute is a route of the console or the admin API.
type consoleRoute struct{ method, pattern string }

// consoleRoutesOf lists every route under /console and /api/v1/admin, from the router itself,
// so that a route added later is covered by the tests that walk them.
func consoleRoutesOf(t *testing.T, s *Server) []consoleRoute {
	t.Helper()
	var out []consoleRoute
	err := chi.Walk(s.router.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/console") || strings.HasPrefix(route, "/api/v1/admin") {
			out = append(out, consoleRoute{method, route})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d console and admin routes: %v", len(out), out)
	}
	return out
}

// fill puts sample values into a route pattern.
func fill(pattern string) string {
	return strings.NewReplacer("{tenant}", "default", "{id}", "default", "{user}", "u1", "{userId}", "u1",
		"{tokenId}", "t1", "*", "app.js").Replace(pattern)
}

// public are the console routes anyone may reach: the sign-in page and its assets (which hold
// no data), and signing in itself.
var public = map[consoleRoute]bool{
	{"GET", "/console/signin"}:   true,
	{"GET", "/console/assets/*"}: true,
	{"POST", "/console/session"}: true,
}

func isPage(r consoleRoute) bool {
	for _, p := range consolePages {
		if r.method == "GET" && r.pattern == "/console"+p {
			return true
		}
	}
	return false
}

func TestConsoleNeedsASessionForEveryPageAndAction(t *testing.T) {
	e := newEnv(t)
	e.server.limiter.burst = 1e6 // this test fails on purpose, many times over
	routes := consoleRoutesOf(t, e.server)
	pages := 0
	for _, r := range routes {
		if public[r] || r.pattern == "/console" {
			continue
		}
		path := fill(r.pattern)
		for _, cookie := range []string{"", sessionCookie + "=forged-session-id-0123456789"} {
			p := e.send(r.method, path, `{}`, "Cookie", cookie, "Content-Type", "application/json")
			if isPage(r) {
				if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/signin" || strings.Contains(p.body, "app.js") {
					t.Errorf("%s %s without a session: %d %q", r.method, path, p.status, p.header.Get("Location"))
				}
				pages++
				continue
			}
			if p.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a session: %d %s", r.method, path, p.status, p.body)
			}
		}
	}
	if pages != 2*len(consolePages) {
		t.Errorf("%d page checks, want %d", pages, 2*len(consolePages))
	}
	// A forged cookie is cleared.
	p := e.send("GET", "/console/", "", "Cookie", sessionCookie+"=forged")
	if c := sessionCookieOf(t, p.header); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("forged cookie not cleared: %+v", c)
	}
	// What is public holds no data; with a session the pages are served.
	for _, path := range []string{"/console/signin", "/console/assets/app.js", "/console/assets/console.css"} {
		if p := e.send("GET", path, ""); p.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, p.status)
		}
	}
	if p := e.send("GET", "/console/assets/nothing.js", ""); p.status != http.StatusNotFound || !strings.Contains(p.body, "urn:ietf:params:scim:api:messages:2.0:Error") {
		t.Errorf("missing asset: %d %s", p.status, p.body)
	}
	s := e.signIn(e.adminToken())
	if p := e.send("GET", "/console", "", "Cookie", s.cookie); p.status != http.StatusMovedPermanently || p.header.Get("Location") != "/console/" {
		t.Errorf("/console: %d %q", p.status, p.header.Get("Location"))
	}
	for _, pg := range consolePages {
		path := fill("/console" + pg)
		p := e.send("GET", path, "", "Cookie", s.cookie)
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, `src="/console/assets/app.js"`) {
			t.Errorf("GET %s signed in: %d %s", path, p.status, p.header.Get("Content-Type"))
		}
	}
}

func TestConsoleSignIn(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	origin := e.srv.URL
	signIn := func(secret string, headers ...string) page {
		body, _ := json.Marshal(map[string]string{"token": secret})
		return e.send("POST", "/console/session", string(body), headers...)
	}
	for _, c := range []struct {
		name    string
		secret  string
		headers []string
		status  int
	}{
		{"a SCIM token", e.token, []string{"Content-Type", "application/json", "Origin", origin}, http.StatusUnauthorized},
		{"a platform token", testPlatformToken, []string{"Content-Type", "application/json", "Origin", origin}, http.StatusUnauthorized},
		{"no such token", "scim_nope-0123456789abcdefghijklmnopqrstuvwxyz", []string{"Content-Type", "application/json"}, http.StatusUnauthorized},
		{"another site's form", admin, []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}, http.StatusUnsupportedMediaType}, // refused unread
		{"another origin", admin, []string{"Content-Type", "application/json", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"a cross-site fetch", admin, []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a form post", admin, []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", origin}, http.StatusUnsupportedMediaType},
		{"no media type", admin, []string{"Origin", origin}, http.StatusUnsupportedMediaType},
	} {
		p := signIn(c.secret, c.headers...)
		if p.status != c.status || len(p.header["Set-Cookie"]) != 0 {
			t.Errorf("%s: %d (Set-Cookie %v), want %d", c.name, p.status, p.header["Set-Cookie"], c.status)
		}
	}

	p := signIn(admin, "Content-Type", "application/json", "Origin", origin, "Sec-Fetch-Site", "same-origin")
	if p.status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", p.status, p.body)
	}
	c := sessionCookieOf(t, p.header)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.MaxAge != int(sessionLifetime/time.Second) {
		t.Errorf("session cookie %+v", c)
	}
	if strings.Contains(c.Value, admin) || strings.Contains(p.body, admin) || len(c.Value) < 40 {
		t.Errorf("the cookie or answer carries the token: %q %s", c.Value, p.body)
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Error("the sign-in answer may be cached")
	}
	var view sessionView
	if err := json.Unmarshal([]byte(p.body), &view); err != nil || view.Tenant != scimserver.DefaultTenant || view.TokenName != "ops" || len(view.CSRF) < 40 {
		t.Fatalf("session view %s", p.body)
	}
	s := consoleSession{cookie: c.Name + "=" + c.Value, id: c.Value, csrf: view.CSRF}
	if got := e.as(s, "GET", "/console/session", nil).must(t, http.StatusOK); got["csrf"] != view.CSRF {
		t.Errorf("session info %v", got)
	}
	e.as(s, "GET", "/api/v1/admin/tenants", nil).must(t, http.StatusOK)
	// Sign-in also counts failures per address, like bearer tokens.
	for range 25 {
		signIn("scim_nope-0123456789abcdefghijklmnopqrstuvwxyz", "Content-Type", "application/json")
	}
	if p := signIn("scim_nope-0123456789abcdefghijklmnopqrstuvwxyz", "Content-Type", "application/json"); p.status != http.StatusTooManyRequests {
		t.Errorf("guessing: %d", p.status)
	}
}

func TestConsoleSessionEnds(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	ok := func(s consoleSession) bool {
		return e.send("GET", "/api/v1/admin/tenants", "", "Cookie", s.cookie).status == http.StatusOK
	}

	// Signing out.
	s := e.signIn(admin)
	e.as(s, "POST", "/console/signout", nil).must(t, http.StatusNoContent)
	if ok(s) {
		t.Error("the session works after signing out")
	}

	// Its lifetime, and idleness.
	start := time.Now()
	defer func() { e.server.sessions.now = time.Now }()
	s = e.signIn(admin)
	for _, step := range []time.Duration{29 * time.Minute, 58 * time.Minute} {
		e.server.sessions.now = func() time.Time { return start.Add(step) }
		if !ok(s) {
			t.Fatalf("the session ended after %v with requests every half hour", step)
		}
	}
	e.server.sessions.now = func() time.Time { return start.Add(58*time.Minute + sessionIdle) }
	if ok(s) {
		t.Error("the session outlived its idle timeout")
	}
	e.server.sessions.now = func() time.Time { return start }
	s = e.signIn(admin)
	for at := time.Duration(0); at < sessionLifetime; at += 20 * time.Minute {
		e.server.sessions.now = func() time.Time { return start.Add(at) }
		if !ok(s) {
			t.Fatalf("the session ended early, at %v", at)
		}
	}
	e.server.sessions.now = func() time.Time { return start.Add(sessionLifetime) }
	if ok(s) {
		t.Error("the session outlived its lifetime")
	}
	e.server.sessions.now = time.Now

	// Revoking the token, or disabling its tenant, ends its sessions on the next request.
	tok, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "two", Scopes: []string{scimserver.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	s = e.signIn(secret)
	if _, err := e.svc.RevokeToken(bg, testActor, "", tok.ID); err != nil {
		t.Fatal(err)
	}
	if ok(s) {
		t.Error("the session of a revoked token works")
	}
	if _, err := e.svc.CreateTenant(bg, testActor, "ops", ""); err != nil {
		t.Fatal(err)
	}
	_, opsSecret, _ := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: "ops", Name: "ops", Scopes: []string{scimserver.ScopeAdmin}})
	s = e.signIn(opsSecret)
	if _, err := e.svc.SetTenantDisabled(bg, testActor, "ops", true); err != nil {
		t.Fatal(err)
	}
	if ok(s) {
		t.Error("the session of a disabled tenant's token works")
	}
}

func TestConsoleCSRF(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.adminToken())
	bad := [][]string{
		{"Cookie", s.cookie, "Content-Type", "application/json"},                                                                 // no CSRF token
		{"Cookie", s.cookie, "Content-Type", "application/json", csrfHeader, "wrong"},                                            // a wrong one
		{"Cookie", s.cookie, "Content-Type", "application/json", csrfHeader, s.csrf, "Origin", "https://evil.example"},           // another origin
		{"Cookie", s.cookie, "Content-Type", "application/json", csrfHeader, s.csrf, "Sec-Fetch-Site", "cross-site"},             // another site
		{"Cookie", s.cookie, "Content-Type", "application/json", csrfHeader, e.signIn(e.adminToken()).csrf, "Origin", e.srv.URL}, // another session's
	}
	checked := 0
	for _, r := range consoleRoutesOf(t, e.server) {
		if r.method == "GET" || public[r] {
			continue
		}
		for i, h := range bad {
			p := e.send(r.method, fill(r.pattern), `{"id":"csrf","name":"x","attribute":"userName","value":"x","confirm":"x"}`, h...)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF") {
				t.Errorf("%s %s, forgery %d: %d %s", r.method, r.pattern, i, p.status, p.body)
			}
		}
		checked++
	}
	if checked < 8 {
		t.Errorf("only %d state-changing routes checked", checked)
	}
	if _, err := e.svc.Tenant(bg, "csrf"); scimserver.ErrorCode(err) != scimserver.NotFound {
		t.Fatal("a forged request created a tenant")
	}
	// The session still works, and with its token a change goes through.
	e.as(s, "POST", "/api/v1/admin/tenants", map[string]any{"id": "csrf"}).must(t, http.StatusCreated)
	// Bearer requests carry no ambient credential and need no CSRF token.
	e.doAs(e.adminToken(), "POST", "/api/v1/admin/tenants", map[string]any{"id": "bearer"}).must(t, http.StatusCreated)
}

func TestConsoleSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.adminToken())
	paths := []string{"/console/signin", "/console/assets/app.js", "/console/assets/lib.js", "/console/assets/signin.js",
		"/console/assets/console.css", "/console/assets/icon.svg", "/console/session", "/api/v1/admin/tenants"}
	for _, pg := range consolePages {
		paths = append(paths, fill("/console"+pg))
	}
	for _, path := range paths {
		p := e.send("GET", path, "", "Cookie", s.cookie)
		csp := p.header.Get("Content-Security-Policy")
		if p.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, p.status)
		}
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q allows something unsafe", path, csp)
		}
		if p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("Cache-Control") != "no-store" ||
			p.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, p.header)
		}
	}

	// The CSP holds because the files need nothing it forbids: no inline script, style or
	// handler in the pages; no HTML parsed from strings in the scripts.
	scripts := regexp.MustCompile(`(?i)<script([^>]*)>([^<]*)</script>`)
	inline := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
	unsafeJS := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\('style'|\.style\.`)
	files := 0
	err := fs.WalkDir(consoleFiles, "console", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(consoleFiles, path)
		if err != nil {
			return err
		}
		files++
		switch filepath.Ext(path) {
		case ".html":
			tags := scripts.FindAllStringSubmatch(string(raw), -1)
			for _, m := range tags {
				if !strings.Contains(m[1], `src="/console/assets/`) || strings.TrimSpace(m[2]) != "" {
					t.Errorf("%s: inline script %s", path, m[0])
				}
			}
			if len(tags) != strings.Count(strings.ToLower(string(raw)), "<script") {
				t.Errorf("%s: a script element the check cannot read", path)
			}
			if m := inline.FindString(string(raw)); m != "" {
				t.Errorf("%s: %q", path, m)
			}
		case ".js":
			if m := unsafeJS.FindString(string(raw)); m != "" {
				t.Errorf("%s: %q", path, m)
			}
		}
		return nil
	})
	if err != nil || files < 6 {
		t.Fatalf("%d files: %v", files, err)
	}
	// The sign-in form posts: even without its script the token never goes into a URL.
	signin, _ := fs.ReadFile(consoleFiles, "console/signin.html")
	if !strings.Contains(string(signin), `method="post"`) || !strings.Contains(string(signin), `type="password"`) {
		t.Error("the sign-in form would put the token in a URL, or show it")
	}
}

func TestConsoleKeepsSecretsOutOfURLsAndLogs(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	s := e.signIn(admin)
	e.as(s, "POST", "/api/v1/admin/tenants", map[string]any{"id": "acme"}).must(t, http.StatusCreated)
	created := e.as(s, "POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"name": "okta"})
	secret := str(created.must(t, http.StatusCreated)["secret"])
	if created.header.Get("Cache-Control") != "no-store" {
		t.Error("the answer with a secret may be cached")
	}
	id := str(e.doAs(secret, "POST", "/scim/v2/Users", newUserBody("kim@example.com")).must(t, http.StatusCreated)["id"])
	e.doAs(secret, "POST", "/scim/v2/Users", newUserBody("kim@example.com")).must(t, http.StatusConflict)
	found := e.as(s, "POST", "/api/v1/admin/tenants/acme/users/.search", map[string]any{"attribute": "userName", "value": "kim@example.com"}).must(t, http.StatusOK)
	if get(found, "users", 0, "id") != id {
		t.Fatalf("search: %v", found)
	}
	e.as(s, "GET", "/api/v1/admin/tenants/acme/activity", nil).must(t, http.StatusOK)
	e.as(s, "POST", "/api/v1/admin/tenants/acme/users/"+id+"/anonymize", map[string]any{"confirm": "kim@example.com"}).must(t, http.StatusOK)
	// Failed sign-ins with a token of another scope, and a stale session.
	body, _ := json.Marshal(map[string]string{"token": secret})
	e.send("POST", "/console/session", string(body), "Content-Type", "application/json")
	e.as(s, "POST", "/console/signout", nil).must(t, http.StatusNoContent)
	stale := e.send("GET", "/console/tenants/acme/people", "", "Cookie", s.cookie)

	if loc := stale.header.Get("Location"); loc != "/console/signin" {
		t.Errorf("redirect to %q", loc)
	}
	logs := e.logText()
	for name, v := range map[string]string{"admin token": admin, "created token": secret, "session id": s.id, "CSRF token": s.csrf, "userName": "kim@example.com"} {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the %s", name)
		}
	}
	// The log still says who did what: the admin token's id, never its secret.
	if !strings.Contains(logs, `"route":"/api/v1/admin/tenants/{id}/users/{userId}/anonymize"`) || !strings.Contains(logs, `"route":"/console/session"`) {
		t.Errorf("log lines missing:\n%s", logs)
	}
}

func TestConsoleTenantScoping(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.adminToken())
	e.as(s, "POST", "/api/v1/admin/tenants", map[string]any{"id": "acme"}).must(t, http.StatusCreated)
	acmeTok := e.as(s, "POST", "/api/v1/admin/tenants/acme/tokens", map[string]any{"name": "entra"}).must(t, http.StatusCreated)
	acme := str(acmeTok["secret"])
	// The same userName in both tenants; the default tenant has a group too.
	user := func(token, ext string) string {
		body := newUserBody("same@example.com")
		body["externalId"] = ext
		body["emails"] = []any{map[string]any{"value": "same@example.com"}}
		return str(e.doAs(token, "POST", "/scim/v2/Users", body).must(t, http.StatusCreated)["id"])
	}
	mine, theirs := user(e.token, "ext-default"), user(acme, "ext-acme")
	e.createGroup("Default group", mine)
	e.doAs(acme, "GET", "/scim/v2/Users/nope", nil).must(t, http.StatusNotFound)

	// Activity: each tenant sees its own requests only.
	for tenant, want := range map[string][]string{"default": {"201", "201"}, "acme": {"404", "201"}} {
		a := e.as(s, "GET", "/api/v1/admin/tenants/"+tenant+"/activity", nil).must(t, http.StatusOK)
		entries, _ := a["entries"].([]any)
		var got []string
		for _, en := range entries {
			got = append(got, strconv.Itoa(int(get(en, "status").(float64))))
			if tenant == "acme" && get(en, "tokenId") != acmeTok["id"] {
				t.Errorf("acme's activity shows another tenant's token: %v", en)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s activity %v, want %v", tenant, got, want)
		}
	}
	// Search: a tenant's lookups find its own users only.
	for _, c := range []struct{ tenant, attr, value, want string }{
		{"default", "userName", "SAME@example.com", mine},
		{"acme", "userName", "same@example.com", theirs},
		{"default", "email", "same@EXAMPLE.com", mine},
		{"acme", "externalId", "ext-acme", theirs},
		{"default", "externalId", "ext-acme", ""},
		{"acme", "externalId", "ext-default", ""},
	} {
		found := e.as(s, "POST", "/api/v1/admin/tenants/"+c.tenant+"/users/.search", map[string]any{"attribute": c.attr, "value": c.value}).must(t, http.StatusOK)
		users, _ := found["users"].([]any)
		if c.want == "" && len(users) != 0 || c.want != "" && (len(users) != 1 || get(users, 0, "id") != c.want) {
			t.Errorf("%s: %s %s: %v", c.tenant, c.attr, c.value, users)
		}
	}
	// The user page, the erasure and anonymization: another tenant's user is not found, and
	// stays as it was.
	page := e.as(s, "GET", "/api/v1/admin/tenants/default/users/"+mine, nil).must(t, http.StatusOK)
	if get(page, "user", "id") != mine || get(page, "user", "groups", 0, "display") != "Default group" || get(page, "audit", "trail", 0, "resourceId") != mine {
		t.Errorf("user page %v", page)
	}
	for _, path := range []string{"/users/" + theirs, "/users/" + theirs + "/erasure"} {
		e.as(s, "GET", "/api/v1/admin/tenants/default"+path, nil).must(t, http.StatusNotFound)
	}
	e.as(s, "POST", "/api/v1/admin/tenants/default/users/"+theirs+"/anonymize", map[string]any{"confirm": "same@example.com"}).must(t, http.StatusNotFound)
	if got := e.doAs(acme, "GET", "/scim/v2/Users/"+theirs, nil).must(t, http.StatusOK); got["userName"] != "same@example.com" {
		t.Fatalf("another tenant's user changed: %v", got)
	}
	// Tokens: each tenant lists and revokes its own.
	toks := e.as(s, "GET", "/api/v1/admin/tenants/acme/tokens", nil).must(t, http.StatusOK)
	if list, _ := toks["tokens"].([]any); len(list) != 1 || get(list, 0, "id") != acmeTok["id"] {
		t.Errorf("acme's tokens: %v", toks)
	}
	e.as(s, "DELETE", "/api/v1/admin/tenants/default/tokens/"+str(acmeTok["id"]), nil).must(t, http.StatusNotFound)
	e.doAs(acme, "GET", "/scim/v2/Users", nil).must(t, http.StatusOK)
	// Unknown tenants are not found, on every view.
	for _, path := range []string{"/activity", "/tokens", "/users/" + mine, "/users/" + mine + "/erasure"} {
		e.as(s, "GET", "/api/v1/admin/tenants/nope"+path, nil).must(t, http.StatusNotFound)
	}
	e.as(s, "POST", "/api/v1/admin/tenants/nope/users/.search", map[string]any{"attribute": "userName", "value": "same@example.com"}).must(t, http.StatusNotFound)
}

func TestActivityRing(t *testing.T) {
	e := newEnvWith(t, filepath.Join(t.TempDir(), "data.db"), Options{ActivityPerTenant: 3})
	admin := e.adminToken()
	activity := func(query string) map[string]any {
		t.Helper()
		return e.doAs(admin, "GET", "/api/v1/admin/tenants/default/activity"+query, nil).must(t, http.StatusOK)
	}
	statuses := func(a map[string]any) string {
		var out []string
		for _, en := range a["entries"].([]any) {
			out = append(out, strconv.Itoa(int(get(en, "status").(float64))))
		}
		return strings.Join(out, ",")
	}
	if a := activity(""); statuses(a) != "" || a["last"] != float64(0) || a["capacity"] != float64(3) {
		t.Fatalf("empty: %v", a)
	}
	id := e.createUser("ring@example.com", nil)
	e.do("GET", "/scim/v2/Users/"+id, nil).must(t, http.StatusOK)
	e.do("POST", "/scim/v2/Users", newUserBody("ring@example.com")).must(t, http.StatusConflict)
	// Neither the platform API, nor the admin API, nor a refused token is SCIM activity.
	e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, http.StatusOK)
	e.doAs("scim_nope-0123456789abcdefghijklmnopqrstuvwxyz", "GET", "/scim/v2/Users", nil).must(t, http.StatusUnauthorized)
	a := activity("")
	if statuses(a) != "409,200,201" || a["last"] != float64(3) || a["dropped"] != float64(0) {
		t.Fatalf("three requests: %v", a)
	}
	conflict := get(a, "entries", 0)
	if get(conflict, "method") != "POST" || get(conflict, "route") != "/scim/v2/Users" || get(conflict, "scimType") != "uniqueness" ||
		get(conflict, "detail") == nil || get(conflict, "tokenName") != "SCIMSERVER_TOKEN" || get(conflict, "requestId") == "" {
		t.Errorf("entry %v", conflict)
	}
	if get(a, "entries", 1, "route") != "/scim/v2/Users/{id}" {
		t.Errorf("the route is not the pattern: %v", get(a, "entries", 1))
	}
	raw, _ := json.Marshal(a)
	if strings.Contains(string(raw), id) || strings.Contains(string(raw), "ring@example.com") {
		t.Errorf("the activity holds an id or a personal value: %s", raw)
	}
	// Two more: the ring keeps three and counts what it dropped.
	e.do("GET", "/scim/v2/Users", nil).must(t, http.StatusOK)
	e.do("PATCH", "/scim/v2/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}).must(t, http.StatusOK)
	if a := activity(""); statuses(a) != "200,200,409" || a["last"] != float64(5) || a["dropped"] != float64(2) {
		t.Fatalf("after five: %v", a)
	}
	// Polling for what follows, and filters.
	if a := activity("?after=4"); statuses(a) != "200" || get(a, "entries", 0, "method") != "PATCH" {
		t.Errorf("after 4: %v", a)
	}
	if a := activity("?after=5"); statuses(a) != "" {
		t.Errorf("after 5: %v", a)
	}
	if a := activity("?status=4xx"); statuses(a) != "409" {
		t.Errorf("4xx: %v", a)
	}
	if a := activity("?status=2xx&limit=1"); statuses(a) != "200" {
		t.Errorf("2xx, one: %v", a)
	}
	if a := activity("?token=nope"); statuses(a) != "" {
		t.Errorf("another token: %v", a)
	}
	tokenID := str(get(activity(""), "entries", 0, "tokenId"))
	if a := activity("?token=" + tokenID); statuses(a) != "200,200,409" {
		t.Errorf("by token: %v", a)
	}
	for _, q := range []string{"?after=x", "?status=4", "?status=9xx", "?limit=0", "?limit=4"} {
		e.doAs(admin, "GET", "/api/v1/admin/tenants/default/activity"+q, nil).must(t, http.StatusBadRequest)
	}
}

func TestConsolePeople(t *testing.T) {
	e := newEnv(t)
	s := e.signIn(e.adminToken())
	const odd = `o"dd\name@example.com` // quotes and backslashes reach the lookup as written
	id := e.createUser(odd, map[string]any{"externalId": "Ext-1", "name": map[string]any{"givenName": "Odd"},
		"emails": []any{map[string]any{"value": "odd@example.com", "primary": true}}})
	other := e.createUser("other@example.com", map[string]any{"externalId": "Ext-1"})
	gid := e.createGroup("Team", id)
	search := func(attr, value string) []any {
		t.Helper()
		got := e.as(s, "POST", "/api/v1/admin/tenants/default/users/.search", map[string]any{"attribute": attr, "value": value}).must(t, http.StatusOK)
		users, _ := got["users"].([]any)
		return users
	}
	if u := search("userName", `O"DD\NAME@example.com`); len(u) != 1 || get(u, 0, "id") != id {
		t.Errorf("userName: %v", u)
	}
	if u := search("email", "ODD@example.com"); len(u) != 1 || get(u, 0, "id") != id {
		t.Errorf("email: %v", u)
	}
	if u := search("externalId", "Ext-1"); len(u) != 2 || get(u, 0, "id") != id || get(u, 1, "id") != other {
		t.Errorf("externalId: %v", u)
	}
	if u := search("externalId", "ext-1"); len(u) != 0 {
		t.Errorf("externalId is case-exact: %v", u)
	}
	if u := search("userName", `other@example.com" or userName pr or userName eq "x`); len(u) != 0 {
		t.Errorf("a value is a value, not filter syntax: %v", u)
	}
	// A search answers at most 50, and says there are more.
	for i := range maxSearchResults {
		e.createUser("shared"+strconv.Itoa(i)+"@example.com", map[string]any{"externalId": "shared"})
	}
	if got := e.as(s, "POST", "/api/v1/admin/tenants/default/users/.search", map[string]any{"attribute": "externalId", "value": "shared"}).must(t, http.StatusOK); len(got["users"].([]any)) != maxSearchResults || got["more"] != false {
		t.Errorf("50 matches: %d, more %v", len(got["users"].([]any)), got["more"])
	}
	e.createUser("shared-last@example.com", map[string]any{"externalId": "shared"})
	if got := e.as(s, "POST", "/api/v1/admin/tenants/default/users/.search", map[string]any{"attribute": "externalId", "value": "shared"}).must(t, http.StatusOK); len(got["users"].([]any)) != maxSearchResults || got["more"] != true {
		t.Errorf("51 matches: %d, more %v", len(got["users"].([]any)), got["more"])
	}
	for _, body := range []map[string]any{{"attribute": "displayName", "value": "x"}, {"attribute": "userName"}, {"value": "x"}, {"attribute": 1, "value": "x"}} {
		e.as(s, "POST", "/api/v1/admin/tenants/default/users/.search", body).must(t, http.StatusBadRequest)
	}

	// The user page: attributes, lifecycle, groups, trail.
	e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(t, http.StatusNoContent)
	pg := e.as(s, "GET", "/api/v1/admin/tenants/default/users/"+id, nil).must(t, http.StatusOK)
	if get(pg, "user", "name", "givenName") != "Odd" || get(pg, "user", "groups", 0, "value") != gid ||
		get(pg, "user", "urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User", "audited") != true ||
		get(pg, "audit", "interactions") != float64(1) || get(pg, "audit", "trail", 0, "operation") != "interaction" {
		t.Errorf("user page %v", pg)
	}
	e.as(s, "GET", "/api/v1/admin/tenants/default/users/nope", nil).must(t, http.StatusNotFound)

	// The erasure is what the anonymize command shows; only an id names the user.
	er := e.as(s, "GET", "/api/v1/admin/tenants/default/users/"+id+"/erasure", nil).must(t, http.StatusOK)
	want, err := e.svc.DescribeErasure(bg, scimserver.DefaultTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(er["attributes"]); string(got) != mustJSON(want.Attributes) || er["userName"] != odd || er["groups"] != float64(1) || er["anonymizedAt"] != nil {
		t.Errorf("erasure %v, want %+v", er, want)
	}
	e.as(s, "GET", "/api/v1/admin/tenants/default/users/other@example.com/erasure", nil).must(t, http.StatusNotFound)

	// Anonymization needs the userName, exactly.
	for _, confirm := range []any{nil, "", "odd@example.com", `O"DD\NAME@example.com`, odd + " ", 7} {
		e.as(s, "POST", "/api/v1/admin/tenants/default/users/"+id+"/anonymize", map[string]any{"confirm": confirm}).must(t, http.StatusBadRequest)
	}
	if got := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, http.StatusOK); got["userName"] != odd {
		t.Fatalf("a refused confirmation changed the user: %v", got)
	}
	done := e.as(s, "POST", "/api/v1/admin/tenants/default/users/"+id+"/anonymize", map[string]any{"confirm": odd}).must(t, http.StatusOK)
	if _, told := done["scrubbed"].(bool); done["changed"] != true || !told || get(done, "event", "operation") != "anonymize" || get(done, "event", "actorName") != "ops" ||
		get(done, "event", "resourceId") != id || mustJSON(get(done, "event", "attributes")) != mustJSON(want.Attributes) {
		t.Errorf("anonymize: %v", done)
	}
	after := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, http.StatusOK)
	if after["userName"] == odd || after["active"] != false || after["groups"] != nil {
		t.Errorf("after: %v", after)
	}
	e.as(s, "POST", "/api/v1/admin/tenants/default/users/"+id+"/anonymize", map[string]any{"confirm": str(after["userName"])}).must(t, http.StatusConflict)
	if er := e.as(s, "GET", "/api/v1/admin/tenants/default/users/"+id+"/erasure", nil).must(t, http.StatusOK); er["anonymizedAt"] == nil {
		t.Errorf("erasure of an anonymized user: %v", er)
	}
}

func mustJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func TestTokenLastUsed(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	lastUsed := func(name string) any {
		toks := e.doAs(admin, "GET", "/api/v1/admin/tenants/default/tokens", nil).must(t, http.StatusOK)
		for _, tk := range toks["tokens"].([]any) {
			if get(tk, "name") == name {
				return get(tk, "lastUsed")
			}
		}
		t.Fatalf("no token %s", name)
		return nil
	}
	if lastUsed("SCIMSERVER_PLATFORM_TOKEN") != nil {
		t.Fatal("an unused token has a last use")
	}
	before := time.Now().Add(-time.Second)
	e.api("GET", "/api/v1/audit", nil).must(t, http.StatusOK)
	at, err := time.Parse(time.RFC3339Nano, str(lastUsed("SCIMSERVER_PLATFORM_TOKEN")))
	if err != nil || at.Before(before) || at.After(time.Now()) {
		t.Errorf("last used %v (%v)", at, err)
	}
	if lastUsed("ops") == nil {
		t.Error("the admin token's own use is not recorded")
	}
}

// TestConsoleCallsTheServiceOnly keeps the console's files on the domain's side of the storage
// contract: they reach data through the Service, never the storage engine.
func TestConsoleCallsTheServiceOnly(t *testing.T) {
	for _, file := range []string{"console.go", "session.go", "activity.go", "people.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if strings.Contains(imp.Path.Value, "/storage") {
				t.Errorf("%s imports %s", file, imp.Path.Value)
			}
		}
	}
}
