package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

func userBody(userName string, extra map[string]any) map[string]any {
	m := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func (e *testEnv) createUser(userName string, extra map[string]any) string {
	e.t.Helper()
	return str(e.do("POST", "/scim/v2/Users", userBody(userName, extra)).must(e.t, 201)["id"])
}

func (e *testEnv) createGroup(name string, members ...string) string {
	e.t.Helper()
	ms := []any{}
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	return str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name, "members": ms}).must(e.t, 201)["id"])
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	spc := e.do("GET", "/scim/v2/ServiceProviderConfig", nil).must(t, 200)
	for _, k := range []string{"patch", "filter", "sort", "etag"} {
		if get(spc, k, "supported") != true {
			t.Errorf("ServiceProviderConfig %s.supported = %v", k, get(spc, k, "supported"))
		}
	}
	if get(spc, "bulk", "supported") != false || get(spc, "filter", "maxResults") != float64(1000) ||
		get(spc, "authenticationSchemes", 0, "type") != "oauthbearertoken" {
		t.Errorf("ServiceProviderConfig: %v", spc)
	}
	rts := e.do("GET", "/scim/v2/ResourceTypes", nil).must(t, 200)
	if rts["totalResults"] != float64(2) {
		t.Fatalf("ResourceTypes: %v", rts)
	}
	user := e.do("GET", "/scim/v2/ResourceTypes/User", nil).must(t, 200)
	if get(user, "schemaExtensions", 0, "schema") != enterpriseURN || user["endpoint"] != "/Users" {
		t.Fatalf("User resource type: %v", user)
	}
	all := e.do("GET", "/scim/v2/Schemas", nil).must(t, 200)
	ids := map[string]map[string]any{}
	for _, s := range all["Resources"].([]any) {
		ids[str(get(s, "id"))] = s.(map[string]any)
	}
	for _, id := range []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:Group", enterpriseURN} {
		if ids[id] == nil {
			t.Fatalf("/Schemas lacks %s", id)
		}
		one := e.do("GET", "/scim/v2/Schemas/"+id, nil).must(t, 200)
		if one["id"] != id {
			t.Fatalf("/Schemas/%s: %v", id, one)
		}
	}
	for _, a := range ids["urn:ietf:params:scim:schemas:core:2.0:User"]["attributes"].([]any) {
		switch get(a, "name") {
		case "userName":
			if get(a, "caseExact") != false || get(a, "uniqueness") != "server" || get(a, "required") != true {
				t.Errorf("userName characteristics: %v", a)
			}
		case "password":
			if get(a, "returned") != "never" || get(a, "mutability") != "writeOnly" {
				t.Errorf("password characteristics: %v", a)
			}
		}
	}
	for _, a := range ids["urn:ietf:params:scim:schemas:core:2.0:Group"]["attributes"].([]any) {
		if get(a, "name") == "displayName" && get(a, "uniqueness") != "server" {
			t.Errorf("Group displayName must say it is unique: %v", a)
		}
	}
	// Unsupported methods on discovery endpoints are 405, unknown routes 404, both SCIM errors.
	for _, path := range []string{"/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas", "/scim/v2/ResourceTypes"} {
		e.do("POST", path, "{}").must(t, http.StatusMethodNotAllowed)
		e.do("DELETE", path, nil).must(t, http.StatusMethodNotAllowed)
	}
	e.do("GET", "/scim/v2/Nope", nil).must(t, 404)
	e.do("GET", "/nope", nil).must(t, 404)
	e.do("DELETE", "/scim/v2/Users", nil).must(t, http.StatusMethodNotAllowed)
}

func TestPathsInAnyCaseAndTrailingSlash(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("case@example.com", nil)
	for _, p := range []string{"/scim/v2/users", "/scim/v2/Users/", "/scim/v2/USERS?count=5", "/scim/v2/users/" + id, "/scim/v2/Users/" + id + "/"} {
		r := e.do("GET", p, nil).must(t, 200)
		if r["id"] != id && r["totalResults"] != float64(1) {
			t.Fatalf("%s: %v", p, r)
		}
	}
	e.do("POST", "/scim/v2/groups/", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "g"}).must(t, 201)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, header string }{
		{"none", ""}, {"wrong", "Bearer nope"}, {"basic", "Basic dXNlcjpwYXNz"}, {"empty bearer", "Bearer "},
	} {
		r := e.doAs("", "GET", "/scim/v2/Users", nil, "Authorization", tc.header)
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %v", tc.name, r.status, r.header)
		}
	}
	// health endpoints need no token.
	e.doAs("", "GET", "/healthz", nil).must(t, 200)
	e.doAs("", "GET", "/readyz", nil).must(t, 200)
}

func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.CreateTenant(bg, testActor, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	_, other, err := e.svc.CreateToken(bg, testActor, tokenSpec("acme"))
	if err != nil {
		t.Fatal(err)
	}
	id := e.createUser("shared@example.com", nil)
	gid := e.createGroup("Shared")
	// Another tenant sees none of it, and may reuse the same names.
	e.doAs(other, "GET", "/scim/v2/Users/"+id, nil).must(t, 404)
	e.doAs(other, "GET", "/scim/v2/Groups/"+gid, nil).must(t, 404)
	e.doAs(other, "PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "active", false))).must(t, 404)
	e.doAs(other, "DELETE", "/scim/v2/Users/"+id, nil).must(t, 404)
	if r := e.doAs(other, "GET", filterURL("Users", `userName eq "shared@example.com"`), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("filter crossed tenants: %v", r)
	}
	if r := e.doAs(other, "GET", "/scim/v2/Users", nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("list crossed tenants: %v", r)
	}
	e.doAs(other, "POST", "/scim/v2/Users", userBody("shared@example.com", nil)).must(t, 201)
	// A group of one tenant cannot reference a user of another.
	r := e.doAs(other, "POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "x", "members": []any{map[string]any{"value": id}}})
	if r.status != 400 || r.body["scimType"] != "invalidValue" {
		t.Fatalf("cross-tenant member: %d %v", r.status, r.body)
	}
	// Revocation takes effect on the next request.
	toks, _ := e.svc.Tokens(bg, "acme")
	if _, err := e.svc.RevokeToken(bg, testActor, "", toks[0].ID); err != nil {
		t.Fatal(err)
	}
	e.doAs(other, "GET", "/scim/v2/Users", nil).must(t, 401)
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	a := e.createUser("alice@example.com", map[string]any{"displayName": "Alice", "active": true, "externalId": "ext-A",
		"name":   map[string]any{"givenName": "Alice", "familyName": "Archer"},
		"emails": []any{map[string]any{"value": "alice@work.example", "type": "work", "primary": true}, map[string]any{"value": "alice@home.example", "type": "home"}},
		"title":  "Engineer", enterpriseURN: map[string]any{"department": "R&D", "employeeNumber": "100"}})
	b := e.createUser("bob@example.com", map[string]any{"displayName": "Bob", "active": false, "externalId": "ext-B",
		"name":   map[string]any{"givenName": "Bob", "familyName": "Baker"},
		"emails": []any{map[string]any{"value": "bob@work.example", "type": "work"}}, enterpriseURN: map[string]any{"department": "Sales"}})
	c := e.createUser("carol@example.org", map[string]any{"name": map[string]any{"givenName": "Carol"}})
	g := e.createGroup("Engineers", a, b)
	cases := []struct {
		filter string
		want   []string
	}{
		{`userName eq "ALICE@example.com"`, []string{a}},
		{`userName ne "alice@example.com"`, []string{b, c}},
		{`userName co "EXAMPLE"`, []string{a, b, c}},
		{`userName sw "bo"`, []string{b}},
		{`userName ew ".org"`, []string{c}},
		{`title pr`, []string{a}},
		{`not (title pr)`, []string{b, c}},
		{`active eq true`, []string{a}},
		{`active eq false`, []string{b}},
		{`userName gt "bob@example.com"`, []string{c}},
		{`userName ge "bob@example.com"`, []string{b, c}},
		{`userName lt "bob"`, []string{a}},
		{`userName le "bob@example.com"`, []string{a, b}},
		{`externalId eq "ext-A"`, []string{a}},
		{`externalId eq "EXT-A"`, nil},
		{`id eq "` + b + `"`, []string{b}},
		{`id eq "` + a + `" or id eq "` + c + `"`, []string{a, c}},
		{`name.givenName eq "carol"`, []string{c}},
		{`emails.value eq "BOB@work.example"`, []string{b}},
		{`emails eq "alice@home.example"`, []string{a}},
		{`emails[type eq "work" and primary eq true]`, []string{a}},
		{`emails[type eq "home"] or userName eq "carol@example.org"`, []string{a, c}},
		{`(userName sw "a" or userName sw "b") and active eq false`, []string{b}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"`, []string{b}},
		{enterpriseURN + `:department eq "sales"`, []string{b}},
		{enterpriseURN + `:employeeNumber pr and userName sw "a"`, []string{a}},
		{`meta.created gt "2000-01-01T00:00:00Z"`, []string{a, b, c}},
		{`meta.lastModified lt "2000-01-01T00:00:00Z"`, nil},
		{`groups.value eq "` + g + `"`, []string{a, b}},
		{`userName eq "nobody"`, nil},
	}
	for _, tc := range cases {
		r := e.do("GET", filterURL("Users", tc.filter, "count=1000"), nil).must(t, 200)
		var got []string
		for _, res := range r["Resources"].([]any) {
			got = append(got, str(get(res, "id")))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || r["totalResults"] != float64(len(tc.want)) {
			t.Errorf("%s: got %v (total %v), want %v", tc.filter, got, r["totalResults"], tc.want)
		}
	}
	// The same through POST /.search.
	r := e.do("POST", "/scim/v2/Users/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter": `userName sw "a"`, "attributes": []string{"userName"}}).must(t, 200)
	if r["totalResults"] != float64(1) || get(r, "Resources", 0, "userName") != "alice@example.com" || get(r, "Resources", 0, "name") != nil {
		t.Fatalf(".search: %v", r)
	}
	// Invalid filters are 400 invalidFilter, never 5xx.
	for _, f := range []string{`userName eq`, `userName eq "a" or 1 eq 1`, `(userName eq "a"`, `userName zz "a"`, `nope eq "a"`,
		`active gt true`, `active eq "yes"`, `meta.created gt "yesterday"`, `name eq "x"`, `userName eq "a"` + strings.Repeat(` or userName eq "a"`, 100),
		`emails[type eq "work"].value eq "x"`} {
		r := e.do("GET", filterURL("Users", f), nil)
		if r.status != 400 || r.body["scimType"] != "invalidFilter" {
			t.Errorf("%q: %d %v", f, r.status, r.body)
		}
	}
}

func TestRootQuery(t *testing.T) {
	e := newEnv(t)
	u := e.createUser("root@example.com", nil)
	g := e.createGroup("Root group")
	r := e.do("GET", "/scim/v2/?count=10", nil).must(t, 200)
	if r["totalResults"] != float64(2) {
		t.Fatalf("root list: %v", r)
	}
	r = e.do("GET", "/scim/v2/?filter="+strings.ReplaceAll(`displayName eq "Root group"`, " ", "%20"), nil).must(t, 200)
	if r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != g {
		t.Fatalf("root filter: %v", r)
	}
	r = e.do("POST", "/scim/v2/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
		"filter": `userName eq "root@example.com"`}).must(t, 200)
	if r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != u {
		t.Fatalf("root search: %v", r)
	}
}

func TestPagingAndSorting(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 150; i++ {
		ids = append(ids, e.createUser(fmt.Sprintf("user%03d@example.com", 149-i), nil))
	}
	seen := map[string]bool{}
	for start := 1; start <= 150; start += 100 {
		r := e.do("GET", fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=100", start), nil).must(t, 200)
		if r["startIndex"] != float64(start) || r["totalResults"] != float64(150) {
			t.Fatalf("page %d: %v %v", start, r["startIndex"], r["totalResults"])
		}
		for _, res := range r["Resources"].([]any) {
			id := str(get(res, "id"))
			if seen[id] {
				t.Fatalf("id %s on two pages", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 150 {
		t.Fatalf("paging saw %d of 150", len(seen))
	}
	// A remembered page end must not survive a deletion that shifts the positions after it.
	e.do("GET", "/scim/v2/Users?startIndex=1&count=10", nil).must(t, 200)
	e.do("DELETE", "/scim/v2/Users/"+ids[3], nil).must(t, 204)
	if r := e.do("GET", "/scim/v2/Users?startIndex=11&count=1", nil).must(t, 200); get(r, "Resources", 0, "id") != ids[11] {
		t.Fatalf("page after a deletion starts at %v, want %s", get(r, "Resources", 0, "id"), ids[11])
	}
	ids = append(ids[:3], ids[4:]...)
	r := e.do("GET", "/scim/v2/Users?startIndex=6&count=5", nil).must(t, 200)
	if r["startIndex"] != float64(6) || r["itemsPerPage"] != float64(5) || get(r, "Resources", 0, "id") != ids[5] {
		t.Fatalf("startIndex=6&count=5: %v", r)
	}
	r = e.do("GET", "/scim/v2/Users?sortBy=userName&count=2", nil).must(t, 200)
	if get(r, "Resources", 0, "userName") != "user000@example.com" || get(r, "Resources", 1, "userName") != "user001@example.com" {
		t.Fatalf("sort ascending: %v", r["Resources"])
	}
	r = e.do("GET", "/scim/v2/Users?sortBy=userName&sortOrder=descending&count=1&filter="+strings.ReplaceAll(`userName sw "user1"`, " ", "%20"), nil).must(t, 200)
	if get(r, "Resources", 0, "userName") != "user149@example.com" || r["totalResults"] != float64(49) {
		t.Fatalf("sort descending with filter: %v", r)
	}
	// Out-of-range paging values are clamped; non-integers are refused.
	for _, q := range []string{"startIndex=-5", "startIndex=0", "count=-1", "count=99999999999999999999", "startIndex=99999999999999999999"} {
		e.do("GET", "/scim/v2/Users?"+q, nil).must(t, 200)
	}
	if r := e.do("GET", "/scim/v2/Users?count=-1", nil).must(t, 200); len(r["Resources"].([]any)) != 0 || r["totalResults"] != float64(149) {
		t.Fatalf("count=-1: %v", r["totalResults"])
	}
	for _, q := range []string{"startIndex=abc", "count=1.5", "sortOrder=sideways"} {
		if r := e.do("GET", "/scim/v2/Users?"+q, nil); r.status != 400 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
}

func TestProjection(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("proj@example.com", map[string]any{"displayName": "P", "name": map[string]any{"givenName": "G", "familyName": "F"},
		"emails": []any{map[string]any{"value": "p@example.com", "type": "work"}}, enterpriseURN: map[string]any{"department": "D", "costCenter": "C"},
		"password": "secret-password"})
	r := e.do("GET", "/scim/v2/Users/"+id+"?attributes=userName,name.givenName,emails.value,"+enterpriseURN+":department", nil).must(t, 200)
	if r["id"] != id || r["userName"] != "proj@example.com" || get(r, "name", "givenName") != "G" || get(r, "name", "familyName") != nil ||
		get(r, "emails", 0, "value") != "p@example.com" || get(r, "emails", 0, "type") != nil || r["displayName"] != nil ||
		get(r, enterpriseURN, "department") != "D" || get(r, enterpriseURN, "costCenter") != nil || r["schemas"] == nil {
		t.Fatalf("attributes: %v", r)
	}
	r = e.do("GET", "/scim/v2/Users/"+id+"?excludedAttributes=name,emails,id,"+enterpriseURN, nil).must(t, 200)
	if r["name"] != nil || r["emails"] != nil || r["id"] != id || r["displayName"] != "P" || r[enterpriseURN] != nil {
		t.Fatalf("excludedAttributes: %v", r)
	}
	if s := fmt.Sprint(r["schemas"]); strings.Contains(s, "enterprise") {
		t.Fatalf("schemas lists an extension that was excluded: %s", s)
	}
	// Writes answer with the projected resource too, and never the password.
	r = e.do("PATCH", "/scim/v2/Users/"+id+"?attributes=displayName", patchOp(op("replace", "displayName", "Q"))).must(t, 200)
	if r["displayName"] != "Q" || r["userName"] != nil || r["password"] != nil {
		t.Fatalf("patch projection: %v", r)
	}
	r = e.do("GET", "/scim/v2/Users?attributes=password,userName", nil).must(t, 200)
	if get(r, "Resources", 0, "password") != nil {
		t.Fatal("password returned on request")
	}
}

func TestVersions(t *testing.T) {
	e := newEnv(t)
	created := e.do("POST", "/scim/v2/Users", userBody("etag@example.com", nil))
	u := created.must(t, 201)
	id := str(u["id"])
	v1 := created.header.Get("ETag")
	if v1 == "" || v1 != str(get(u, "meta", "version")) {
		t.Fatalf("ETag %q vs meta.version %v", v1, get(u, "meta", "version"))
	}
	if r := e.do("GET", "/scim/v2/Users/"+id, nil, "If-None-Match", v1); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match current: %d", r.status)
	}
	upd := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "x")), "If-Match", v1)
	v2 := upd.header.Get("ETag")
	if upd.status != 200 || v2 == v1 || str(get(upd.body, "meta", "version")) != v2 {
		t.Fatalf("version must change: %s -> %s", v1, v2)
	}
	if get(upd.body, "meta", "lastModified") == get(u, "meta", "lastModified") && get(upd.body, "meta", "created") != get(u, "meta", "created") {
		t.Fatalf("meta: %v", upd.body["meta"])
	}
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "y")), "If-Match", v1).must(t, 412)
	e.do("PUT", "/scim/v2/Users/"+id, userBody("etag@example.com", nil), "If-Match", v1).must(t, 412)
	e.do("DELETE", "/scim/v2/Users/"+id, nil, "If-Match", v1).must(t, 412)
	e.do("GET", "/scim/v2/Users/"+id, nil, "If-None-Match", v1).must(t, 200)
	// A PATCH that changes nothing keeps the version.
	same := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "x")))
	if same.must(t, 200); same.header.Get("ETag") != v2 {
		t.Fatalf("no-op patch changed the version: %s -> %s", v2, same.header.Get("ETag"))
	}
	e.do("DELETE", "/scim/v2/Users/"+id, nil, "If-Match", v2).must(t, 204)
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("bad@example.com", nil)
	long := strings.Repeat("x", 3000)
	cases := []struct {
		name, method, path string
		body               any
		status             int
		scimType           string
		headers            []string
	}{
		{"truncated json", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"`, 400, "invalidSyntax", nil},
		{"not an object", "POST", "/scim/v2/Users", `["x"]`, 400, "invalidSyntax", nil},
		{"empty body", "POST", "/scim/v2/Users", ``, 400, "invalidSyntax", nil},
		{"duplicate keys", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","userName":"b"}`, 400, "invalidSyntax", nil},
		{"deep nesting", "POST", "/scim/v2/Users", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, "invalidSyntax", nil},
		{"invalid utf-8", "POST", "/scim/v2/Users", "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"\xff\xfe\"}", 400, "invalidSyntax", nil},
		{"missing schemas", "POST", "/scim/v2/Users", `{"userName":"x"}`, 400, "invalidSyntax", nil},
		{"missing userName", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`, 400, "invalidValue", nil},
		{"userName number", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":5}`, 400, "invalidValue", nil},
		{"active string", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"y","active":"maybe"}`, 400, "invalidValue", nil},
		{"emails object", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"y","emails":"a@b"}`, 400, "invalidValue", nil},
		{"userName too long", "POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + long + `"}`, 400, "invalidValue", nil},
		{"group without name", "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]}`, 400, "invalidValue", nil},
		{"unknown member", "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"g","members":[{"value":"nope"}]}`, 400, "invalidValue", nil},
		{"member without value", "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"g","members":[{"display":"x"}]}`, 400, "invalidValue", nil},
		{"unsupported media type", "POST", "/scim/v2/Users", `{}`, 415, "", []string{"Content-Type", "text/plain"}},
		{"too large", "POST", "/scim/v2/Users", `{"userName":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "", nil},
		{"patch no ops", "PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`, 400, "invalidValue", nil},
		{"patch bad op", "PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"merge","path":"x","value":1}]}`, 400, "invalidValue", nil},
		{"patch bad path", "PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nope","value":1}]}`, 400, "invalidPath", nil},
		{"patch remove without path", "PATCH", "/scim/v2/Users/" + id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove"}]}`, 400, "noTarget", nil},
		{"patch unknown id", "PATCH", "/scim/v2/Users/nope", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`, 404, "", nil},
		{"put unknown id", "PUT", "/scim/v2/Users/nope", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"q"}`, 404, "", nil},
		{"dot-dot id", "GET", "/scim/v2/Users/../Groups", nil, 404, "", nil},
		{"escaped slash id", "GET", "/scim/v2/Users/a%2Fb", nil, 404, "", nil},
		{"search without schema", "POST", "/scim/v2/Users/.search", `{"filter":"userName eq \"x\""}`, 400, "invalidValue", nil},
	}
	for _, tc := range cases {
		before := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		r := e.do(tc.method, tc.path, tc.body, tc.headers...)
		if r.status != tc.status || (tc.scimType != "" && r.body["scimType"] != tc.scimType) {
			t.Errorf("%s: %d %v, want %d %s", tc.name, r.status, r.body, tc.status, tc.scimType)
		}
		after := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("%s changed the stored user", tc.name)
		}
	}
	if r := e.do("GET", "/scim/v2/Users", nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("a bad request created something: %v", r["totalResults"])
	}
}

func TestRestartKeepsDataAndTokens(t *testing.T) {
	path := t.TempDir() + "/data.db"
	e := newEnvAt(t, path)
	id := e.createUser("persist@example.com", map[string]any{"displayName": "Persist"})
	gid := e.createGroup("Persisted", id)
	e.close()
	e2 := newEnvAt(t, path)
	if r := e2.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); r["displayName"] != "Persist" || get(r, "groups", 0, "value") != gid {
		t.Fatalf("after restart: %v", r)
	}
	if r := e2.do("GET", filterURL("Users", `userName eq "persist@example.com"`), nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("index after restart: %v", r)
	}
}

func tokenSpec(tenant string) scimserver.TokenSpec {
	return scimserver.TokenSpec{Tenant: tenant, Name: "test", Scopes: []string{scimserver.ScopeSCIM}}
}

// TestLogsHoldNoSecrets runs a provisioning session at debug level and scans every log line
// for the token and the personal values used: none may appear.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t)
	secrets := []string{testToken, "Zebulon", "Quixley", "zq.personal@example.com", "+1-555-0199", "ext-zq-771", "Hunter2Secret"}
	id := e.createUser("zq.personal@example.com", map[string]any{"name": map[string]any{"givenName": "Zebulon", "familyName": "Quixley"},
		"phoneNumbers": []any{map[string]any{"value": "+1-555-0199"}}, "externalId": "ext-zq-771", "password": "Hunter2Secret"})
	e.do("POST", "/scim/v2/Users", userBody("zq.personal@example.com", nil)).must(t, 409)
	e.do("GET", filterURL("Users", `userName eq "zq.personal@example.com"`), nil).must(t, 200)
	e.do("GET", filterURL("Users", `userName eq "Zebulon`), nil).must(t, 400)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "nickName", "Zebulon"))).must(t, 200)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "nope", "Quixley"))).must(t, 400)
	e.doAs("Zebulon", "GET", "/scim/v2/Users", nil).must(t, 401)
	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	logs := e.logText()
	if strings.Count(logs, "\n") < 8 {
		t.Fatalf("expected a log line per request, got %q", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains %q", s)
		}
	}
}

// TestFailedAuthenticationIsThrottled: repeated bad tokens from one address end in 429 with
// Retry-After, while a valid token from the same address keeps working.
func TestFailedAuthenticationIsThrottled(t *testing.T) {
	e := newEnv(t)
	limited := 0
	for i := 0; i < 40; i++ {
		r := e.doAs("wrong-token", "GET", "/scim/v2/Users", nil)
		switch r.status {
		case 401:
		case 429:
			limited++
			if r.header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("bad token: %d", r.status)
		}
	}
	if limited < 15 {
		t.Fatalf("only %d of 40 bad attempts were throttled", limited)
	}
	e.do("GET", "/scim/v2/Users", nil).must(t, 200)
}

func TestFailureLimiterRefills(t *testing.T) {
	now := time.Unix(0, 0)
	l := newFailureLimiter(2, time.Second)
	l.now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		if l.fail("a") != 0 {
			t.Fatalf("failure %d of a burst of 2 was limited", i+1)
		}
	}
	if wait := l.fail("a"); wait <= 0 || wait > time.Second {
		t.Fatalf("third failure: wait %v", wait)
	}
	if l.fail("b") != 0 {
		t.Fatal("another address was limited")
	}
	now = now.Add(2 * time.Second)
	if l.fail("a") != 0 {
		t.Fatal("bucket did not refill")
	}
}

// TestUserVersionFollowsGroups: a user's groups are part of its representation, so joining or
// leaving a group gives the user a new ETag (a conditional GET must not answer 304).
func TestUserVersionFollowsGroups(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("joiner@example.com", nil)
	v1 := e.do("GET", "/scim/v2/Users/"+id, nil).header.Get("ETag")
	gid := e.createGroup("joined", id)
	r := e.do("GET", "/scim/v2/Users/"+id, nil, "If-None-Match", v1)
	if r.status != 200 || get(r.body, "groups", 0, "value") != gid {
		t.Fatalf("after joining a group: %d %v", r.status, r.body["groups"])
	}
	v2 := r.header.Get("ETag")
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("replace", "displayName", "renamed"))).must(t, 204)
	r = e.do("GET", "/scim/v2/Users/"+id, nil, "If-None-Match", v2)
	if r.status != 200 || get(r.body, "groups", 0, "display") != "renamed" {
		t.Fatalf("after the group's rename: %d %v", r.status, r.body["groups"])
	}
	v2 = r.header.Get("ETag")
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("remove", `members[value eq "`+id+`"]`, nil))).must(t, 204)
	r = e.do("GET", "/scim/v2/Users/"+id, nil, "If-None-Match", v2)
	if r.status != 200 || r.body["groups"] != nil {
		t.Fatalf("after leaving the group: %d %v", r.status, r.body)
	}
	// A member added by PATCH: the user's old ETag no longer matches a write's If-Match.
	v3 := r.header.Get("ETag")
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).must(t, 204)
	stale := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "stale")), "If-Match", v3)
	if stale.status != 412 || stale.body["status"] != "412" {
		t.Fatalf("PATCH with the ETag from before the member add: %d %v, want 412", stale.status, stale.body)
	}
	r = e.do("GET", "/scim/v2/Users/"+id, nil)
	v4 := r.header.Get("ETag")
	if v4 == v3 || get(r.body, "meta", "version") != v4 || get(r.body, "groups", 0, "value") != gid {
		t.Fatalf("after the member add: ETag %s (before %s), meta %v, groups %v", v4, v3, r.body["meta"], r.body["groups"])
	}
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "fresh")), "If-Match", v4).must(t, 200)
}

// TestPasswordByPatch: a password set by PATCH is accepted, never returned, and recorded in the
// trail by name only.
func TestPasswordByPatch(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("pw@example.com", nil)
	for _, body := range []map[string]any{patchOp(op("replace", "password", "S3cret-by-path")), patchOp(op("replace", "", map[string]any{"password": "S3cret-by-map"}))} {
		r := e.do("PATCH", "/scim/v2/Users/"+id, body).must(t, 200)
		if r["password"] != nil {
			t.Fatal("password returned")
		}
	}
	a := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	if !strings.Contains(string(e.api("GET", "/api/v1/users/"+id+"/audit", nil).raw), `"password"`) || strings.Contains(fmt.Sprint(a), "S3cret") {
		t.Fatalf("trail: %v", a["trail"])
	}
	var hash []byte
	_ = e.store.Read(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		u, err := tx.Get(users, id)
		hash = u.Secret
		return err
	})
	if !strings.HasPrefix(string(hash), "pbkdf2-sha256$") || strings.Contains(string(hash), "S3cret") {
		t.Fatalf("stored password %q", hash)
	}
}

// TestSortedByName: a listing sorted by userName (displayName for Groups) and nothing else is
// read from the name index; it must give exactly what the general sort gives (the same query
// with a filter every record passes), in both orders and at every page.
func TestSortedByName(t *testing.T) {
	e := newEnv(t)
	for i, n := range []string{"bob", "Alice", "carol", "ALBERT", "alfred", "Zoë", "zed", "Émile", "_x", "b0b", "Bobby"} {
		e.createUser(n+"@example.com", nil)
		e.createGroup(fmt.Sprintf("%s team %d", n, i))
	}
	ids := func(path string) ([]string, any) {
		r := e.do("GET", path, nil).must(t, 200)
		var out []string
		for _, res := range r["Resources"].([]any) {
			out = append(out, str(get(res, "id")))
		}
		return out, r["totalResults"]
	}
	for _, c := range []struct{ endpoint, attr string }{{"Users", "userName"}, {"Groups", "displayName"}} {
		for _, order := range []string{"ascending", "descending"} {
			for _, page := range []string{"", "&startIndex=3&count=4", "&startIndex=10&count=5", "&startIndex=50", "&count=0"} {
				q := fmt.Sprintf("/scim/v2/%s?sortBy=%s&sortOrder=%s%s", c.endpoint, c.attr, order, page)
				got, gotTotal := ids(q)
				want, wantTotal := ids(q + "&filter=" + c.attr + "%20pr")
				if !slices.Equal(got, want) || gotTotal != wantTotal || (page == "" && len(got) != 11) {
					t.Errorf("%s: %v (total %v), the general sort gives %v (total %v)", q, got, gotTotal, want, wantTotal)
				}
			}
		}
	}
}

// TestDeepPages: pages far into a long list (beyond the store's blocks of 1,024 ids) start at
// the right record whether they are reached by walking, by jumping, after more records were
// created, or after a deletion shifted every position.
func TestDeepPages(t *testing.T) {
	e := newEnv(t)
	const block = 1024
	const n = 2*block + 500
	ids := make([]string, 0, n)
	err := e.store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		ids = ids[:0]
		for i := 0; i < n; i++ {
			id, err := putRecord(tx, users, map[string]any{"userName": fmt.Sprintf("deep%05d", i)})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := func(start int) string {
		r := e.do("GET", fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=3", start), nil).must(t, 200)
		return str(get(r, "Resources", 0, "id"))
	}
	for _, start := range []int{2*block + 7, block, block + 1, 3, 2*block + 7, n} {
		if got := at(start); got != ids[start-1] {
			t.Fatalf("startIndex %d: got %s, want %s", start, got, ids[start-1])
		}
	}
	later := e.createUser("later@example.com", nil)
	if got := at(n + 1); got != later {
		t.Fatalf("a user created after the first pages: got %s", got)
	}
	e.do("DELETE", "/scim/v2/Users/"+ids[10], nil).must(t, 204)
	ids = append(ids[:10], ids[11:]...)
	for _, start := range []int{2*block + 7, block + 1} {
		if got := at(start); got != ids[start-1] {
			t.Fatalf("after a deletion, startIndex %d: got %s, want %s", start, got, ids[start-1])
		}
	}
}

// TestCreateAnswerIsTheResource: the 201 of a POST, rendered from the document just written,
// is byte for byte what a GET of the new resource answers, with the same ETag — for a user with
// an extension, a group without members, a group with one, and with a projection.
func TestCreateAnswerIsTheResource(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("plain@example.com", nil)
	for _, c := range []struct {
		path  string
		body  any
		query string
	}{
		{"/scim/v2/Users", userBody("written@example.com", map[string]any{"displayName": "W", "emails": []any{map[string]any{"value": "w@example.com", "type": "work"}},
			enterpriseURN: map[string]any{"department": "D"}}), ""},
		{"/scim/v2/Users", userBody("projected@example.com", nil), "?attributes=userName"},
		{"/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "empty"}, ""},
		{"/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "one",
			"members": []any{map[string]any{"value": uid}}}, ""},
	} {
		created := e.do("POST", c.path+c.query, c.body)
		if created.status != 201 {
			t.Fatalf("POST %s: %d %s", c.path, created.status, created.raw)
		}
		id := str(created.body["id"])
		got := e.do("GET", c.path+"/"+id+c.query, nil)
		if !bytes.Equal(created.raw, got.raw) || created.header.Get("ETag") != got.header.Get("ETag") ||
			!strings.HasSuffix(created.header.Get("Location"), c.path+"/"+id) {
			t.Errorf("POST %s%s answered (ETag %s, Location %s)\n%s\nGET answers (ETag %s)\n%s", c.path, c.query, created.header.Get("ETag"),
				created.header.Get("Location"), created.raw, got.header.Get("ETag"), got.raw)
		}
	}
}

// TestGroupPatchAnswersItsVersion: a group PATCH answers 204 without the group, but with its
// ETag as the PATCH left it, so that a client's next conditional request needs no read first;
// a member change moves it without writing the group's document.
func TestGroupPatchAnswersItsVersion(t *testing.T) {
	e := newEnv(t)
	ann, bea := e.createUser("ann@example.com", nil), e.createUser("bea@example.com", nil)
	gid := e.createGroup("versions", ann)
	for _, tc := range []struct {
		name    string
		body    any
		changes bool
	}{
		{"a member added", patchOp(op("add", "members", []any{map[string]any{"value": bea}})), true},
		{"a member added again", patchOp(op("add", "members", []any{map[string]any{"value": bea}})), false},
		{"a member's display", patchOp(op("add", "members", []any{map[string]any{"value": bea, "display": "Bea"}})), true},
		{"a member removed", patchOp(op("remove", `members[value eq "`+ann+`"]`, nil)), true},
		{"a rename", patchOp(op("replace", "displayName", "renamed")), true},
		{"the same name", patchOp(op("replace", "displayName", "renamed")), false},
		{"members replaced", patchOp(op("replace", "members", []any{map[string]any{"value": ann}})), true},
		{"a rename and a member added together", patchOp(op("replace", "displayName", "again"), op("add", "members", []any{map[string]any{"value": bea}})), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.version("/scim/v2/Groups/" + gid)
			r := e.do("PATCH", "/scim/v2/Groups/"+gid, tc.body, "If-Match", before)
			r.must(t, 204)
			got, now := r.header.Get("ETag"), e.version("/scim/v2/Groups/"+gid)
			if got != now {
				t.Fatalf("PATCH answered ETag %q; the group is at %q", got, now)
			}
			if changed := now != before; changed != tc.changes {
				t.Errorf("ETag %q -> %q: changed %v, want %v", before, now, changed, tc.changes)
			}
		})
	}
}
