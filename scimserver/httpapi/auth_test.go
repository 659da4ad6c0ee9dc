package httpapi

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// logLine returns the request log line of the request with id reqID.
func (e *testEnv) logLine(reqID string) map[string]any {
	e.t.Helper()
	sc := bufio.NewScanner(strings.NewReader(e.logText()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["requestId"] == reqID && m["message"] == "request" {
			return m
		}
	}
	e.t.Fatalf("no log line for request %s in:\n%s", reqID, e.logText())
	return nil
}

// TestAuthFailuresAreLoggedWithReason: every refused token gets the same 401 answer, while the
// log line says why and which token matched, so that an operator can tell a misconfigured
// identity provider from someone guessing.
func TestAuthFailuresAreLoggedWithReason(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.CreateTenant(bg, testActor, "acme", ""); err != nil {
		t.Fatal(err)
	}
	token := func(tenant string, expires *time.Time) (scimserver.Token, string) {
		tok, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: tenant, Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		return tok, secret
	}
	scim, scimSecret := token(scimserver.DefaultTenant, nil)
	revoked, revokedSecret := token(scimserver.DefaultTenant, nil)
	if _, err := e.svc.RevokeToken(bg, testActor, "", revoked.ID); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(50 * time.Millisecond)
	expired, expiredSecret := token(scimserver.DefaultTenant, &soon)
	disabled, disabledSecret := token("acme", nil)
	if _, err := e.svc.SetTenantDisabled(bg, testActor, "acme", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(soon))

	const unknownSecret = "scim_guessed-0123456789abcdefghijklmnopqrstuvwxyz"
	var firstBody []byte
	for i, c := range []struct {
		name, secret, path, reason, tokenID string
	}{
		{"no token", "", "/scim/v2/Users", "no bearer token", ""},
		{"unknown", unknownSecret, "/scim/v2/Users", "unknown token", ""},
		{"revoked", revokedSecret, "/scim/v2/Users", "revoked", revoked.ID},
		{"expired", expiredSecret, "/scim/v2/Users", "expired", expired.ID},
		{"tenant disabled", disabledSecret, "/scim/v2/Users", "tenant disabled", disabled.ID},
		{"SCIM token on the admin API", scimSecret, "/api/v1/admin/tenants", "wrong scope: has scim, needs admin", scim.ID},
		{"SCIM token on the platform API", scimSecret, "/api/v1/audit", "wrong scope: has scim, needs platform", scim.ID},
		{"platform token on SCIM", testPlatformToken, "/scim/v2/Users", "wrong scope: has platform, needs scim", ""},
	} {
		reqID := "auth-" + strings.ReplaceAll(c.name, " ", "-")
		r := e.doAs(c.secret, "GET", c.path, nil, "X-Request-Id", reqID)
		if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="scimserver"` {
			t.Errorf("%s: %d %v", c.name, r.status, r.header)
		}
		// The client learns nothing: the same body whatever the reason.
		if i == 0 {
			firstBody = r.raw
		} else if !bytes.Equal(r.raw, firstBody) {
			t.Errorf("%s: body %s differs from %s", c.name, r.raw, firstBody)
		}
		line := e.logLine(reqID)
		if line["authFailure"] != c.reason {
			t.Errorf("%s: logged reason %v, want %q", c.name, line["authFailure"], c.reason)
		}
		if want := map[string]string{"/api/v1/admin/tenants": "/api/v1/admin/*", "/api/v1/audit": "/api/v1/*"}[c.path]; line["route"] != cmp.Or(want, "/scim/v2/*") {
			t.Errorf("%s: logged route %v: a refused request is logged under its API's prefix", c.name, line["route"])
		}
		if c.tokenID != "" && line["tokenId"] != c.tokenID {
			t.Errorf("%s: logged token %v, want %s", c.name, line["tokenId"], c.tokenID)
		}
		if c.secret == unknownSecret && (line["tokenId"] != nil || line["tenant"] != nil) {
			t.Errorf("%s: an unknown secret logged a token or tenant: %v", c.name, line)
		}
	}
	for _, secret := range []string{scimSecret, revokedSecret, expiredSecret, disabledSecret, unknownSecret, testPlatformToken} {
		if strings.Contains(e.logText(), secret) {
			t.Fatalf("a secret reached the log")
		}
	}
}

// TestRequestLogDurationHasUnit: the request log states its duration in milliseconds, by name.
func TestRequestLogDurationHasUnit(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/scim/v2/Users", nil, "X-Request-Id", "timed").must(t, 200)
	line := e.logLine("timed")
	if ms, ok := line["duration_ms"].(float64); !ok || ms <= 0 || ms > 60_000 {
		t.Fatalf("duration_ms %v in %v", line["duration_ms"], line)
	}
	if _, ok := line["duration"]; ok {
		t.Fatalf("a duration without a unit: %v", line)
	}
}

// TestAuthWithoutTheStoreIs503: when the store cannot be read, a token cannot be checked: the
// answer is 503 with Retry-After (the client retries later), never 401 (which tells an identity
// provider its credentials are wrong) nor, however many requests come, 429 (the failures are
// not the client's).
func TestAuthWithoutTheStoreIs503(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 { // beyond the failure limiter's burst
		for _, secret := range []string{testToken, "scim_guessed-0123456789abcdefghijklmnopqrstuvwxyz"} {
			r := e.doAs(secret, "GET", "/scim/v2/Users", nil)
			if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
				t.Fatalf("request %d: %d (Retry-After %q): %s", i, r.status, r.header.Get("Retry-After"), r.raw)
			}
			checkErrorBody(t, "auth without the store", r)
		}
	}
	if strings.Contains(e.logText(), testToken) {
		t.Error("the log holds the bearer token")
	}
}
