package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/schemas"
)

// Markers stand for what a careless client puts where an id or a value belongs: an email
// address, a person's name, an opaque id-like string. None may come back in an error body or
// reach the log.
var markers = []string{"zelda@residue.test", "Zelda Residue", "zelda-residue-4c1f"}

// markerTenant is a tenant id that exists, for the conflict of creating it again.
const markerTenant = "zelda-tenant-9e2d"

// echoCase is one refused request carrying a marker in its path, query, headers or body.
type echoCase struct {
	name, token, method, path string
	body                      any
	status                    int
	headers                   []string
}

// TestErrorsAndLogsNeverEchoClientValues requests every kind of 4xx the SCIM, platform and
// admin APIs can answer, with marker strings as ids, values, filters, headers and bodies, and
// scans every error body and the whole log for them.
func TestErrorsAndLogsNeverEchoClientValues(t *testing.T) {
	e := newEnv(t)
	admin := e.adminToken()
	uid := e.createUser("echo.user@example.com", nil)
	inactive := e.createUser("echo.inactive@example.com", map[string]any{"active": false})
	anon := e.createUser("echo.anonymized@example.com", nil)
	e.do("POST", "/scim/v2/Users/"+anon+"/.anonymize", nil).must(t, 200)
	gid := e.createGroup("echo group", uid)
	e.createUser(markers[0], nil)
	e.createGroup(markers[1])
	e.api("PUT", "/api/v1/campaigns/c1/participants/"+uid, nil).must(t, 204)
	e.doAs(admin, "POST", "/api/v1/admin/tenants", map[string]any{"id": markerTenant}).must(t, 201)

	var cases []echoCase
	scim := func(name, method, path string, body any, status int, headers ...string) {
		cases = append(cases, echoCase{name, e.token, method, path, body, status, headers})
	}
	platform := func(name, method, path string, body any, status int) {
		cases = append(cases, echoCase{name, testPlatformToken, method, path, body, status, nil})
	}
	adminCall := func(name, method, path string, body any, status int) {
		cases = append(cases, echoCase{name, admin, method, path, body, status, nil})
	}
	for _, m := range markers {
		p := url.PathEscape(m)
		q := url.QueryEscape(m)
		// SCIM: unknown ids in every position.
		scim("get user", "GET", "/scim/v2/Users/"+p, nil, 404)
		scim("get group", "GET", "/scim/v2/Groups/"+p, nil, 404)
		scim("put user", "PUT", "/scim/v2/Users/"+p, userBody("echo.put@example.com", nil), 404)
		scim("patch user", "PATCH", "/scim/v2/Users/"+p, patchOp(op("replace", "nickName", "x")), 404)
		scim("patch group", "PATCH", "/scim/v2/Groups/"+p, patchOp(op("replace", "displayName", "x")), 404)
		scim("delete user", "DELETE", "/scim/v2/Users/"+p, nil, 404)
		scim("delete group", "DELETE", "/scim/v2/Groups/"+p, nil, 404)
		scim("anonymize", "POST", "/scim/v2/Users/"+p+"/.anonymize", nil, 404)
		scim("unknown endpoint", "GET", "/scim/v2/"+p, nil, 404)
		scim("unknown schema", "GET", "/scim/v2/Schemas/"+p, nil, 404)
		scim("unknown resource type", "GET", "/scim/v2/ResourceTypes/"+p, nil, 404)
		scim("unknown member on create", "POST", "/scim/v2/Groups", map[string]any{"schemas": []string{schemas.GroupURN},
			"displayName": "echo new group", "members": []any{map[string]any{"value": m}}}, 400)
		scim("unknown member on patch", "PATCH", "/scim/v2/Groups/"+gid,
			patchOp(op("add", "members", []any{map[string]any{"value": m}})), 400)
		scim("anonymized member", "PATCH", "/scim/v2/Groups/"+gid,
			patchOp(op("add", "members", []any{map[string]any{"value": anon, "display": m}})), 409)
		// SCIM: values, filters, paging and headers.
		scim("taken userName", "POST", "/scim/v2/Users", userBody(markers[0], map[string]any{"nickName": m}), 409)
		scim("taken displayName", "POST", "/scim/v2/Groups", map[string]any{"schemas": []string{schemas.GroupURN}, "displayName": markers[1],
			"externalId": m}, 409)
		scim("wrong type", "POST", "/scim/v2/Users", userBody("echo.type@example.com", map[string]any{"active": m}), 400)
		scim("wrong schema", "POST", "/scim/v2/Users", map[string]any{"schemas": []string{m}, "userName": m}, 400)
		scim("bad filter", "GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+m+`" and`), nil, 400)
		scim("bad filter type", "GET", "/scim/v2/Users?filter="+url.QueryEscape(`active eq "`+m+`"`), nil, 400)
		scim("bad search", "POST", "/scim/v2/Users/.search", map[string]any{"schemas": []string{schemas.SearchURN},
			"filter": `emails[value eq "` + m + `"`}, 400)
		scim("bad sortBy", "GET", "/scim/v2/Users?sortBy="+q, nil, 400)
		scim("bad sortOrder", "GET", "/scim/v2/Users?sortOrder="+q, nil, 400)
		scim("bad startIndex", "GET", "/scim/v2/Users?startIndex="+q, nil, 400)
		scim("bad count", "GET", "/scim/v2/Users?count="+q, nil, 400)
		scim("bad patch path", "PATCH", "/scim/v2/Users/"+uid, patchOp(op("replace", `emails[value eq "`+m+`"].nope`, "x")), 400)
		scim("bad patch value", "PATCH", "/scim/v2/Users/"+uid, patchOp(op("replace", "active", m)), 400)
		scim("bad patch op", "PATCH", "/scim/v2/Users/"+uid, patchOp(op(m, "nickName", "x")), 400)
		scim("stale If-Match", "PATCH", "/scim/v2/Users/"+uid, patchOp(op("replace", "nickName", m)), 412, "If-Match", `W/"`+m+`"`)
		scim("anonymized user", "PATCH", "/scim/v2/Users/"+anon, patchOp(op("replace", "nickName", m)), 409)
		scim("unanonymize", "PATCH", "/scim/v2/Users/"+anon, patchOp(op("replace", lifecycleURN+":anonymized", false),
			op("replace", "nickName", m)), 400)
		scim("media type", "POST", "/scim/v2/Users", userBody(m, nil), 415, "Content-Type", "text/"+strings.ReplaceAll(m, " ", "-"))
		scim("body too large", "POST", "/scim/v2/Users", `{"userName":"`+strings.Repeat(m, (1<<20)/len(m)+1)+`"}`, 413)
		scim("headers too large", "GET", "/scim/v2/Users/"+uid, nil, 431, "X-Echo", strings.Repeat(m, (64<<10)/len(m)+1))
		scim("method", "PUT", "/scim/v2/Users", userBody(m, nil), 405)
		cases = append(cases, echoCase{"bad token", "Bearer-" + m + "-0123456789abcdefghijklmnopqrstuvwxyz", "GET", "/scim/v2/Users/" + p, nil, 401, nil})

		// Platform API.
		platform("interaction of unknown user", "POST", "/api/v1/users/"+p+"/interactions", map[string]any{"type": "login"}, 404)
		platform("interaction type", "POST", "/api/v1/users/"+uid+"/interactions", map[string]any{"type": m}, 400)
		platform("interaction time", "POST", "/api/v1/users/"+uid+"/interactions", map[string]any{"type": "login", "at": m}, 400)
		platform("assign unknown user", "PUT", "/api/v1/campaigns/"+p+"/participants/"+p, nil, 404)
		platform("assign inactive user", "PUT", "/api/v1/campaigns/"+p+"/participants/"+inactive, nil, 409)
		platform("assign anonymized user", "PUT", "/api/v1/campaigns/"+p+"/participants/"+anon, nil, 409)
		platform("unassign unknown user", "DELETE", "/api/v1/campaigns/"+p+"/participants/"+p, nil, 404)
		platform("audit of unknown user", "GET", "/api/v1/users/"+p+"/audit", nil, 404)
		platform("audit since", "GET", "/api/v1/audit?since="+q, nil, 400)
		platform("audit limit", "GET", "/api/v1/audit?limit="+q, nil, 400)
		platform("audit cursor", "GET", "/api/v1/users/"+uid+"/audit?cursor="+q, nil, 400)
		platform("anonymize unknown user", "POST", "/api/v1/users/"+p+"/anonymize", nil, 404)
		platform("unknown platform endpoint", "GET", "/api/v1/"+p, nil, 404)
		platform("platform body", "POST", "/api/v1/users/"+uid+"/interactions", `{"type":"login","type":"`+m+`"}`, 400)

		// Admin API.
		adminCall("get tenant", "GET", "/api/v1/admin/tenants/"+p, nil, 404)
		adminCall("disable tenant", "POST", "/api/v1/admin/tenants/"+p+"/disable", nil, 404)
		adminCall("enable tenant", "POST", "/api/v1/admin/tenants/"+p+"/enable", nil, 404)
		adminCall("list tokens", "GET", "/api/v1/admin/tenants/"+p+"/tokens", nil, 404)
		adminCall("create token", "POST", "/api/v1/admin/tenants/"+p+"/tokens", map[string]any{"name": m}, 404)
		adminCall("revoke token", "DELETE", "/api/v1/admin/tenants/default/tokens/"+p, nil, 404)
		adminCall("tenant exists", "POST", "/api/v1/admin/tenants", map[string]any{"id": markerTenant, "name": m}, 409)
		adminCall("tenant id", "POST", "/api/v1/admin/tenants", map[string]any{"id": m + "!"}, 400)
		adminCall("tenant id type", "POST", "/api/v1/admin/tenants", map[string]any{"id": []string{m}}, 400)
		adminCall("token scope", "POST", "/api/v1/admin/tenants/default/tokens", map[string]any{"name": m, "scopes": []string{m}}, 400)
		adminCall("token expiry", "POST", "/api/v1/admin/tenants/default/tokens", map[string]any{"name": m, "expiresIn": m}, 400)
		adminCall("unknown admin endpoint", "GET", "/api/v1/admin/"+p, nil, 404)
	}
	// The same check for a custom method, which net/http hands over as sent.
	cases = append(cases, echoCase{"custom method", e.token, "ZELDARESIDUE", "/scim/v2/Users", nil, 405, nil})

	var bodies []string
	for _, c := range cases {
		r := e.doAs(c.token, c.method, c.path, c.body, c.headers...)
		if r.status != c.status {
			t.Errorf("%s: %s %s: status %d, want %d: %s", c.name, c.method, c.path, r.status, c.status, r.raw)
		}
		bodies = append(bodies, c.name+": "+string(r.raw))
	}
	// Throttling after repeated failures (429) carries no marker either.
	throttled := false
	for i := 0; i < 30 && !throttled; i++ {
		r := e.doAs("Bearer-"+markers[0]+"-0123456789abcdefghijklmnopqrstuvwxyz", "GET", "/scim/v2/Users/"+url.PathEscape(markers[1]), nil)
		throttled = r.status == http.StatusTooManyRequests
		bodies = append(bodies, "throttled: "+string(r.raw))
	}
	if !throttled {
		t.Error("repeated bad tokens were never throttled")
	}
	logs := strings.ToLower(e.logText())
	for _, m := range append(markers, markerTenant, "ZELDARESIDUE") {
		for _, form := range []string{m, url.PathEscape(m), url.QueryEscape(m)} {
			form = strings.ToLower(form)
			for _, b := range bodies {
				if strings.Contains(strings.ToLower(b), form) {
					t.Errorf("an error body echoes %q: %s", form, b)
				}
			}
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, form) {
					t.Errorf("the log echoes %q: %s", form, line)
				}
			}
		}
	}
}
