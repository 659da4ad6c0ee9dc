package httpapi

import (
	"net/http"
	"net/url"
	"testing"
)

// TestOktaSequence replays what Okta sends, in order: its test connection, match-before-create,
// create, read, full-profile PUT, deactivation and reactivation, and a group push
// (/shared/idp-behaviour.md §1, including the Runscope spec test of §1.12).
func TestOktaSequence(t *testing.T) {
	e := newEnv(t)

	// Test connection on an empty store: a full ListResponse with numbers and [].
	r := e.do("GET", "/scim/v2/Users?startIndex=1&count=1", nil, "Accept", "application/scim+json").must(t, 200)
	if r["totalResults"] != float64(0) || r["startIndex"] != float64(1) || r["itemsPerPage"] != float64(0) {
		t.Fatalf("empty list paging numbers: %v", r)
	}
	if res, ok := r["Resources"].([]any); !ok || len(res) != 0 {
		t.Fatalf("empty list Resources must be []: %v", r["Resources"])
	}

	// Match before create.
	q := "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "test.user@okta.local"`) + "&startIndex=1&count=100"
	if r := e.do("GET", q, nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("match on empty store: %v", r)
	}

	create := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    "test.user@okta.local",
		"name":        map[string]any{"givenName": "Test", "familyName": "User"},
		"emails":      []any{map[string]any{"primary": true, "value": "test.user@okta.local", "type": "work"}},
		"displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
		"groups": []any{}, "password": "1mz050nq", "active": true,
	}
	// Okta's spec test posts with Content-Type application/json.
	created := e.do("POST", "/scim/v2/Users", create, "Content-Type", "application/json")
	u := created.must(t, http.StatusCreated)
	id := str(u["id"])
	if id == "" || u["active"] != true || get(u, "name", "givenName") != "Test" || u["userName"] != "test.user@okta.local" {
		t.Fatalf("created user: %v", u)
	}
	if _, ok := u["password"]; ok {
		t.Fatal("password must never be returned")
	}
	if created.header.Get("Location") != str(get(u, "meta", "location")) || created.header.Get("ETag") == "" {
		t.Fatalf("Location %q / ETag %q vs meta %v", created.header.Get("Location"), created.header.Get("ETag"), u["meta"])
	}
	if got := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); got["userName"] != "test.user@okta.local" || get(got, "emails", 0, "value") != "test.user@okta.local" {
		t.Fatalf("get: %v", got)
	}
	// The same POST again is a conflict, and so is the same userName in other letters.
	if r := e.do("POST", "/scim/v2/Users", create); r.status != 409 || r.body["scimType"] != "uniqueness" {
		t.Fatalf("duplicate POST: %d %v", r.status, r.body)
	}
	// Filter in capitals finds the user, with the stored case returned unchanged.
	q = "/scim/v2/Users?filter=" + url.QueryEscape(`userName eq "TEST.USER@OKTA.LOCAL"`)
	if r := e.do("GET", q, nil).must(t, 200); r["totalResults"] != float64(1) || get(r, "Resources", 0, "userName") != "test.user@okta.local" {
		t.Fatalf("case-insensitive match: %v", r)
	}
	// Spec test step 4: unknown id.
	e.do("GET", "/scim/v2/Users/010101001010101011001010101011", nil).must(t, 404)

	// Profile update: GET then PUT the full object back, with id, meta and groups.
	full := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	full["name"].(map[string]any)["givenName"] = "Tess"
	full["password"] = "1mz050nq"
	if r := e.do("PUT", "/scim/v2/Users/"+id, full).must(t, 200); get(r, "name", "givenName") != "Tess" {
		t.Fatalf("PUT: %v", r)
	}
	// Deactivate (OIN PATCH without path) and reactivate.
	deact := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}
	if r := e.do("PATCH", "/scim/v2/Users/"+id, deact).must(t, 200); r["active"] != false {
		t.Fatalf("deactivate: %v", r)
	}
	if r := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); r["active"] != false || get(r, "name", "givenName") != "Tess" {
		t.Fatalf("inactive user must stay readable: %v", r)
	}
	react := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}}}
	if r := e.do("PATCH", "/scim/v2/Users/"+id, react).must(t, 200); r["active"] != true || r["id"] != id {
		t.Fatalf("reactivate: %v", r)
	}
	// AIW deactivation by PUT.
	full = e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	full["active"] = false
	if r := e.do("PUT", "/scim/v2/Users/"+id, full).must(t, 200); r["active"] != false {
		t.Fatalf("PUT active false: %v", r)
	}

	// Group push.
	u2 := e.do("POST", "/scim/v2/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "second@okta.local"}).must(t, 201)
	id2 := str(u2["id"])
	g := e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Test SCIMv2", "members": []any{}}).must(t, 201)
	gid := str(g["id"])
	addFirst := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{
		map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Test SCIMv2"}},
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id, "display": "test.user@okta.local"}}},
	}}
	if r := e.do("PATCH", "/scim/v2/Groups/"+gid, addFirst); r.status != 204 {
		t.Fatalf("group member add: %d %s", r.status, r.raw)
	}
	swap := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{
		map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`},
		map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id2, "display": "second@okta.local"}}},
	}}
	e.do("PATCH", "/scim/v2/Groups/"+gid, swap).must(t, 204)
	got := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	if m, _ := got["members"].([]any); len(m) != 1 || get(m, 0, "value") != id2 || get(m, 0, "type") != "User" {
		t.Fatalf("members after swap: %v", got["members"])
	}
	rename := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{
		map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Renamed"}}}}
	e.do("PATCH", "/scim/v2/Groups/"+gid, rename).must(t, 204)
	if r := e.do("GET", "/scim/v2/Groups/"+gid+"?excludedAttributes=members", nil).must(t, 200); r["displayName"] != "Renamed" {
		t.Fatalf("rename: %v", r)
	}
	// AIW: PUT the whole member list.
	put := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Renamed",
		"members": []any{map[string]any{"value": id}, map[string]any{"value": id2}}}
	if r := e.do("PUT", "/scim/v2/Groups/"+gid, put).must(t, 200); len(r["members"].([]any)) != 2 {
		t.Fatalf("PUT members: %v", r["members"])
	}
	// The user's groups attribute reflects the membership.
	if r := e.do("GET", "/scim/v2/Users/"+id2, nil).must(t, 200); get(r, "groups", 0, "value") != gid {
		t.Fatalf("user groups: %v", r["groups"])
	}
	// Okta's spec test expects GET /Groups to answer.
	e.do("GET", "/scim/v2/Groups", nil).must(t, 200)
	e.do("DELETE", "/scim/v2/Groups/"+gid, nil).must(t, 204)
	e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 404)
	if r := e.do("GET", "/scim/v2/Users/"+id2, nil).must(t, 200); r["groups"] != nil {
		t.Fatalf("deleted group still listed on the user: %v", r["groups"])
	}
}
