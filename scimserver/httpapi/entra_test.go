package httpapi

import (
	"encoding/json"
	"net/url"
	"testing"
)

const enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func patchOp(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": list}
}

func op(kind, path string, value any) map[string]any {
	m := map[string]any{"op": kind}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

func filterURL(endpoint, f string, extra ...string) string {
	u := "/scim/v2/" + endpoint + "?filter=" + url.QueryEscape(f)
	for _, x := range extra {
		u += "&" + x
	}
	return u
}

// TestEntraSequence replays what Microsoft Entra ID sends (/shared/idp-behaviour.md §2):
// GUID test connection, userName and externalId matching, create with meta/roles and the
// extension not in schemas, legacy and flagged PATCH shapes, manager, deactivation with "False",
// and group provisioning with excludedAttributes=members and membership checks.
func TestEntraSequence(t *testing.T) {
	e := newEnv(t)
	// Test connection: a random GUID as userName, with the compatibility flag in the query.
	r := e.do("GET", filterURL("Users", `userName eq "3e59e27b-68ad-41f5-bb0e-dadf130e2ac8"`, "aadOptscim062020"), nil).must(t, 200)
	if r["totalResults"] != float64(0) || len(r["Resources"].([]any)) != 0 {
		t.Fatalf("test connection: %v", r)
	}
	create := map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", enterpriseURN},
		"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_ab6490ee", "active": true,
		"emails":      []any{map[string]any{"primary": true, "type": "work", "value": "Test_User_ab6490ee@testuser.com"}},
		"meta":        map[string]any{"resourceType": "User"},
		"name":        map[string]any{"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
		"roles":       []any{},
		enterpriseURN: map[string]any{"department": "Retail"},
	}
	u := e.do("POST", "/scim/v2/Users", create).must(t, 201)
	id := str(u["id"])
	if get(u, enterpriseURN, "department") != "Retail" {
		t.Fatalf("extension attributes: %v", u)
	}
	mgr := e.do("POST", "/scim/v2/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": "manager@contoso.com"}).must(t, 201)
	mid := str(mgr["id"])

	for _, f := range []string{`userName eq "test_user_AB6490EE"`, `externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		`emails.value eq "TEST_USER_ab6490ee@testuser.com"`,
		`emails[type eq "work" and value eq "Test_User_ab6490ee@testuser.com"]`} {
		r := e.do("GET", filterURL("Users", f), nil).must(t, 200)
		if r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != id {
			t.Fatalf("%s: %v", f, r)
		}
	}
	// externalId is case-exact.
	if r := e.do("GET", filterURL("Users", `externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"`), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("externalId must match exactly: %v", r)
	}

	// Legacy PATCH: capitalised ops, paths, an address created through a filter path.
	legacy := patchOp(
		op("Replace", `emails[type eq "work"].value`, "updatedEmail@microsoft.com"),
		op("Replace", "name.familyName", "updatedFamilyName"),
		op("Replace", `addresses[type eq "work"].formatted`, "18/2111"),
		op("Add", enterpriseURN+":department", "Sales"),
		op("Replace", "externalId", "Eqpj"),
		op("Add", "nickName", "Babs"),
	)
	r = e.do("PATCH", "/scim/v2/Users/"+id, legacy).must(t, 200)
	if get(r, "emails", 0, "value") != "updatedEmail@microsoft.com" || get(r, "name", "familyName") != "updatedFamilyName" ||
		get(r, "addresses", 0, "formatted") != "18/2111" || get(r, "addresses", 0, "type") != "work" ||
		get(r, enterpriseURN, "department") != "Sales" || r["externalId"] != "Eqpj" || r["nickName"] != "Babs" {
		t.Fatalf("legacy patch: %v", r)
	}
	// The index follows the change: the old email no longer matches, the new one does.
	if r := e.do("GET", filterURL("Users", `emails.value eq "Test_User_ab6490ee@testuser.com"`), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("stale email index: %v", r)
	}
	if r := e.do("GET", filterURL("Users", `externalId eq "Eqpj"`), nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("new externalId index: %v", r)
	}
	// With aadOptscim062020: a path-less value map with dotted and URN keys.
	flag := patchOp(op("replace", "", map[string]any{"displayName": "Bjfe", "name.givenName": "Kkom",
		"name.familyName": "Unua", enterpriseURN + ":employeeNumber": "Aklq"}))
	r = e.do("PATCH", "/scim/v2/Users/"+id+"?aadOptscim062020", flag).must(t, 200)
	if r["displayName"] != "Bjfe" || get(r, "name", "givenName") != "Kkom" || get(r, enterpriseURN, "employeeNumber") != "Aklq" {
		t.Fatalf("path-less patch: %v", r)
	}
	// Manager as a bare id; returned in the complex form; removed with "".
	r = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("Add", enterpriseURN+":manager", mid))).must(t, 200)
	if get(r, enterpriseURN, "manager", "value") != mid {
		t.Fatalf("manager: %v", r[enterpriseURN])
	}
	r = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", enterpriseURN+":manager", ""))).must(t, 200)
	if get(r, enterpriseURN, "manager") != nil {
		t.Fatalf("manager not removed: %v", r[enterpriseURN])
	}
	// Deactivation, legacy string and flagged boolean.
	r = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("Replace", "active", "False"))).must(t, 200)
	if r["active"] != false {
		t.Fatalf("active \"False\": %v", r["active"])
	}
	if r := e.do("GET", filterURL("Users", `userName eq "Test_User_ab6490ee"`), nil).must(t, 200); get(r, "Resources", 0, "active") != false {
		t.Fatalf("disabled user must be found with active false: %v", r)
	}
	r = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "active", true))).must(t, 200)
	if r["active"] != true || r["id"] != id {
		t.Fatalf("restore: %v", r)
	}
	// Null update: "" and null clear optional attributes.
	r = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "", map[string]any{"nickName": ""}), op("replace", "displayName", json.RawMessage("null")))).must(t, 200)
	if _, ok := r["nickName"]; ok {
		t.Fatalf("nickName not cleared: %v", r)
	}
	if _, ok := r["displayName"]; ok {
		t.Fatalf("displayName not cleared: %v", r)
	}

	// Groups.
	g := e.do("POST", "/scim/v2/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group",
		"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"}, "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
		"displayName": "displayName", "meta": map[string]any{"resourceType": "Group"}}).must(t, 201)
	gid := str(g["id"])
	r = e.do("GET", filterURL("Groups", `displayName eq "DISPLAYNAME"`, "excludedAttributes=members"), nil).must(t, 200)
	if r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != gid {
		t.Fatalf("group match: %v", r)
	}
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("Add", "members", []any{map[string]any{"$ref": nil, "value": id},
		map[string]any{"$ref": nil, "value": mid}}))).must(t, 204)
	if r := e.do("GET", "/scim/v2/Groups/"+gid+"?excludedAttributes=members", nil).must(t, 200); r["members"] != nil {
		t.Fatalf("excludedAttributes=members returned members")
	}
	for _, f := range []string{`members[value eq "` + id + `"]`, `id eq "` + gid + `" and members[value eq "` + id + `"]`} {
		r := e.do("GET", filterURL("Groups", f, "attributes=id"), nil).must(t, 200)
		if r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != gid || get(r, "Resources", 0, "displayName") != nil {
			t.Fatalf("%s: %v", f, r)
		}
	}
	// Legacy removal with a value array removes only those members.
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("Remove", "members", []any{map[string]any{"$ref": nil, "value": id}}))).must(t, 204)
	r = e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	if m, _ := r["members"].([]any); len(m) != 1 || get(m, 0, "value") != mid {
		t.Fatalf("legacy remove: %v", r["members"])
	}
	// Flagged removal by filter, and a rename, in one PATCH.
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("remove", `members[value eq "`+mid+`"]`, nil),
		op("Replace", "displayName", "renamed"))).must(t, 204)
	r = e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	if r["members"] != nil || r["displayName"] != "renamed" {
		t.Fatalf("after remove+rename: %v", r)
	}
	if r := e.do("GET", filterURL("Groups", `members[value eq "`+id+`"]`), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("membership index after removal: %v", r)
	}
	e.do("DELETE", "/scim/v2/Groups/"+gid, nil).must(t, 204)
	if r := e.do("GET", filterURL("Groups", `displayName eq "renamed"`), nil).must(t, 200); r["totalResults"] != float64(0) {
		t.Fatalf("deleted group still found: %v", r)
	}
	// A user who is not audited is deleted for real and the userName is free again.
	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 404)
	e.do("POST", "/scim/v2/Users", create).must(t, 201)
}
