package httpapi

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/scimserver/scimserver/scimserver"
)

// personalUser creates a user carrying distinctive values in every personal attribute and
// returns its id and those values.
func personalUser(e *testEnv, tag string) (string, []string) {
	e.t.Helper()
	mgr := e.createUser("manager-"+tag+"@example.com", nil)
	vals := []string{"Xylo" + tag + "@corp.example", "Xylowork" + tag + "@corp.example", "Xylohome" + tag + "@home.example",
		"Xylogiven" + tag, "Xylofamily" + tag, "+1-555-0" + tag, "17 Xylo Street " + tag, "https://photos.example/xylo" + tag,
		"xylo-ext-" + tag, "XyloNick" + tag, "Xylo Display " + tag, "EMPXYLO" + tag, "XyloPassword" + tag}
	id := e.createUser(vals[0], map[string]any{
		"emails":       []any{map[string]any{"value": vals[1], "type": "work", "primary": true}, map[string]any{"value": vals[2], "type": "home"}},
		"name":         map[string]any{"givenName": vals[3], "familyName": vals[4], "formatted": vals[3] + " " + vals[4]},
		"phoneNumbers": []any{map[string]any{"value": vals[5], "type": "mobile"}},
		"addresses":    []any{map[string]any{"streetAddress": vals[6], "type": "work", "country": "NL"}},
		"photos":       []any{map[string]any{"value": vals[7], "type": "photo"}},
		"externalId":   vals[8], "nickName": vals[9], "displayName": vals[10], "password": vals[12],
		enterpriseURN: map[string]any{"employeeNumber": vals[11], "department": "Assessment", "manager": map[string]any{"value": mgr}},
	})
	return id, vals
}

func TestAnonymizeAction(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, filepath.Join(dir, "data.db"))
	id, vals := personalUser(e, "91")
	g1, g2 := e.createGroup("Assessors", id), e.createGroup("Reviewers", id)
	e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(t, 204)
	// A few updates, so older versions of the values sit in freed pages.
	for i := 0; i < 3; i++ {
		e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "nickName", fmt.Sprintf("XyloNick91v%d", i)))).must(t, 200)
		vals = append(vals, fmt.Sprintf("XyloNick91v%d", i))
	}
	before := e.do("GET", filterURL("Groups", `displayName eq "Assessors"`), nil).must(t, 200)
	gv := str(get(before, "Resources", 0, "meta", "version"))

	r := e.do("POST", "/scim/v2/Users/"+id+"/.anonymize?excludedAttributes=groups", nil).must(t, 200)
	// Right after the action, before any other write could reuse the freed pages.
	residue(t, dir, e.logText(), vals)
	if r["active"] != false || get(r, lifecycleURN, "anonymized") != true || get(r, lifecycleURN, "anonymizedAt") == nil ||
		r["externalId"] != nil || r["photos"] != nil || get(r, enterpriseURN, "manager") != nil || r["groups"] != nil {
		t.Fatalf("anonymized user: %v", r)
	}
	if !strings.HasPrefix(str(r["userName"]), "anonymized-") || str(get(r, "name", "givenName")) == "" ||
		get(r, "emails", 0, "type") != "work" || get(r, "addresses", 0, "country") == "NL" || get(r, enterpriseURN, "department") != "Assessment" {
		t.Fatalf("anonymized values: %v", r)
	}
	// Groups lost the member and changed version; the history still resolves the id.
	for _, g := range []string{g1, g2} {
		gr := e.do("GET", "/scim/v2/Groups/"+g, nil).must(t, 200)
		if gr["members"] != nil {
			t.Fatalf("still a member of %s", g)
		}
	}
	if after := e.do("GET", "/scim/v2/Groups/"+g1, nil).must(t, 200); str(get(after, "meta", "version")) == gv {
		t.Fatal("group version did not change")
	}
	audit := e.api("GET", "/api/v1/users/"+id+"/audit", nil).must(t, 200)
	// With no older read in the way, the free pages were overwritten before the answer. On
	// PostgreSQL the erasure stays pending until compact (storage/postgres TestErasureResidue).
	if onPostgres {
		if get(audit, "trail", 0, "operation") != "anonymize" || audit["anonymizedAt"] == nil || audit["scrubbedAt"] != nil {
			t.Fatalf("audit: %v", audit)
		}
	} else if get(audit, "trail", 0, "operation") != "scrub" || get(audit, "trail", 1, "operation") != "anonymize" ||
		audit["anonymizedAt"] == nil || audit["scrubbedAt"] == nil || get(r, lifecycleURN, "scrubbedAt") == nil {
		t.Fatalf("audit: %v", audit)
	}
	// The old identifiers match nothing and are free.
	for _, f := range []string{`userName eq "` + vals[0] + `"`, `emails.value eq "` + vals[1] + `"`, `externalId eq "` + vals[8] + `"`} {
		if res := e.do("GET", filterURL("Users", f), nil).must(t, 200); res["totalResults"] != float64(0) {
			t.Fatalf("%s still matches", f)
		}
	}
	// Every other write is refused; the action itself and DELETE change nothing.
	version := str(get(r, "meta", "version"))
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "back"))).must(t, 409)
	e.do("PUT", "/scim/v2/Users/"+id, userBody("back@example.com", nil)).must(t, 409)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", lifecycleURN+":anonymized", false))).must(t, 400)
	e.api("POST", "/api/v1/users/"+id+"/interactions", map[string]any{"type": "login"}).must(t, 409)
	e.api("PUT", "/api/v1/campaigns/c1/participants/"+id, nil).must(t, 409)
	e.do("PATCH", "/scim/v2/Groups/"+g1, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).must(t, 409)
	e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil).must(t, 200)
	e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", lifecycleURN+":anonymized", true))).must(t, 200)
	e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
	if again := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); str(get(again, "meta", "version")) != version {
		t.Fatalf("a permitted repeat changed the user: %v -> %v", version, get(again, "meta", "version"))
	}
	// Residue: no original value anywhere in the data directory or the logs.
	residue(t, dir, e.logText(), vals)
	e.createUser(vals[0], nil) // the userName is free for a new person
}

// residue fails when any of values appears in the raw bytes of the files under dir or in logs.
func residue(t *testing.T, dir, logs string, values []string) {
	t.Helper()
	var raw []byte
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		raw = append(raw, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the data file still holds %q", v)
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log holds %q", v)
		}
	}
}

func TestAnonymizeTriggers(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, filepath.Join(dir, "data.db"))
	// By PATCH of the lifecycle attribute, as an identity provider's mapping would.
	a, av := personalUser(e, "11")
	r := e.do("PATCH", "/scim/v2/Users/"+a, patchOp(op("replace", lifecycleURN+":anonymized", "True"))).must(t, 200)
	if get(r, lifecycleURN, "anonymized") != true || r["userName"] == av[0] {
		t.Fatalf("PATCH trigger: %v", r)
	}
	// By PUT.
	b, bv := personalUser(e, "22")
	full := e.do("GET", "/scim/v2/Users/"+b, nil).must(t, 200)
	full[lifecycleURN] = map[string]any{"anonymized": true}
	if r := e.do("PUT", "/scim/v2/Users/"+b, full).must(t, 200); get(r, lifecycleURN, "anonymized") != true || r["userName"] == bv[0] {
		t.Fatalf("PUT trigger: %v", r)
	}
	// By the platform API.
	c, cv := personalUser(e, "33")
	if r := e.api("POST", "/api/v1/users/"+c+"/anonymize", nil).must(t, 200); r["changed"] != true {
		t.Fatalf("platform trigger: %v", r)
	}
	if r := e.api("POST", "/api/v1/users/"+c+"/anonymize", nil).must(t, 200); r["changed"] != false {
		t.Fatalf("platform repeat: %v", r)
	}
	e.api("POST", "/api/v1/users/nope/anonymize", nil).must(t, 404)
	// By the exported function the operator command uses.
	d, dv := personalUser(e, "44")
	// On bbolt the free pages are cleared before it returns; on PostgreSQL only compact clears
	// the freed heap space, so the erasure is reported pending.
	if a, err := e.svc.Anonymize(bg, scimserver.DefaultTenant, scimserver.Actor{ID: "cli", Name: "operator"}, d); err != nil || !a.Changed || a.Scrubbed == onPostgres {
		t.Fatalf("Anonymize: %+v %v", a, err)
	}
	// One event per anonymization, each by its actor.
	evs := e.api("GET", "/api/v1/audit?limit=1000", nil).must(t, 200)["events"].([]any)
	n := 0
	for _, ev := range evs {
		if get(ev, "operation") == "anonymize" {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("%d anonymize events, want 4", n)
	}
	residue(t, dir, e.logText(), append(append(append(av, bv...), cv...), dv...))
}

// TestAnonymizeRaces races anonymization with identity-provider PATCHes of the same user and
// with group membership changes: a PATCH either lands first and is scrubbed, or is refused;
// the user never ends up in a group, and no value written by a PATCH survives.
func TestAnonymizeRaces(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, filepath.Join(dir, "data.db"))
	id, vals := personalUser(e, "77")
	var groups []string
	for i := 0; i < 8; i++ {
		groups = append(groups, e.createGroup(fmt.Sprintf("race-group-%d", i)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 16; i++ {
		v := fmt.Sprintf("RaceXylo%02d", i)
		vals = append(vals, v)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "name.givenName", v))).status
			if s != 200 && s != 409 {
				mu.Lock()
				t.Errorf("PATCH during anonymization: %d", s)
				mu.Unlock()
			}
		}(i)
	}
	for _, g := range groups {
		wg.Add(1)
		go func(g string) {
			defer wg.Done()
			s := e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).status
			if s != 204 && s != 409 {
				mu.Lock()
				t.Errorf("member add during anonymization: %d", s)
				mu.Unlock()
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil).must(t, 200)
	}()
	wg.Wait()
	for _, g := range groups {
		if r := e.do("GET", "/scim/v2/Groups/"+g, nil).must(t, 200); r["members"] != nil {
			t.Errorf("anonymized user left in group %s", g)
		}
	}
	if r := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200); get(r, lifecycleURN, "anonymized") != true {
		t.Fatalf("not anonymized: %v", r)
	}
	if problems := checkStore(t, e.store); len(problems) > 0 {
		t.Fatalf("check: %v", problems)
	}
	residue(t, dir, e.logText(), vals)
}

// plausible checks what /Schemas cannot say about a user's values (RFC 7643 §4.1.2): emails are
// addresses, phone numbers are numbers, a country is an ISO 3166-1 alpha-2 code.
func plausible(user map[string]any) []string {
	var problems []string
	for _, e := range asList(user["emails"]) {
		if _, err := mail.ParseAddress(str(get(e, "value"))); err != nil {
			problems = append(problems, fmt.Sprintf("email %q is not an address", get(e, "value")))
		}
	}
	for _, p := range asList(user["phoneNumbers"]) {
		if !phoneRE.MatchString(str(get(p, "value"))) {
			problems = append(problems, fmt.Sprintf("phone number %q is not a number", get(p, "value")))
		}
	}
	for _, a := range asList(user["addresses"]) {
		if c, ok := get(a, "country").(string); ok && !countryRE.MatchString(c) {
			problems = append(problems, fmt.Sprintf("country %q is not an ISO 3166-1 alpha-2 code", c))
		}
	}
	return problems
}

var (
	phoneRE   = regexp.MustCompile(`^(tel:)?\+?[0-9][0-9 ()./-]{5,30}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// TestAnonymizedUserIsValid: anonymization writes only values that fit their attributes: a user
// with every attribute set is valid against the served /Schemas before and after, and its
// emails, phone numbers and country stay plausible.
func TestAnonymizedUserIsValid(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, filepath.Join(dir, "data.db"))
	users := served(e, "User")
	id, personal := fullUser(e, "41")
	before := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
	if p := append(users.check(before), plausible(before)...); len(p) > 0 {
		t.Fatalf("the fresh user is not valid, so the check proves nothing:\n  %s", strings.Join(p, "\n  "))
	}
	after := e.do("POST", "/scim/v2/Users/"+id+"/.anonymize", nil).must(t, 200)
	if p := append(users.check(after), plausible(after)...); len(p) > 0 {
		t.Errorf("the anonymized user is not valid:\n  %s", strings.Join(p, "\n  "))
	}
	if get(after, lifecycleURN, "anonymized") != true || after["profileUrl"] != nil || after["photos"] != nil {
		t.Errorf("anonymized user: %v", after)
	}
	residue(t, dir, e.logText(), personal)
}

// TestListingWithAnonymizedUser: a page that holds an anonymized user, from a listing and from
// a root search, is valid as a whole.
func TestListingWithAnonymizedUser(t *testing.T) {
	e := newEnv(t)
	users, groups := served(e, "User"), served(e, "Group")
	id, _ := fullUser(e, "42")
	fullUser(e, "43")
	fullGroup(e, "44")
	e.api("POST", "/api/v1/users/"+id+"/anonymize", nil).must(t, 200)
	pages := []map[string]any{
		e.do("GET", "/scim/v2/Users?count=100", nil).must(t, 200),
		e.do("GET", filterURL("Users", lifecycleURN+":anonymized eq true"), nil).must(t, 200),
		e.do("POST", "/scim/v2/.search", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}}).must(t, 200),
	}
	for i, page := range pages {
		found := false
		for _, res := range asList(page["Resources"]) {
			r := res.(map[string]any)
			st := users
			if get(r, "meta", "resourceType") == "Group" {
				st = groups
			}
			found = found || r["id"] == id
			if p := append(st.check(r), plausible(r)...); len(p) > 0 {
				t.Errorf("page %d, %v %v:\n  %s", i, get(r, "meta", "resourceType"), r["id"], strings.Join(p, "\n  "))
			}
		}
		if !found {
			t.Errorf("page %d does not hold the anonymized user", i)
		}
	}
}
