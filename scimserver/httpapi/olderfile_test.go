package httpapi

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestOlderDataFile serves a data file written before the file recorded its format (the
// fixture of storage/bolt/testdata): the lookups identity providers make, the index declared
// since (manager.value, built from the records at open), the audited-user rule and the
// memberships all work through the router, and the file is consistent afterwards.
func TestOlderDataFile(t *testing.T) {
	boltOnly(t, "a data file of an older format")
	raw, err := os.ReadFile(filepath.Join("..", "..", "storage", "bolt", "testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnvAt(t, path)
	const (
		alice = "01a234bc-1b46-7000-a385-1dc5f9a7e5d1"
		bob   = "01a234bc-1b43-7000-8491-24742b6233f2"
		carol = "01a234bc-1b49-7000-af18-5baf0361bb8c"
		dave  = "01a234bc-1b4c-7000-a5cb-f32b615563ba"
	)
	ids := func(filter string, endpoint ...string) []string {
		t.Helper()
		ep := "Users"
		if len(endpoint) > 0 {
			ep = endpoint[0]
		}
		var out []string
		for _, r := range asList(e.do("GET", filterURL(ep, filter), nil).must(t, http.StatusOK)["Resources"]) {
			out = append(out, str(get(r, "id")))
		}
		return out
	}
	for _, c := range []struct {
		filter, endpoint string
		want             []string
	}{
		{`userName eq "ALICE@example.COM"`, "Users", []string{alice}},
		{`externalId eq "ext-bob"`, "Users", []string{bob}},
		{`emails.value eq "alice@home.TEST"`, "Users", []string{alice}},
		{enterpriseURN + `:manager.value eq "` + bob + `"`, "Users", []string{alice, carol}},
		{`members[value eq "` + bob + `"]`, "Groups", []string{"", ""}}, // Leads and Engineering
	} {
		got := ids(c.filter, c.endpoint)
		if len(got) != len(c.want) || (len(c.want) > 0 && c.want[0] != "" && got[0] != c.want[0]) {
			t.Errorf("%s: %v, want %d resources starting %v", c.filter, got, len(c.want), c.want)
		}
	}
	if n := len(ids(`displayName eq "engineering"`, "Groups")); n != 1 {
		t.Errorf("displayName lookup: %d groups", n)
	}
	// carol is audited (she logged in): DELETE deactivates her; alice is not: DELETE deletes.
	e.do("DELETE", "/scim/v2/Users/"+carol, nil).must(t, http.StatusNoContent)
	if r := e.do("GET", "/scim/v2/Users/"+carol, nil).must(t, http.StatusOK); r["active"] != false {
		t.Errorf("carol after DELETE: %v", r)
	}
	e.do("DELETE", "/scim/v2/Users/"+alice, nil).must(t, http.StatusNoContent)
	e.do("GET", "/scim/v2/Users/"+alice, nil).must(t, http.StatusNotFound)
	if got := ids(enterpriseURN + `:manager.value eq "` + bob + `"`); len(got) != 1 || got[0] != carol {
		t.Errorf("manager index after alice's deletion: %v", got)
	}
	// dave took part in two campaigns: the platform API still says so.
	if a := e.api("GET", "/api/v1/users/"+dave+"/audit", nil).must(t, http.StatusOK); a["campaignCount"] != float64(2) {
		t.Errorf("dave's audit: %v", a)
	}
	if problems := checkStore(t, e.store); len(problems) > 0 {
		t.Fatalf("check after use: %v", problems)
	}
}
