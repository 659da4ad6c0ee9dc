package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// TestRemoveMembersWhere: members removed by filters on something other than their id, which
// are matched in a snapshot before the write (see TestMembersMatchedOffTheWriterStayCurrent for
// a group that changes in between).
func TestRemoveMembersWhere(t *testing.T) {
	e := newEnv(t)
	ann, bea, cy := e.createUser("ann@example.com", nil), e.createUser("bea@example.com", nil), e.createUser("cy@example.com", nil)
	dee := e.createUser("dee@example.com", nil)
	nested := e.createGroup("nested")
	names := map[string]string{ann: "ann", bea: "bea", cy: "cy", dee: "dee", nested: "nested"}
	annRef := str(e.do("GET", "/scim/v2/Users/"+ann, nil).must(t, 200)["meta"].(map[string]any)["location"])
	for i, tc := range []struct {
		name, ops string
		headers   func(etag string) []string
		status    int
		left      []string
	}{
		{name: "by display", ops: `{"op":"remove","path":"members[display sw \"Eng\"]"}`, status: 204, left: []string{"cy", "nested"}},
		{name: "by type", ops: `{"op":"remove","path":"members[type eq \"Group\"]"}`, status: 204, left: []string{"ann", "bea", "cy"}},
		{name: "by a negation", ops: `{"op":"remove","path":"members[not (display sw \"Eng\")]"}`, status: 204, left: []string{"ann", "bea"}},
		{name: "matching none", ops: `{"op":"remove","path":"members[display eq \"nobody\"]"}`, status: 204, left: []string{"ann", "bea", "cy", "nested"}},
		{name: "a member added before the filter in the same PATCH",
			ops:    fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q,"display":"Eng Dee"}]},{"op":"remove","path":"members[display sw \"Eng\"]"}`, dee),
			status: 204, left: []string{"cy", "nested"}},
		{name: "a member added after it",
			ops:    fmt.Sprintf(`{"op":"remove","path":"members[display sw \"Eng\"]"},{"op":"add","path":"members","value":[{"value":%q,"display":"Eng Dee"}]}`, dee),
			status: 204, left: []string{"cy", "dee", "nested"}},
		{name: "a member re-added without a display keeps the one the filter matches",
			ops:    fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q}]},{"op":"remove","path":"members[display sw \"Eng\"]"}`, ann),
			status: 204, left: []string{"cy", "nested"}},
		{name: "a member re-added without a type has its kind's",
			ops:    fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q}]},{"op":"remove","path":"members[type eq \"Group\"]"}`, nested),
			status: 204, left: []string{"ann", "bea", "cy"}},
		{name: "a replay keeps no display with a NUL", // the fold drops dee (no type given), the replay keeps it (a User)
			ops:    fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q,"display":"x\u0000"}]},{"op":"remove","path":"members[not (type eq \"User\")]"}`, dee),
			status: 400, left: []string{"ann", "bea", "cy", "nested"}},
		{name: "by the reference a read shows", ops: fmt.Sprintf(`{"op":"remove","path":"members[$ref eq \"%s\"]"}`, annRef), status: 204, left: []string{"bea", "cy", "nested"}},
		{name: "by a part of the reference", ops: `{"op":"remove","path":"members[$ref co \"/Groups/\"]"}`, status: 204, left: []string{"ann", "bea", "cy"}},
		{name: "by a reference present", ops: `{"op":"remove","path":"members[$ref pr]"}`, status: 204, left: nil},
		{name: "by a negation joined to another comparison", ops: `{"op":"remove","path":"members[$ref pr and not (display sw \"Eng\")]"}`, status: 204, left: []string{"ann", "bea"}},
		{name: "a member added with a reference of its own is matched by the server's",
			ops:    fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q,"$ref":"https://elsewhere.example/Groups/x"}]},{"op":"remove","path":"members[$ref co \"/Users/\"]"}`, dee),
			status: 204, left: []string{"nested"}},
		{name: "by three ids", ops: fmt.Sprintf(`{"op":"remove","path":"members[value eq \"%s\" or value eq \"%s\" or value eq \"%s\"]"}`, ann, bea, cy), status: 204, left: []string{"nested"}},
		{name: "with a filter and an id", ops: fmt.Sprintf(`{"op":"remove","path":"members[display eq \"Eng Ann\" or value eq \"%s\"]"}`, cy), status: 204, left: []string{"bea", "nested"}},
		{name: "under the current ETag", ops: `{"op":"remove","path":"members[display sw \"Eng\"]"}`,
			headers: func(etag string) []string { return []string{"If-Match", etag} }, status: 204, left: []string{"cy", "nested"}},
		{name: "under a stale ETag", ops: `{"op":"remove","path":"members[display sw \"Eng\"]"}`,
			headers: func(string) []string { return []string{"If-Match", `W/"999"`} }, status: 412, left: []string{"ann", "bea", "cy", "nested"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gid := str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"displayName": fmt.Sprint("team ", i), "members": []any{
					map[string]any{"value": ann, "display": "Eng Ann"}, map[string]any{"value": bea, "display": "Eng Bea"},
					map[string]any{"value": cy, "display": "Ops Cy"}, map[string]any{"value": nested, "display": "Nested"}}}).must(t, 201)["id"])
			etag := e.version("/scim/v2/Groups/" + gid)
			var headers []string
			if tc.headers != nil {
				headers = tc.headers(etag)
			}
			r := e.do("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+tc.ops+`]}`, headers...)
			if r.status != tc.status {
				t.Fatalf("PATCH: %d %s, want %d", r.status, r.raw, tc.status)
			}
			var left []string
			members, _ := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)["members"].([]any) // absent when none is left
			for _, m := range members {
				left = append(left, names[str(m.(map[string]any)["value"])])
			}
			slices.Sort(left)
			if !slices.Equal(left, tc.left) {
				t.Fatalf("members left %q, want %q", left, tc.left)
			}
			if changed := e.version("/scim/v2/Groups/"+gid) != etag; changed != (len(tc.left) != 4) {
				t.Errorf("ETag changed: %v, with members left %q", changed, left)
			}
		})
	}
}

// TestMemberFiltersAgreeWithListings: a member filter selects the same members in a PATCH's
// removal as in a listing's members[...] filter, which are evaluated apart: a group is listed by
// the filter exactly when the removal takes a member from a copy of it.
func TestMemberFiltersAgreeWithListings(t *testing.T) {
	e := newEnv(t)
	ann, cy := e.createUser("ann@example.com", nil), e.createUser("cy@example.com", nil)
	nested := e.createGroup("nested")
	annRef := str(e.do("GET", "/scim/v2/Users/"+ann, nil).must(t, 200)["meta"].(map[string]any)["location"])
	for i, f := range []string{
		`display sw "Eng"`, `display eq "eng ann"`, `display co "y"`, `not (display pr)`, `display eq "nobody"`,
		`type eq "Group"`, `type eq "group"`, `not (type eq "User")`, `display co "y" and type eq "User"`,
		`value eq "` + cy + `"`, `value eq "` + cy + `" or display sw "Nes"`,
		`$ref pr`, `$ref co "/Groups/"`, `$ref eq "` + annRef + `"`, `$ref ew "/Users/` + ann + `"`, `$ref sw "/Users/"`,
		`display sw "Eng" and not (type eq "Group")`, `not (type eq "User") or display eq "Ops Cy"`,
		`(display sw "E" or display sw "O") and not ($ref co "/Users/")`, `not (display pr) and type eq "User"`,
	} {
		t.Run(f, func(t *testing.T) {
			gid := str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
				"displayName": fmt.Sprint("copy ", i), "members": []any{
					map[string]any{"value": ann, "display": "Eng Ann"}, map[string]any{"value": cy, "display": "Ops Cy"},
					map[string]any{"value": nested}}}).must(t, 201)["id"])
			listed := e.do("GET", "/scim/v2/Groups?filter="+url.QueryEscape(fmt.Sprintf(`id eq "%s" and members[%s]`, gid, f)), nil).must(t, 200)["totalResults"] == 1.0
			path, _ := json.Marshal("members[" + f + "]")
			e.do("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":`+string(path)+`}]}`).must(t, 204)
			members, _ := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)["members"].([]any)
			if removed := len(members) < 3; removed != listed {
				t.Errorf("the listing's filter selects the group: %v; the PATCH removed a member: %v (%d left)", listed, removed, len(members))
			}
		})
	}
}

// TestRemoveMembersWhereBounded: matching a group's members with filters stops at the scan
// budget with 400 tooMany, changing nothing and naming no member; removals by id are not bounded
// by it; and a body whose filters would each be compared with thousands of members it adds is
// refused before the group is read.
func TestRemoveMembersWhereBounded(t *testing.T) {
	e := newEnvService(t, filepath.Join(t.TempDir(), "data.db"), scimserver.Options{ScanTimeout: time.Nanosecond}, Options{})
	admin := e.adminToken()
	var members []any
	for i := range 130 {
		members = append(members, map[string]any{"value": e.createUser(fmt.Sprintf("w%03d@example.com", i), nil), "display": fmt.Sprintf("Secret Person %03d", i)})
	}
	gid := str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "big", "members": members}).must(t, 201)["id"])
	etag := e.version("/scim/v2/Groups/" + gid)
	patch := func(ops string) resp {
		return e.do("PATCH", "/scim/v2/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+ops+`]}`)
	}
	r := patch(`{"op":"remove","path":"members[display sw \"Secret Person 00\"]"}`)
	if r.status != 400 || r.body["scimType"] != "tooMany" || strings.Contains(string(r.raw), "Secret") {
		t.Fatalf("filter past the budget: %d %s", r.status, r.raw)
	}
	if n := e.metric(admin, "scimserver_query_scans_stopped_total", `reason="budget"`); n != 1 {
		t.Errorf("scans stopped for the budget: %v, want 1", n)
	}
	if e.version("/scim/v2/Groups/"+gid) != etag {
		t.Error("a refused PATCH changed the group")
	}
	patch(fmt.Sprintf(`{"op":"remove","path":"members[value eq \"%s\"]"}`, get(members[0].(map[string]any), "value"))).must(t, 204)

	// Members given with a display are matched by the fold; without one they keep the one they
	// have, and the operations are replayed: both are refused before the group is read.
	for _, member := range []string{`{"value":"%08d-0000-4000-8000-000000000000","display":"Secret Person"}`, `{"value":"%08d-0000-4000-8000-000000000000"}`} {
		adds := make([]string, 1002)
		for i := range adds {
			adds[i] = fmt.Sprintf(member, i)
		}
		ops := []string{`{"op":"add","path":"members","value":[` + strings.Join(adds, ",") + `]}`}
		for i := range 999 {
			ops = append(ops, fmt.Sprintf(`{"op":"remove","path":"members[display eq \"Secret %d\"]"}`, i))
		}
		scans := e.metric(admin, "scimserver_query_scans_stopped_total", `reason="budget"`)
		r = patch(strings.Join(ops, ","))
		if r.status != 400 || r.body["scimType"] != "tooMany" || strings.Contains(string(r.raw), "Secret") {
			t.Fatalf("filters after 1,002 adds like %s: %d %s", member, r.status, r.raw)
		}
		if got := e.metric(admin, "scimserver_query_scans_stopped_total", `reason="budget"`); got != scans {
			t.Errorf("filters after 1,002 adds like %s: refused by a scan (scans stopped %v -> %v), not before it", member, scans, got)
		}
	}
}
