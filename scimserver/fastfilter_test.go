package scimserver

import (
	"reflect"
	"testing"
)

var simpleFilters = []string{
	`userName eq "a"`, `userName eq "A@Example.com"`, `externalId eq "0a21f0f2-8d2a"`, `id eq "x"`,
	`emails.value eq "a@b"`, `displayName eq "Group \"quoted\" \\ name"`, `active eq true`, `active ne false`,
	`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m"`,
	`userName sw "a"`, `userName co "b"`, `userName ew "c"`, `title gt "x"`, `title ge "x"`, `title lt "x"`, `title le "x"`,
	`userName eq "a" and active eq true`, `userName eq "x and y" and externalId eq "z"`,
	`userName eq ""`, `x-y_z eq "1"`,
}

// TestSimpleFilterMatchesParser: whatever the fast path accepts, it must parse to exactly the
// expression the general parser builds.
func TestSimpleFilterMatchesParser(t *testing.T) {
	for _, f := range simpleFilters {
		got, ok := parseSimple(f)
		if !ok {
			t.Errorf("%s: not recognised", f)
			continue
		}
		want, err := parseGeneral(f)
		if err != nil {
			t.Errorf("%s: the general parser refuses what the fast path accepts: %v", f, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast %#v, general %#v", f, got, want)
		}
	}
	for _, f := range []string{`userName eq 'a'`, `userName eq a`, `userName eq`, `userName EQ "a"`, `userName  eq "a"`,
		`emails[type eq "work"]`, `userName eq "a" or userName eq "b"`, `userName pr`, `1 eq 1`, `urn:x:y eq "z"`,
		`userName eq "a" and`, `name.givenName.x eq "a"`, `userName eq 5`, `userName eq "a" and userName eq "b" and id eq "c"`} {
		if _, ok := parseSimple(f); ok {
			t.Errorf("%s: the fast path must leave this to the general parser", f)
		}
	}
}

func FuzzSimpleFilter(f *testing.F) {
	for _, s := range simpleFilters {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseSimple(s)
		if !ok {
			return
		}
		want, err := parseGeneral(s)
		if err != nil {
			return // the fast path is more lenient with JSON escapes (\u00e9) than the parser
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %#v, general %#v", s, got, want)
		}
	})
}
