package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// TestLoneSurrogatesAreRefused: a \u escape of half a UTF-16 surrogate pair names no character.
// encoding/json would store it as U+FFFD, so that two different inputs become one value; every
// API that reads JSON refuses it instead, and nothing is stored.
func TestLoneSurrogatesAreRefused(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	uid := e.createUser("surrogate.user@example.com", nil)
	gid := e.createGroup("surrogate group")
	user := func(name string) string {
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + name + `"}`
	}
	patch := func(value string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nickName","value":"` + value + `"}]}`
	}
	for _, c := range []struct {
		name, token, method, path, body string
	}{
		{"userName, high half", e.token, "POST", "/scim/v2/Users", user(`a\ud800@x`)},
		{"userName, low half", e.token, "POST", "/scim/v2/Users", user(`a\udc00@x`)},
		{"userName, upper-case escape", e.token, "POST", "/scim/v2/Users", user(`a\uD83D@x`)},
		{"userName, high half then a letter", e.token, "POST", "/scim/v2/Users", user(`a\ud800\u0041@x`)},
		{"userName, two high halves", e.token, "POST", "/scim/v2/Users", user(`a\ud800\ud800@x`)},
		{"key", e.token, "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"k@x","\ud800":1}`},
		{"PUT", e.token, "PUT", "/scim/v2/Users/" + uid, user(`surrogate.user\ud800@example.com`)},
		{"PATCH user", e.token, "PATCH", "/scim/v2/Users/" + uid, patch(`nick\udfff`)},
		{"PATCH group", e.token, "PATCH", "/scim/v2/Groups/" + gid,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"g\ud800"}]}`},
		{"search", e.token, "POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"\ud800\""}`},
		{"platform interaction", testPlatformToken, "POST", "/api/v1/users/" + uid + "/interactions", `{"type":"login\ud800"}`},
		{"admin tenant", admin, "POST", "/api/v1/admin/tenants", `{"id":"surrogate","name":"\ud800"}`},
		{"admin token name", admin, "POST", "/api/v1/admin/tenants/default/tokens", `{"name":"\u0000\ud800"}`},
	} {
		r := e.doAs(c.token, c.method, c.path, c.body)
		if r.status != http.StatusBadRequest || r.body["scimType"] != "invalidSyntax" {
			t.Errorf("%s: %d %s, want 400 invalidSyntax", c.name, r.status, r.raw)
		}
	}
	if r := e.do("GET", filterURL("Users", "userName eq \"a\uFFFD@x\""), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Errorf("a refused userName was stored: %v", r)
	}
	if _, err := e.svc.Tenant(bg, "surrogate"); scimserver.ErrorCode(err) != scimserver.NotFound {
		t.Errorf("a refused tenant was created: %v", err)
	}
	// A pair is one character, and a name with a control character is no name.
	e.do("POST", "/scim/v2/Users", user(`pair\ud83d\ude00@x`)).must(t, 201)
	if r := e.doAs(admin, "POST", "/api/v1/admin/tenants/default/tokens", `{"name":"\u0000"}`); r.status != http.StatusBadRequest {
		t.Errorf("token name NUL: %d %s", r.status, r.raw)
	}
	toks, err := e.svc.Tokens(bg, scimserver.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if strings.ContainsAny(tk.Name, "\x00\uFFFD") {
			t.Errorf("a refused token name was stored: %q", tk.Name)
		}
	}
}

// TestInteractionTimeIsBounded: the platform reports interactions as they happen. A time far
// in the future or from before the tenant existed is a mistake that would stay in the audit
// record for ever: 400, and nothing is recorded.
func TestInteractionTimeIsBounded(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("when@example.com", nil)
	tenant, err := e.svc.Tenant(bg, scimserver.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []struct {
		at     string
		status int
	}{
		{"9999-12-31T23:59:59Z", 400},
		{"0000-01-01T00:00:00Z", 400},
		{now.Add(10 * time.Minute).Format(time.RFC3339Nano), 400},
		{tenant.Created.Add(-time.Second).Format(time.RFC3339Nano), 400},
		{now.Add(time.Minute).Format(time.RFC3339Nano), 204}, // clocks differ a little
		{tenant.Created.Format(time.RFC3339Nano), 204},
		{now.Format(time.RFC3339Nano), 204},
	} {
		r := e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login", "at": c.at})
		if r.status != c.status {
			t.Errorf("at %s: %d %s, want %d", c.at, r.status, r.raw, c.status)
		}
		if c.status == 400 && (r.body["scimType"] != "invalidValue" || !strings.Contains(str(r.body["detail"]), `"at"`)) {
			t.Errorf("at %s: %s", c.at, r.raw)
		}
	}
	a := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	if a["interactions"] != float64(3) {
		t.Fatalf("interactions recorded: %v, want 3", a["interactions"])
	}
	if last, _ := time.Parse(time.RFC3339Nano, str(a["lastInteractionAt"])); last.After(now.Add(2 * time.Minute)) {
		t.Fatalf("lastInteractionAt %v", a["lastInteractionAt"])
	}
}
