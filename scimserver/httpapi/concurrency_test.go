package httpapi

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentMemberAdds: 100 PATCHes, each adding a different member to one group at the
// same time; all 100 are members afterwards.
func TestConcurrentMemberAdds(t *testing.T) {
	e := newEnv(t)
	gid := e.createGroup("crowd")
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = e.createUser(fmt.Sprintf("member%03d@example.com", i), nil)
	}
	var wg sync.WaitGroup
	status := make([]int, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func(i int, id string) {
			defer wg.Done()
			status[i] = e.do("PATCH", "/scim/v2/Groups/"+gid, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).status
		}(i, id)
	}
	wg.Wait()
	for i, s := range status {
		if s != 204 {
			t.Fatalf("PATCH %d: %d", i, s)
		}
	}
	g := e.do("GET", "/scim/v2/Groups/"+gid, nil).must(t, 200)
	got := map[string]bool{}
	for _, m := range g["members"].([]any) {
		got[str(get(m, "value"))] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("member %s lost; %d of 100 present", id, len(got))
		}
	}
}

// TestConcurrentSameUserName: POSTs of one userName in different letter cases at the same
// time; exactly one is created.
func TestConcurrentSameUserName(t *testing.T) {
	e := newEnv(t)
	variants := []string{"race@example.com", "RACE@example.com", "Race@Example.com", "race@EXAMPLE.COM", "rAcE@example.com",
		"RACE@EXAMPLE.COM", "race@Example.Com", "Race@example.com", "race@examplE.com", "rACE@example.com"}
	var wg sync.WaitGroup
	status := make([]int, len(variants))
	for i, v := range variants {
		wg.Add(1)
		go func(i int, v string) {
			defer wg.Done()
			status[i] = e.do("POST", "/scim/v2/Users", userBody(v, nil)).status
		}(i, v)
	}
	wg.Wait()
	created := 0
	for i, s := range status {
		switch s {
		case 201:
			created++
		case 409:
		default:
			t.Fatalf("POST %s: %d", variants[i], s)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent POSTs created the user: %v", created, len(variants), status)
	}
	if r := e.do("GET", filterURL("Users", `userName eq "race@example.com"`), nil).must(t, 200); r["totalResults"] != float64(1) {
		t.Fatalf("users with that name: %v", r["totalResults"])
	}
}

// TestConcurrentIfMatch: many PUTs and PATCHes carrying the same If-Match race; exactly one
// wins per version and the others get 412.
func TestConcurrentIfMatch(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("versioned@example.com", nil)
	for round := 0; round < 3; round++ {
		version := e.do("GET", "/scim/v2/Users/"+id, nil).header.Get("ETag")
		var wg sync.WaitGroup
		status := make([]int, 12)
		for i := range status {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				name := fmt.Sprintf("round%d-writer%d", round, i)
				if i%2 == 0 {
					status[i] = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", name)), "If-Match", version).status
				} else {
					status[i] = e.do("PUT", "/scim/v2/Users/"+id, userBody("versioned@example.com", map[string]any{"displayName": name}), "If-Match", version).status
				}
			}(i)
		}
		wg.Wait()
		won := 0
		for _, s := range status {
			switch s {
			case 200:
				won++
			case 412:
			default:
				t.Fatalf("round %d: status %d", round, s)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won with the same If-Match: %v", round, won, status)
		}
		after := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		if !strings.HasPrefix(str(after["displayName"]), fmt.Sprintf("round%d-", round)) {
			t.Fatalf("round %d: displayName %v", round, after["displayName"])
		}
	}
}

// TestConcurrentPatchesNoLostUpdate: PATCHes without If-Match, each setting a different
// attribute of one user at the same time, all apply: a PATCH worked out on a snapshot whose
// user changed before it committed is worked out again, never committed over the other.
func TestConcurrentPatchesNoLostUpdate(t *testing.T) {
	e := newEnv(t)
	id := e.createUser("contended@example.com", nil)
	attrs := []string{"displayName", "nickName", "title", "userType", "preferredLanguage", "locale", "timezone", "profileUrl"}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		status := make([]int, len(attrs))
		for i, a := range attrs {
			wg.Add(1)
			go func(i int, a string) {
				defer wg.Done()
				status[i] = e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", a, fmt.Sprintf("r%d-%s", round, a)))).status
			}(i, a)
		}
		wg.Wait()
		got := e.do("GET", "/scim/v2/Users/"+id, nil).must(t, 200)
		for i, a := range attrs {
			if status[i] != 200 || got[a] != fmt.Sprintf("r%d-%s", round, a) {
				t.Fatalf("round %d: PATCH of %s answered %d; the user has %s = %v: an update was lost", round, a, status[i], a, got[a])
			}
		}
	}
}
