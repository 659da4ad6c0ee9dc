package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

const groupURN = "urn:ietf:params:scim:schemas:core:2.0:Group"

// memberIDs returns the ids of a group's members.
func (e *testEnv) memberIDs(gid string) []string {
	e.t.Helper()
	var ids []string
	for _, m := range asList(e.do("GET", "/scim/v2/Groups/"+gid, nil).must(e.t, 200)["members"]) {
		ids = append(ids, str(get(m, "value")))
	}
	slices.Sort(ids)
	return ids
}

// TestMemberValuesReadAlike: a member carrying a sub-attribute the Group schema does not define
// (Microsoft's SCIM test collection sends displayName) is accepted, the key dropped, the same
// way by POST, PUT and PATCH.
func TestMemberValuesReadAlike(t *testing.T) {
	e := newEnv(t)
	u1, u2, u3 := e.createUser("m1@example.com", nil), e.createUser("m2@example.com", nil), e.createUser("m3@example.com", nil)
	member := func(id string) map[string]any { return map[string]any{"displayName": "new User", "value": id} }
	gid := str(e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{groupURN}, "displayName": "Lenient",
		"members": []any{member(u1)}}).must(t, 201)["id"])
	if got := e.memberIDs(gid); !slices.Equal(got, []string{u1}) {
		t.Fatalf("POST: members %v", got)
	}
	e.do("PUT", "/scim/v2/Groups/"+gid, map[string]any{"schemas": []string{groupURN}, "displayName": "Lenient",
		"members": []any{member(u2)}}).must(t, 200)
	if got := e.memberIDs(gid); !slices.Equal(got, []string{u2}) {
		t.Fatalf("PUT: members %v", got)
	}
	for _, o := range []map[string]any{
		op("add", "members", []any{member(u1)}),
		op("replace", "members", []any{member(u1), member(u2)}),
		op("add", "", map[string]any{"members": []any{member(u3)}}),
		op("remove", "members", []any{member(u3)}),
	} {
		e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(o)).must(t, 204)
	}
	want := []string{u1, u2}
	slices.Sort(want)
	if got := e.memberIDs(gid); !slices.Equal(got, want) {
		t.Fatalf("PATCH: members %v, want %v", got, want)
	}
	r := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	if _, ok := get(r, "members", 0).(map[string]any)["displayName"]; ok {
		t.Fatalf("an unknown member key was stored: %v", r["members"])
	}
	// What a member must be still holds, in all three.
	for _, bad := range []any{map[string]any{"displayName": "no value"}, map[string]any{"value": u1, "type": "Robot"}, map[string]any{"value": 7},
		map[string]any{"value": u1, "display": "a\x00b"}} {
		e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("add", "members", []any{bad}))).must(t, 400)
		e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{groupURN}, "displayName": "Bad", "members": []any{bad}}).must(t, 400)
	}
}

// TestPatchValuesAreReadLikeBodies: attributes and sub-attributes that no schema defines are
// ignored inside a PATCH value, as POST and PUT ignore them in a body; in a path they stay an
// error.
func TestPatchValuesAreReadLikeBodies(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("values@example.com", map[string]any{"name": map[string]any{"givenName": "Val"}})
	cases := []struct {
		name     string
		op       map[string]any
		status   int
		scimType string
		check    func(r map[string]any) bool
	}{
		{"unknown sub-attribute in a multi-valued value", op("add", "emails", []any{map[string]any{"value": "v@example.com", "type": "work", "label": "x"}}), 200, "",
			func(r map[string]any) bool {
				return get(r, "emails", 0, "value") == "v@example.com" && get(r, "emails", 0, "label") == nil
			}},
		{"unknown sub-attribute in a complex value", op("replace", "name", map[string]any{"familyName": "Ues", "shoeSize": 42}), 200, "",
			func(r map[string]any) bool {
				return get(r, "name", "familyName") == "Ues" && get(r, "name", "shoeSize") == nil
			}},
		{"unknown sub-attribute in a filtered element", op("replace", `emails[type eq "work"]`, map[string]any{"value": "w@example.com", "label": "x"}), 200, "",
			func(r map[string]any) bool {
				return get(r, "emails", 0, "value") == "w@example.com" && get(r, "emails", 0, "label") == nil
			}},
		{"unknown attribute in a path-less value", op("replace", "", map[string]any{"nickName": "Nick", "shoeSize": "42", "name.shoeSize": "1"}), 200, "",
			func(r map[string]any) bool { return r["nickName"] == "Nick" && r["shoeSize"] == nil }},
		{"unknown schema in a path-less value", op("replace", "", map[string]any{"title": "T", "urn:example:unknown:2.0:User:x": "y"}), 200, "",
			func(r map[string]any) bool { return r["title"] == "T" }},
		{"unknown attribute in an extension value", op("replace", "", map[string]any{enterpriseURN: map[string]any{"department": "D1", "shoeSize": "42"}}), 200, "",
			func(r map[string]any) bool {
				return get(r, enterpriseURN, "department") == "D1" && get(r, enterpriseURN, "shoeSize") == nil
			}},
		{"schemas inside the value of an extension path", op("replace", enterpriseURN, map[string]any{"schemas": []any{enterpriseURN}, "department": "X"}), 200, "",
			func(r map[string]any) bool {
				return get(r, enterpriseURN, "department") == "X" && get(r, enterpriseURN, "schemas") == nil
			}},
		{"unknown attribute in a path", op("replace", "shoeSize", "42"), 400, "invalidPath", nil},
		{"unknown sub-attribute in a path", op("replace", "name.shoeSize", "42"), 400, "invalidPath", nil},
		{"unknown schema in a path", op("replace", "urn:example:unknown:2.0:User:x", "42"), 400, "invalidPath", nil},
		{"unknown attribute of an extension in a path", op("replace", enterpriseURN+":schemas", []any{enterpriseURN}), 400, "invalidPath", nil},
		{"wrong type inside a value", op("add", "emails", []any{map[string]any{"value": "v@example.com", "primary": "maybe"}}), 400, "invalidValue", nil},
	}
	for _, tc := range cases {
		before := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		r := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(tc.op))
		switch {
		case r.status != tc.status:
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		case r.body["scimType"] != nil && r.body["scimType"] != tc.scimType:
			t.Errorf("%s: scimType %v", tc.name, r.body["scimType"])
		case tc.status == 400:
			if after := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("%s: a refused PATCH changed the user", tc.name)
			}
		case !tc.check(r.body):
			raw, _ := json.Marshal(r.body)
			t.Errorf("%s: %s", tc.name, raw)
		}
	}
}

// TestPatchPathToReadOnly: an operation whose path names a read-only attribute is refused with
// 400 mutability (RFC 7644 §3.5.2), for Users and Groups, whatever the op; the same attributes
// arriving as keys of a path-less value or in a PUT body are ignored, as Okta and Entra ID send
// them there.
func TestPatchPathToReadOnly(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("readonly@example.com", nil)
	gid := e.createGroup("Read-only", uid)
	userPaths := []string{"id", "meta", "meta.created", "schemas", "groups", `groups[value eq "` + gid + `"].display`,
		"urn:ietf:params:scim:schemas:core:2.0:User:id", enterpriseURN + ":manager.displayName",
		lifecycleURN + ":audited", lifecycleURN + ":auditReasons", lifecycleURN + ":campaignCount",
		lifecycleURN + ":lastInteractionAt", lifecycleURN + ":anonymizedAt"}
	groupPaths := []string{"id", "meta", "meta.lastModified", "schemas", "urn:ietf:params:scim:schemas:core:2.0:Group:id"}
	for _, c := range []struct {
		endpoint string
		paths    []string
	}{{"/scim/v2/Users/" + uid, userPaths}, {"/scim/v2/Groups/" + gid, groupPaths}} {
		before := e.do("GET", c.endpoint, nil).must(t, 200)
		for _, p := range c.paths {
			for _, o := range []map[string]any{op("replace", p, "hijack"), op("add", p, "hijack"), op("remove", p, nil)} {
				r := e.do("PATCH", c.endpoint, patchOp(o))
				if r.status != 400 || r.body["scimType"] != "mutability" {
					t.Errorf("%s %s %s: %d %v", c.endpoint, o["op"], p, r.status, r.body["scimType"])
				}
			}
		}
		if after := e.do("GET", c.endpoint, nil).must(t, 200); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: refused PATCHes changed the resource", c.endpoint)
		}
	}
	// Read-only keys in a path-less value, in an extension's value and in a PUT body are ignored.
	echo := map[string]any{"id": "hijack", "meta": map[string]any{"created": "2000-01-01T00:00:00Z"}, "schemas": []any{"x"},
		"groups": []any{}, "displayName": "Echoed", lifecycleURN + ":audited": true}
	r := e.do("PATCH", "/scim/v2/Users/"+uid, patchOp(op("replace", "", echo),
		op("replace", lifecycleURN, map[string]any{"campaignCount": 9, "auditReasons": []any{"campaign"}}))).must(t, 200)
	if r["id"] != uid || r["displayName"] != "Echoed" || get(r, lifecycleURN, "audited") != false || get(r, lifecycleURN, "campaignCount") != nil ||
		get(r, "groups", 0, "value") != gid || get(r, "meta", "created") == "2000-01-01T00:00:00Z" {
		t.Fatalf("path-less read-only keys: %v", r)
	}
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("replace", "", map[string]any{"id": "hijack", "meta": map[string]any{}, "displayName": "Renamed"}))).must(t, 204)
	full := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	full["id"], full["displayName"] = "hijack", "Put"
	if r := e.do("PUT", "/scim/v2/Groups/"+gid, full).must(t, 200); r["id"] != gid || r["displayName"] != "Put" {
		t.Fatalf("PUT with read-only keys: %v", r)
	}
}

// TestWriteAnswersAreWhatAReadGives: the answer to a PUT or PATCH, rendered from the record as
// the write stored it, is byte for byte what a GET right after returns, ETag included, for a
// user with groups and platform facts, as a user, a group and with a projection.
func TestWriteAnswersAreWhatAReadGives(t *testing.T) {
	e := newEnv(t)
	uid := e.createUser("answer@example.com", map[string]any{"displayName": "Before", "externalId": "ext-answer"})
	gid := e.createGroup("Answerers", uid)
	e.api("POST", "/api/v1/users/"+uid+"/interactions", map[string]any{"type": "login"}).must(t, 204)
	users, groups := "/scim/v2/Users/"+uid, "/scim/v2/Groups/"+gid
	for _, c := range []struct {
		name, method, path string
		body               any
	}{
		{"Entra PATCH", "PATCH", users, patchOp(op("Replace", "active", "False"), op("Replace", "displayName", "After"),
			op("Replace", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "Answers"))},
		{"Okta PATCH", "PATCH", users, patchOp(op("replace", "", map[string]any{"active": true, "name.givenName": "Ann"}))},
		{"PATCH that changes nothing", "PATCH", users, patchOp(op("replace", "displayName", "After"))},
		{"PUT", "PUT", users, userBody("answer@example.com", map[string]any{"displayName": "Put", "active": true})},
		{"PATCH with a projection", "PATCH", users + "?attributes=displayName,groups", patchOp(op("replace", "displayName", "Projected"))},
		{"group PUT", "PUT", groups, map[string]any{"schemas": []string{groupURN}, "displayName": "Renamed", "members": []any{map[string]any{"value": uid}}}},
		{"group PATCH asking for attributes", "PATCH", groups + "?excludedAttributes=members", patchOp(op("replace", "displayName", "Again"))},
	} {
		w := e.do(c.method, c.path, c.body)
		w.must(t, 200)
		r := e.do("GET", c.path, nil)
		r.must(t, 200)
		if string(w.raw) != string(r.raw) || w.header.Get("ETag") != r.header.Get("ETag") {
			t.Errorf("%s: answered %s %s\nGET gives %s %s", c.name, w.header.Get("ETag"), w.raw, r.header.Get("ETag"), r.raw)
		}
	}
	// The groups and facts were there to be rendered.
	u := e.do("GET", users, nil).must(t, 200)
	if len(asList(u["groups"])) != 1 || get(u, "urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User", "lastInteractionAt") == nil {
		t.Fatalf("the user shows no group or no login: %v", u)
	}
}
