package filterparse

import (
	"fmt"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

func TestFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// What the parser takes itself stays its answer.
		{`userName eq "a"`, `userName eq "a"`},
		{`emails[type eq "work" and value co "x"]`, `emails[type eq "work" and value co "x"]`},
		{`members[not (display pr)]`, `members[not(display pr)]`},
		// Value filters it refuses, which RFC 7644's grammar allows.
		{`members[display sw "Eng" and not (type eq "Group")]`, `members[display sw "Eng" and not(type eq "Group")]`},
		{`members[not (type eq "Group") or display pr]`, `members[not(type eq "Group") or display pr]`},
		{`members[(display sw "A" or display sw "B") and type eq "User"]`, `members[(display sw "A" or display sw "B") and type eq "User"]`},
		{`members[value eq "a" or value eq "b" or value eq "c"]`, `members[value eq "a" or value eq "b" or value eq "c"]`},
		{`emails[type eq "work" or primary eq true and value pr]`, `emails[type eq "work" or primary eq true and value pr]`},
		{`userName sw "a" and emails[type eq "work" and not (value ew "]x[")] or members[not (value pr) and display pr]`,
			`userName sw "a" and emails[type eq "work" and not(value ew "]x[")] or members[not(value pr) and display pr]`},
		{`not (emails[(type eq "work")])`, `not(emails[type eq "work"])`},
		// Brackets in a string are not the value filter's; its escapes stay as written (the caller
		// decodes them), and print escaped once more.
		{`emails[value eq "a \"[b]\"" and not (primary eq true)]`, `emails[value eq "a \\\"[b]\\\"" and not(primary eq true)]`},
	} {
		checkParse(t, "Filter", tc.in, tc.want, func(s string) (any, error) { return Filter(s) })
	}
}

// checkParse checks that parse, called name, takes in and prints it as want.
func checkParse(t *testing.T, name, in, want string, parse func(string) (any, error)) {
	t.Helper()
	v, err := parse(in)
	if err != nil {
		t.Errorf("%s(%s): %v", name, in, err)
		return
	}
	if got := fmt.Sprint(v); got != want {
		t.Errorf("%s(%s) = %s, want %s", name, in, got, want)
	}
}

func TestFilterRefuses(t *testing.T) {
	for _, in := range []string{
		``, `members[`, `members]`, `members[display pr`, `members[display pr]]`, `members[[display pr]]`,
		`members[display sw "Eng" and not (type eq "Group")`, `members[display eq "x]`, `members[display eq] and x pr`,
		`members[scimserver-value-filter-0 pr] and x pr]`, `scimserver-value-filter-0 pr and members[not (a pr) and b pr]`,
		`members[display sw "A" and not (type eq "Group")] and`, `members[]`, `members[not (a pr) and b pr]junk`,
	} {
		if e, err := Filter(in); err == nil {
			t.Errorf("Filter(%s) = %v, want an error", in, e)
		}
	}
}

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`members`, `members`},
		{`emails[type eq "work"].value`, `emails[type eq "work"].value`},
		{`members[display sw "Eng" and not (type eq "Group")]`, `members[display sw "Eng" and not(type eq "Group")]`},
		{`emails[not (type eq "work") and primary eq true].value`, `emails[not(type eq "work") and primary eq true].value`},
		{`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work" or not (value pr)].display`,
			`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work" or not(value pr)].display`},
	} {
		checkParse(t, "Path", tc.in, tc.want, func(s string) (any, error) { return Path(s) })
	}
	for _, in := range []string{`members[a pr] and b pr`, `members[not (a pr) and b pr][c pr]`, `members[not (a pr) and b pr`, `members[not (a pr) and b pr]x`} {
		if p, err := Path(in); err == nil {
			t.Errorf("Path(%s) = %v, want an error", in, p)
		}
	}
}

// FuzzValueFilters: whatever the parser takes is the answer unchanged, and what Filter takes besides
// reads back the same: printed and parsed again it prints the same (for printable ASCII without
// escapes, which prints as it is written).
func FuzzValueFilters(f *testing.F) {
	for _, s := range []string{`members[display sw "Eng" and not (type eq "Group")]`, `a pr and b[c eq "]" or not (d pr)]`,
		`emails[type eq "work"]`, `x[not (y pr) and z pr] or w[v pr]`, "A[A sw \"\xe7\" And (A eq \"\")]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 512 {
			return
		}
		e, err := Filter(s)
		upstream, uerr := filter.ParseFilterNumber([]byte(s))
		if uerr == nil {
			if err != nil || fmt.Sprint(e) != fmt.Sprint(upstream) {
				t.Fatalf("Filter(%q) = %v, %v; the parser's own %v", s, e, err, upstream)
			}
			return
		}
		if err != nil || !plain(s) {
			return // the parser prints other strings with Go's escapes, which no filter has
		}
		again, err := Filter(fmt.Sprint(e))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(e) {
			t.Fatalf("Filter(%q) = %v, which reads back as %v, %v", s, e, again, err)
		}
	})
}

// plain reports whether s is printable ASCII without a backslash.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			return false
		}
	}
	return true
}
