package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// badCase is one hostile or malformed request and the SCIM error it must get.
type badCase struct {
	name, method, path string
	body               any
	status             int
	scimType           string
	headers            []string
}

const userURN = "urn:ietf:params:scim:schemas:core:2.0:User"

func userJSON(extra string) string {
	return `{"schemas":["` + userURN + `"],"userName":"hostile@example.com"` + extra + `}`
}

// hostileCases builds the table: more than 150 requests covering every kind of bad input.
func hostileCases(uid, gid, other string) []badCase {
	var cs []badCase
	add := func(c badCase) { cs = append(cs, c) }
	valid := userJSON(`,"name":{"givenName":"H","familyName":"X"},"emails":[{"value":"h@example.com","type":"work"}]`)

	// Broken and truncated JSON.
	for _, cut := range []int{1, 2, 10, 20, 40, 60, 80, 100, 120, len(valid) - 1} {
		add(badCase{fmt.Sprintf("truncated at %d", cut), "POST", "/scim/v2/Users", valid[:cut], 400, "invalidSyntax", nil})
	}
	for i, b := range []string{`{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{'a':1}`, `nul`, `[]`, `"x"`, `42`, `{"a":1}{"b":2}`, `{"a":1} x`, `{"a":"\x"}`, "{\"a\":\"\t\"}"} {
		add(badCase{fmt.Sprintf("malformed json %d", i), "POST", "/scim/v2/Users", b, 400, "invalidSyntax", nil})
		add(badCase{fmt.Sprintf("malformed patch json %d", i), "PATCH", "/scim/v2/Users/" + uid, b, 400, "invalidSyntax", nil})
	}

	// Wrong JSON types for every kind of attribute.
	wrong := map[string][]string{
		"userName (string)":          {`5`, `true`, `{}`, `[]`, `["a"]`},
		"active (boolean)":           {`"yes"`, `1`, `{}`, `[]`},
		"name (complex)":             {`"x"`, `5`, `[]`, `true`},
		"name.givenName (sub)":       {`{"givenName":5}`, `{"givenName":{}}`, `{"givenName":[]}`},
		"emails (multi complex)":     {`"a@b"`, `5`, `true`, `[5]`, `["a@b"]`, `[[]]`},
		"emails.primary (sub bool)":  {`[{"value":"a@b","primary":"maybe"}]`, `[{"value":"a@b","primary":5}]`},
		"profileUrl (reference)":     {`5`, `{}`, `[]`},
		"x509Certificates (binary)":  {`[{"value":"not base64!"}]`, `[{"value":5}]`},
		"enterprise (extension obj)": {`"x"`, `5`, `[]`},
	}
	for attr, values := range wrong {
		key := strings.Fields(attr)[0]
		for i, v := range values {
			body := ""
			switch {
			case key == "userName":
				body = `{"schemas":["` + userURN + `"],"userName":` + v + `}`
			case key == "name.givenName":
				body = userJSON(`,"name":` + v)
			case key == "emails.primary":
				body = userJSON(`,"emails":` + v)
			case key == "enterprise":
				body = userJSON(`,"` + enterpriseURN + `":` + v)
			default:
				body = userJSON(`,"` + key + `":` + v)
			}
			add(badCase{fmt.Sprintf("wrong type %s #%d", attr, i), "POST", "/scim/v2/Users", body, 400, "invalidValue", nil})
		}
	}
	for i, v := range []string{`5`, `true`, `{}`, `[]`} {
		add(badCase{fmt.Sprintf("group displayName wrong type #%d", i), "POST", "/scim/v2/Groups",
			`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":` + v + `}`, 400, "invalidValue", nil})
	}

	// Duplicate keys, at the top and nested, and in other letter cases.
	add(badCase{"duplicate key", "POST", "/scim/v2/Users", userJSON(`,"userName":"b"`), 400, "invalidSyntax", nil})
	add(badCase{"duplicate nested key", "POST", "/scim/v2/Users", userJSON(`,"name":{"givenName":"a","givenName":"b"}`), 400, "invalidSyntax", nil})
	add(badCase{"duplicate key other case", "POST", "/scim/v2/Users", userJSON(`,"USERNAME":"b"`), 400, "invalidSyntax", nil})
	add(badCase{"duplicate patch key", "PATCH", "/scim/v2/Users/" + uid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","op":"remove","path":"nickName"}]}`, 400, "invalidSyntax", nil})

	// Deep nesting.
	deep := strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000)
	add(badCase{"deep object", "POST", "/scim/v2/Users", deep, 400, "invalidSyntax", nil})
	add(badCase{"deep array", "POST", "/scim/v2/Users", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, "invalidSyntax", nil})
	add(badCase{"deep in attribute", "POST", "/scim/v2/Users", userJSON(`,"name":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000)), 400, "invalidSyntax", nil})
	add(badCase{"deep patch", "PATCH", "/scim/v2/Users/" + uid, deep, 400, "invalidSyntax", nil})
	add(badCase{"deep search", "POST", "/scim/v2/Users/.search", deep, 400, "invalidSyntax", nil})

	// Huge strings and arrays, oversized bodies.
	add(badCase{"huge body", "POST", "/scim/v2/Users", userJSON(`,"nickName":"` + strings.Repeat("x", 2<<20) + `"`), 413, "", nil})
	add(badCase{"huge patch", "PATCH", "/scim/v2/Users/" + uid, strings.Repeat(" ", 2<<20), 413, "", nil})
	add(badCase{"long userName", "POST", "/scim/v2/Users", `{"schemas":["` + userURN + `"],"userName":"` + strings.Repeat("u", 5000) + `"}`, 400, "invalidValue", nil})
	add(badCase{"long externalId", "POST", "/scim/v2/Users", userJSON(`,"externalId":"` + strings.Repeat("e", 5000) + `"`), 400, "invalidValue", nil})
	add(badCase{"long displayName group", "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + strings.Repeat("g", 5000) + `"}`, 400, "invalidValue", nil})
	add(badCase{"huge array", "POST", "/scim/v2/Users", userJSON(`,"emails":[` + strings.TrimSuffix(strings.Repeat(`{"value":"a"},`, 5000), ",") + `]`), 400, "invalidValue", nil})
	add(badCase{"huge header", "GET", "/scim/v2/Users", nil, 431, "", []string{"X-Padding", strings.Repeat("p", 70<<10)}})

	// NUL bytes and invalid UTF-8.
	add(badCase{"NUL in userName", "POST", "/scim/v2/Users", `{"schemas":["` + userURN + `"],"userName":"a\u0000b"}`, 400, "invalidValue", nil})
	add(badCase{"NUL in nested value", "POST", "/scim/v2/Users", userJSON(`,"name":{"givenName":"a\u0000"}`), 400, "invalidValue", nil})
	add(badCase{"NUL in patch value", "PATCH", "/scim/v2/Users/" + uid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nickName","value":"a\u0000"}]}`, 400, "invalidValue", nil})
	add(badCase{"raw NUL byte", "POST", "/scim/v2/Users", "{\"schemas\":[\"" + userURN + "\"],\"userName\":\"a\x00b\"}", 400, "invalidSyntax", nil})
	for i, b := range []string{"\xff", "\xc3\x28", "\xe2\x82", "\xf0\x28\x8c\xbc", "\xed\xa0\x80"} {
		add(badCase{fmt.Sprintf("invalid utf-8 #%d", i), "POST", "/scim/v2/Users", `{"schemas":["` + userURN + `"],"userName":"x` + b + `"}`, 400, "invalidSyntax", nil})
		add(badCase{fmt.Sprintf("invalid utf-8 in patch #%d", i), "PATCH", "/scim/v2/Users/" + uid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nickName","value":"x` + b + `"}]}`, 400, "invalidSyntax", nil})
	}

	// Names that fold onto an existing userName are the same userName.
	for _, n := range []string{"EXISTING@EXAMPLE.COM", "Existing@Example.com", "existing@example.com"} {
		add(badCase{"case variant " + n, "POST", "/scim/v2/Users", `{"schemas":["` + userURN + `"],"userName":"` + n + `"}`, 409, "uniqueness", nil})
	}
	add(badCase{"group name case variant", "POST", "/scim/v2/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"EXISTING GROUP"}`, 409, "uniqueness", nil})

	// Invalid and pathological filters.
	filters := []string{`userName eq`, `userName eq "a" or 1 eq 1`, `(userName eq "a"`, `userName eq "a")`, `((((userName eq "a"`,
		`userName xx "a"`, `userName eq 'a'`, `userName eq a`, `eq "a"`, `userName`, `not userName eq "a"`, `userName eq "a" and`,
		`or userName eq "a"`, `emails[type eq "work"`, `emails[type eq "work"]]`, `emails[]`, `nope eq "x"`, `name.nope eq "x"`,
		`urn:nope:User:userName eq "x"`, `active gt true`, `active eq "true"`, `active co "t"`, `meta.created gt "not a date"`,
		`meta.created eq 5`, `name eq "x"`, `emails[value eq "a"].type eq "work"`, `userName eq "a"` + strings.Repeat(` or userName eq "b"`, 200),
		strings.Repeat("(", 3000) + `userName eq "a"` + strings.Repeat(")", 3000), `userName eq "` + strings.Repeat("a", 5000) + `"`,
		`emails[type eq "work" and emails[value eq "x"]]`, `userName eq "a" and not`, `userName pr pr`, "\x00", `userName eq "\u0000"x`,
	}
	for i, f := range filters {
		add(badCase{fmt.Sprintf("filter #%d", i), "GET", "/scim/v2/Users?filter=" + url.QueryEscape(f), nil, 400, "invalidFilter", nil})
	}
	for i, f := range filters[:10] {
		body, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}, "filter": f})
		add(badCase{fmt.Sprintf("search filter #%d", i), "POST", "/scim/v2/Users/.search", string(body), 400, "invalidFilter", nil})
	}
	add(badCase{"group filter unknown attr", "GET", "/scim/v2/Groups?filter=" + url.QueryEscape(`userName eq "x"`), nil, 400, "invalidFilter", nil})

	// Invalid PATCH paths, ops and bodies.
	patchBad := []struct {
		body, scimType string
	}{
		{`{"Operations":[{"op":"add","path":"nickName","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:x"],"Operations":[{"op":"add","path":"nickName","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":{}}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[5]}`, "invalidSyntax"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"merge","path":"nickName","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":5,"path":"nickName","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"path":"nickName","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"nope","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"name.nope","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails[","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails[nope eq \"x\"].value","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"nickName[value eq \"x\"]","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"urn:nope:attr","value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":5,"value":"x"}]}`, "invalidPath"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove"}]}`, "noTarget"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"maybe"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":5}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails","value":"x"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","value":"notanobject"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"userName"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nickName"}]}`, "invalidValue"},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"nickName","value":"ok"},{"op":"add","path":"nope","value":1}]}`, "invalidPath"},
	}
	for i, p := range patchBad {
		add(badCase{fmt.Sprintf("patch #%d", i), "PATCH", "/scim/v2/Users/" + uid, p.body, 400, p.scimType, nil})
	}
	add(badCase{"patch member unknown", "PATCH", "/scim/v2/Groups/" + gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"nope"}]}]}`, 400, "invalidValue", nil})
	add(badCase{"patch member no value", "PATCH", "/scim/v2/Groups/" + gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"display":"x"}]}]}`, 400, "invalidValue", nil})
	add(badCase{"patch group to itself", "PATCH", "/scim/v2/Groups/" + gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + gid + `"}]}]}`, 400, "invalidValue", nil})
	add(badCase{"patch group rename clash", "PATCH", "/scim/v2/Groups/" + other, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"existing group"}]}`, 409, "uniqueness", nil})

	// Ids with path tricks; unknown ids.
	for _, p := range []string{"/scim/v2/Users/..%2F..%2Fetc", "/scim/v2/Users/a%2Fb", "/scim/v2/Users/%2e%2e", "/scim/v2/Users/../Groups/x",
		"/scim/v2/Users/" + url.PathEscape("x'; DROP"), "/scim/v2/Users/%00", "/scim/v2/Groups/" + uid, "/scim/v2/Users/" + gid} {
		add(badCase{"id " + p, "GET", p, nil, 404, "", nil})
		add(badCase{"delete id " + p, "DELETE", p, nil, 404, "", nil})
	}

	// Paging parameters that are not integers, and bad sort orders.
	for _, q := range []string{"startIndex=a", "count=1.5", "count=0x10", "startIndex=1e3", "sortOrder=up", "count=", "startIndex=%20"} {
		if strings.HasSuffix(q, "=") || strings.HasSuffix(q, "%20") {
			continue // empty values mean "not given"
		}
		add(badCase{"query " + q, "GET", "/scim/v2/Users?" + q, nil, 400, "invalidValue", nil})
	}

	// Media types, methods, routes.
	for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "bogus/"} {
		add(badCase{"content-type " + ct, "POST", "/scim/v2/Users", valid, 415, "", []string{"Content-Type", ct}})
	}
	for _, m := range []struct{ method, path string }{{"PUT", "/scim/v2/Users"}, {"DELETE", "/scim/v2/Users"}, {"PATCH", "/scim/v2/Groups"},
		{"GET", "/scim/v2/Users/.search"}, {"POST", "/scim/v2/Users/" + uid}, {"DELETE", "/scim/v2/ServiceProviderConfig"},
		{"POST", "/scim/v2/Schemas"}, {"PUT", "/scim/v2/ResourceTypes"}, {"GET", "/scim/v2/.search"}, {"DELETE", "/scim/v2/"}} {
		add(badCase{"method " + m.method + " " + m.path, m.method, m.path, nil, 405, "", nil})
	}
	for _, p := range []string{"/scim/v2/Bogus", "/scim/v3/Users", "/scim/Users", "/admin", "/scim/v2/Users/x/y"} {
		add(badCase{"route " + p, "GET", p, nil, 404, "", nil})
	}
	// Search bodies.
	add(badCase{"search without schema", "POST", "/scim/v2/Users/.search", `{"filter":"userName pr"}`, 400, "invalidValue", nil})
	add(badCase{"search wrong types", "POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"count":"ten"}`, 400, "invalidValue", nil})
	add(badCase{"search bad sort", "POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"sortOrder":"up"}`, 400, "invalidValue", nil})
	return cs
}

// TestHostileInput sends every bad request and checks the exact SCIM error, that nothing in
// the store changed (the audit trail would have grown), and that no answer is a 5xx.
func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("existing@example.com", map[string]any{"nickName": "n"})
	gid := e.createGroup("Existing group")
	cases := hostileCases(uid, gid, e.createGroup("Other group"))
	if len(cases) < 150 {
		t.Fatalf("only %d cases", len(cases))
	}
	snapshot := func() string {
		u := e.do("GET", "/scim/v2/Users?count=1000", nil).must(t, 200)
		g := e.do("GET", "/scim/v2/Groups?count=1000", nil).must(t, 200)
		a := e.api("GET", "/api/v1/audit?limit=1000", nil).must(t, 200)
		return fmt.Sprint(u, g, len(a["events"].([]any)))
	}
	before := snapshot()
	for _, c := range cases {
		r := e.do(c.method, c.path, c.body, c.headers...)
		if r.status != c.status || (c.scimType != "" && r.body["scimType"] != c.scimType) {
			t.Errorf("%s: got %d %v, want %d %s", c.name, r.status, r.body["scimType"], c.status, c.scimType)
		}
		if r.status >= 500 {
			t.Errorf("%s: server error %s", c.name, r.raw)
		}
	}
	if after := snapshot(); after != before {
		t.Fatal("a rejected request changed the stored state")
	}
	t.Logf("%d hostile requests", len(cases))
}

// TestLookalikesAreDistinct: a userName that only looks like another (Cyrillic a) is another
// userName; one that folds to it is the same.
func TestLookalikesAreDistinct(t *testing.T) {
	e := newEnv(t)
	e.createUser("admin@example.com", nil)
	e.createUser("\u0430dmin@example.com", nil) // Cyrillic а
	if r := e.do("GET", filterURL("Users", `userName eq "admin@example.com"`), nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("lookalike matched: %v", r["totalResults"])
	}
	if r := e.do("POST", "/scim/v2/Users", userBody("ADMIN@EXAMPLE.COM", nil)); r.status != http.StatusConflict {
		t.Fatalf("case variant: %d", r.status)
	}
}
