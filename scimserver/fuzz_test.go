package scimserver

import (
	"testing"

	"github.com/scimserver/scimserver/schemas"
)

// FuzzFilter parses arbitrary filters against both resource types and evaluates what parses
// against a sample user: it must never panic.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a"`, `emails[type eq "work" and primary eq true]`, `not (title pr)`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`,
		`meta.created gt "2020-01-01T00:00:00Z"`, `members[value eq "x"]`, `(a eq 1) or b ne true`,
		`userName eq "a" or 1 eq 1`, `emails.value co "@"`, `x[y[z eq 1]]`, `name.givenName sw "J"`,
		`emails[type eq "work" and not (value ew "@b")] or members[not (display pr) and type eq "User"]`,
	} {
		f.Add(s)
	}
	user := map[string]any{"userName": "Alice", "title": "x", "active": true, "id": "1",
		"emails": []any{map[string]any{"value": "a@b", "type": "work", "primary": true}},
		"name":   map[string]any{"givenName": "A"}, "meta": map[string]any{"created": "2024-01-01T00:00:00Z"},
		schemas.EnterpriseURN: map[string]any{"department": "x", "manager": map[string]any{"value": "2"}}}
	kinds := []*Kind{Users(), Groups()}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range kinds {
			e, err := k.parseFilter(s)
			if err != nil {
				if ErrorCode(err) != Invalid {
					t.Fatalf("%q: %v", s, err)
				}
				continue
			}
			ev := evaluator{k: k, isMember: func(string) bool { return false }}
			ev.match(e, user)
		}
	})
}
