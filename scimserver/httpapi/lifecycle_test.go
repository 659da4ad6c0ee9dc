package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver"
)

const lifecycleURN = schemas.LifecycleURN

func TestPlatformAPI(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("p@example.com", nil)
	cases := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"login", "POST", "/api/v1/users/" + id + "/interactions", map[string]any{"type": "login"}, 204},
		{"password with time", "POST", "/api/v1/users/" + id + "/interactions", map[string]any{"type": "password_set", "at": time.Now().UTC().Format(time.RFC3339Nano)}, 204},
		{"bad type", "POST", "/api/v1/users/" + id + "/interactions", map[string]any{"type": "dance"}, 400},
		{"bad time", "POST", "/api/v1/users/" + id + "/interactions", map[string]any{"type": "login", "at": "yesterday"}, 400},
		{"bad json", "POST", "/api/v1/users/" + id + "/interactions", "{", 400},
		{"unknown user", "POST", "/api/v1/users/nope/interactions", map[string]any{"type": "login"}, 404},
		{"assign", "PUT", "/api/v1/campaigns/c1/participants/" + id, nil, 204},
		{"assign again", "PUT", "/api/v1/campaigns/c1/participants/" + id, nil, 204},
		{"assign unknown user", "PUT", "/api/v1/campaigns/c1/participants/nope", nil, 404},
		{"unassign", "DELETE", "/api/v1/campaigns/c1/participants/" + id, nil, 204},
		{"audit of unknown user", "GET", "/api/v1/users/nope/audit", nil, 404},
		{"bad limit", "GET", "/api/v1/audit?limit=0", nil, 400},
		{"bad cursor", "GET", "/api/v1/audit?cursor=x", nil, 400},
		{"bad since", "GET", "/api/v1/audit?since=x", nil, 400},
	}
	for _, tc := range cases {
		if r := e.api(tc.method, tc.path, tc.body); r.status != tc.status {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	a := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	if a["audited"] != true || fmt.Sprint(a["auditReasons"]) != "[interacted campaign]" || a["campaignCount"] != float64(1) ||
		a["interactions"] != float64(2) || len(a["currentCampaigns"].([]any)) != 0 {
		t.Fatalf("user audit: %v", a)
	}
	var ops []string
	for _, ev := range a["trail"].([]any) {
		ops = append(ops, str(get(ev, "operation")))
	}
	if strings.Join(ops, ",") != "campaign-unassign,campaign-assign,interaction,interaction,create" {
		t.Fatalf("user trail: %v", ops)
	}
	// Scope separation: SCIM tokens cannot call the platform API and platform tokens cannot call SCIM.
	e.do("GET", "/api/v1/audit", nil).must(t, 401)
	e.api("GET", "/scim/v2/Users", nil).must(t, 401)
	_, both, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Scopes: []string{scimserver.ScopeSCIM, scimserver.ScopePlatform}})
	if err != nil {
		t.Fatal(err)
	}
	e.doAs(both, "GET", "/scim/v2/Users", nil).must(t, 200)
	e.doAs(both, "GET", "/api/v1/audit", nil).must(t, 200)
	// Tenant isolation for the platform API and the trail.
	if _, err := e.svc.CreateTenant(bg, testActor, "other", ""); err != nil {
		t.Fatal(err)
	}
	_, other, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: "other", Scopes: []string{scimserver.ScopePlatform}})
	if err != nil {
		t.Fatal(err)
	}
	e.doAs(other, "POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(t, 404)
	e.doAs(other, "PUT", "/api/v1/campaigns/c1/participants/"+id, nil).must(t, 404)
	e.doAs(other, "GET", "/api/v1/users/"+id+"/audit", nil).must(t, 404)
	if r := e.doAs(other, "GET", "/api/v1/audit?resourceId="+id, nil).must(t, 200); len(r["events"].([]any)) != 0 {
		t.Fatalf("another tenant sees the trail: %v", r)
	}
}

func TestDeleteAuditedUserDeactivates(t *testing.T) {
	e := newEnv(t)
	body := userBody("kept@example.com", map[string]any{"displayName": "Kept", "name": map[string]any{"givenName": "K"}})
	id := str(e.do("POST", "/scim/v2/Users", body).must(t, 201)["id"])
	gid := e.createGroup("Keepers", id)
	e.api("PUT", "/api/v1/campaigns/c9/participants/"+id, nil).must(t, 204)
	e.api("DELETE", "/api/v1/campaigns/c9/participants/"+id, nil).must(t, 204)
	before := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	if get(before, lifecycleURN, "audited") != true || fmt.Sprint(get(before, lifecycleURN, "auditReasons")) != "[campaign]" {
		t.Fatalf("lifecycle extension: %v", before[lifecycleURN])
	}

	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	after := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	if after["active"] != false || after["displayName"] != "Kept" || get(after, "groups", 0, "value") != gid {
		t.Fatalf("after DELETE of an audited user: %v", after)
	}
	if r := e.do("GET", filterURL("Users", `userName eq "kept@example.com"`), nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("filter after deactivation: %v", r)
	}
	e.do("POST", "/scim/v2/Users", body).must(t, 409)
	// Deleting again changes nothing.
	v := str(get(after, "meta", "version"))
	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	if again := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); str(get(again, "meta", "version")) != v {
		t.Fatalf("second DELETE changed the user: %v -> %v", v, get(again, "meta", "version"))
	}
	// An inactive user cannot join a campaign.
	e.api("PUT", "/api/v1/campaigns/c10/participants/"+id, nil).must(t, 409)
	// Reactivation, as identity providers do it.
	if r := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "active", true))).must(t, 200); r["active"] != true {
		t.Fatalf("reactivate: %v", r)
	}
	full := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	full["active"] = false
	e.do("PUT", "/scim/v2/Users/"+id, full).must(t, 200)
	full["active"] = true
	if r := e.do("PUT", "/scim/v2/Users/"+id, full).must(t, 200); r["active"] != true {
		t.Fatalf("reactivate by PUT: %v", r)
	}
	// Lifecycle attributes are filterable and the server's to state: in a body they are ignored,
	// through a PATCH path refused.
	if r := e.do("GET", filterURL("Users", lifecycleURN+`:audited eq true`), nil).must(t, 200); r["totalResults"] != float64(1) || get(r, "Resources", 0, "id") != id {
		t.Fatalf("filter on audited: %v", r)
	}
	other := e.createUser("fresh@example.com", map[string]any{lifecycleURN: map[string]any{"audited": true, "campaignCount": 7}})
	r := e.do("GET", "/scim/v2/Users/"+other, nil).must(t, 200)
	if get(r, lifecycleURN, "audited") != false || get(r, lifecycleURN, "campaignCount") != nil {
		t.Fatalf("client wrote lifecycle attributes: %v", r[lifecycleURN])
	}
	if r := e.do("PATCH", "/scim/v2/Users/"+other, patchOp(op("replace", lifecycleURN+":audited", true))); r.status != 400 || r.body["scimType"] != "mutability" {
		t.Fatalf("PATCH of audited: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/scim/v2/Users/"+other, nil).must(t, 200); get(r, lifecycleURN, "audited") != false {
		t.Fatalf("PATCH wrote audited: %v", r[lifecycleURN])
	}
	// Not audited: a real delete; the userName is free again.
	e.do("DELETE", "/scim/v2/Users/"+other, nil).must(t, 204)
	e.do("GET", "/scim/v2/Users/"+other, nil).must(t, 404)
	e.createUser("fresh@example.com", nil)
}

// TestDeleteRacesFacts races DELETEs with logins and campaign assignments of the same users.
// Whatever the interleaving, no audited user is hard-deleted and no fact is recorded against a
// user who no longer exists.
func TestDeleteRacesFacts(t *testing.T) {
	e := newEnv(t)
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.createUser(fmt.Sprintf("race%d@example.com", i), nil)
	}
	factStatus := make([]int, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				factStatus[i] = e.api("POST", "/api/v1/users/"+ids[i]+"/interactions", map[string]any{"type": "login"}).status
			} else {
				factStatus[i] = e.api("PUT", fmt.Sprintf("/api/v1/campaigns/c%d/participants/%s", i, ids[i]), nil).status
			}
		}(i)
		go func(i int) {
			defer wg.Done()
			if s := e.do("DELETE", "/scim/v2/Users/"+ids[i], nil).status; s != 204 {
				t.Errorf("DELETE %d: %d", i, s)
			}
		}(i)
	}
	wg.Wait()
	kept, gone := 0, 0
	for i, id := range ids {
		r := e.do("GET", "/scim/v2/Users/"+id, nil)
		switch {
		case factStatus[i] == 204:
			// The fact landed first: the user is audited, so the DELETE only deactivated it.
			if r.status != 200 || r.body["active"] != false || get(r.body, lifecycleURN, "audited") != true {
				t.Errorf("user %d has a fact but is %d %v", i, r.status, r.body)
			}
			kept++
		case factStatus[i] == 404:
			// The DELETE landed first: the user is gone and the fact was refused.
			if r.status != 404 {
				t.Errorf("user %d: fact refused but user is %d", i, r.status)
			}
			gone++
		default:
			t.Errorf("user %d: fact answered %d", i, factStatus[i])
		}
	}
	if problems := checkStore(t, e.store); len(problems) > 0 {
		t.Fatalf("store check: %v", problems)
	}
	t.Logf("%d kept as inactive, %d deleted", kept, gone)
}

// TestAuditTrailExport runs a scripted sequence of mutations and checks the trail: exactly one
// event per mutation, in order, and none of the user's personal values anywhere in it.
func TestAuditTrailExport(t *testing.T) {
	e := newEnv(t)
	personal := []string{"trail.person@example.com", "Trailblazer", "Personsson", "tp.home@example.org"}
	id := e.createUser("trail.person@example.com", map[string]any{"name": map[string]any{"givenName": "Trailblazer", "familyName": "Personsson"},
		"emails": []any{map[string]any{"value": "tp.home@example.org", "type": "home"}}})
	gid := e.createGroup("Trail group")
	e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).must(t, 204)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "name.givenName", "Trailblazer"+"X"))).must(t, 200)
	e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(t, 204)
	e.api("PUT", "/api/v1/campaigns/camp-1/participants/"+id, nil).must(t, 204)
	e.api("DELETE", "/api/v1/campaigns/camp-1/participants/"+id, nil).must(t, 204)
	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "active", "True"))).must(t, 200)
	full := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	full["displayName"] = "Trailblazer Personsson"
	e.do("PUT", "/scim/v2/Users/"+id, full).must(t, 200)
	e.do("DELETE", "/scim/v2/Groups/"+gid, nil).must(t, 204)
	want := []string{"tenant-create Tenant", "token-create Token", "token-create Token", "create User", "create Group", "member-add Group", "patch User", "interaction User", "campaign-assign User",
		"campaign-unassign User", "deactivate-instead-of-delete User", "reactivate User", "replace User", "delete Group"}

	var got []string
	var raw strings.Builder
	for _, ev := range trailOf(t, e.store, scimserver.DefaultTenant) {
		got = append(got, ev.Operation+" "+ev.ResourceType)
		fmt.Fprintf(&raw, "%+v\n", ev)
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("trail:\n got %v\nwant %v", got, want)
	}
	api := e.api("GET", "/api/v1/audit?limit=1000", nil).must(t, 200)
	if n := len(api["events"].([]any)); n != len(want) || get(api, "events", 0, "operation") != "delete" {
		t.Fatalf("API trail: %d events, newest %v", n, get(api, "events", 0))
	}
	text := raw.String() + string(e.api("GET", "/api/v1/audit?limit=1000", nil).raw)
	for _, p := range personal {
		if strings.Contains(text, p) {
			t.Errorf("the trail holds personal value %q", p)
		}
	}
}

// TestLifecycleWrites: of the lifecycle extension only anonymized is writable, and only towards
// true. Clearing it (remove, false, null) is refused with 400 mutability once the user is
// anonymized, and changes nothing before; the extension itself cannot be removed. /Schemas says
// so.
func TestLifecycleWrites(t *testing.T) {
	e := newEnv(t)
	plain := e.createUser("plain@example.com", nil)
	gone := e.createUser("gone@example.com", nil)
	e.do("POST", "/scim/v2/Users/"+gone+"/.anonymize", nil).must(t, 200)
	anonymized := lifecycleURN + ":anonymized"
	null := json.RawMessage("null")
	cases := []struct {
		name, user string
		op         map[string]any
		status     int
		scimType   string
	}{
		{"remove anonymized of an anonymized user", gone, op("remove", anonymized, nil), 400, "mutability"},
		{"set anonymized of an anonymized user to false", gone, op("replace", anonymized, false), 400, "mutability"},
		{"clear anonymized of an anonymized user", gone, op("replace", anonymized, null), 400, "mutability"},
		{"clear anonymized of an anonymized user by value key", gone, op("replace", "", map[string]any{anonymized: null}), 400, "mutability"},
		{"set anonymized false through the extension", gone, op("replace", lifecycleURN, map[string]any{"anonymized": false}), 400, "mutability"},
		{"remove the extension of an anonymized user", gone, op("remove", lifecycleURN, nil), 400, "mutability"},
		{"repeat the anonymization", gone, op("replace", anonymized, true), 200, ""},
		{"remove anonymized of a user who is not anonymized", plain, op("remove", anonymized, nil), 200, ""},
		{"set anonymized false of a user who is not anonymized", plain, op("replace", anonymized, "False"), 200, ""},
		{"remove the extension of a user who is not anonymized", plain, op("remove", lifecycleURN, nil), 400, "mutability"},
	}
	for _, tc := range cases {
		before := e.do("GET", "/scim/v2/Users/"+tc.user, nil).must(t, 200)
		r := e.do("PATCH", "/scim/v2/Users/"+tc.user, patchOp(tc.op))
		if r.status != tc.status || (tc.scimType != "" && r.body["scimType"] != tc.scimType) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
			continue
		}
		after := e.do("GET", "/scim/v2/Users/"+tc.user, nil).must(t, 200)
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s changed the user: %v", tc.name, after)
		}
		if want := tc.user == gone; get(after, lifecycleURN, "anonymized") != want {
			t.Errorf("%s: anonymized reads %v", tc.name, get(after, lifecycleURN, "anonymized"))
		}
	}
	// /Schemas tells a generic client which lifecycle attributes it may write.
	lc := served(e, "User").attrs[lifecycleURN]
	for _, name := range []string{"audited", "auditReasons", "lastInteractionAt", "campaignCount", "anonymizedAt"} {
		if d, ok := findDef(lc, name); !ok || d.Mutability != "readOnly" {
			t.Errorf("lifecycle %s: %+v", name, d)
		}
	}
	d, _ := findDef(lc, "anonymized")
	if d.Mutability != "readWrite" || d.Type != "boolean" || !strings.Contains(d.Description, "only to true") ||
		!strings.Contains(d.Description, "mutability") {
		t.Errorf("lifecycle anonymized: %+v", d)
	}
}

// TestAnonymizedUserSaysWhyAudited: a user anonymized without ever interacting or joining a
// campaign is audited because of the anonymization, and says so.
func TestAnonymizedUserSaysWhyAudited(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("erased@example.com", nil)
	e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil).must(t, 200)
	u := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	if get(u, lifecycleURN, "audited") != true || fmt.Sprint(get(u, lifecycleURN, "auditReasons")) != "[anonymized]" {
		t.Fatalf("lifecycle of an anonymized user: %v", u[lifecycleURN])
	}
	r := e.do("GET", filterURL("Users", lifecycleURN+`:auditReasons eq "anonymized"`), nil).must(t, 200)
	if r["totalResults"] != float64(1) {
		t.Fatalf("filter by the anonymized reason: %v", r)
	}
	if a := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200); fmt.Sprint(a["auditReasons"]) != "[anonymized]" {
		t.Fatalf("platform audit: %v", a)
	}
}
