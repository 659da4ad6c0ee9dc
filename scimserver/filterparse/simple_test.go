package filterparse

import (
	"reflect"
	"strings"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

var simplePaths = []string{
	`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, `emails[type eq "work"].value`,
	`phoneNumbers[type eq "mobile"].value`, `addresses[type eq "work"].streetAddress`, `emails[primary eq true].value`,
	`emails[primary eq false]`, `members[value ne "a"]`, `members[display sw "Eng"]`, `members[display co "a]b[c"]`,
	`emails[value ew "@example.com"]`, `x-y_z[a-b eq ""]`, `emails[type eq "wörk"].value`, `members[value gt "a"]`,
	`members[value ge "a"]`, `members[value lt "a"]`, `members[value le "a"]`,
}

// TestSimplePathMatchesParser: whatever the fast path takes, it must read exactly as the general
// parser does; everything else it must leave to that parser.
func TestSimplePathMatchesParser(t *testing.T) {
	for _, s := range simplePaths {
		got, ok := simplePath(s)
		if !ok {
			t.Errorf("%s: not recognised", s)
			continue
		}
		want, err := filter.ParsePathNumber([]byte(s))
		if err != nil {
			t.Errorf("%s: the general parser refuses what the fast path takes: %v", s, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fast %#v, general %#v", s, got, want)
		}
		checkSimpleFilter(t, s, got)
	}
	for _, s := range []string{`members`, `emails.value`, `members[value eq "a\"b"]`, `members[value eq "a\\b"]`,
		`members[value eq 5]`, `members[value EQ "a"]`, `members[value  eq "a"]`, `members[value pr]`,
		`members[value eq "a" or value eq "b"]`, `members[value eq "a"].`, `members[value eq "a"]x`, `members[value eq "a"`,
		`members[value eq "a]`, `members[value eq "a" "b"]`, `emails[type eq "work"].value.x`, `emails[type.x eq "work"]`, `1a[value eq "a"]`,
		`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`, `members[value eq truex]`,
		"members[value eq \"a\tb\"]", "members[value eq \"\xff\"]"} {
		if p, ok := simplePath(s); ok {
			t.Errorf("%s: the fast path must leave this to the general parser, took it as %v", s, p)
		}
	}
}

func FuzzSimplePath(f *testing.F) {
	for _, s := range simplePaths {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := simplePath(s)
		if !ok {
			return
		}
		want, err := filter.ParsePathNumber([]byte(s))
		if err != nil {
			t.Fatalf("%q: the fast path takes %v, the general parser refuses it: %v", s, got, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %#v, general %#v", s, got, want)
		}
		checkSimpleFilter(t, s, got)
	})
}

// checkSimpleFilter: a value path without a sub-attribute is a filter as well (a value path
// expression), which Filter must read as the general parser does.
func checkSimpleFilter(t *testing.T, s string, p filter.Path) {
	t.Helper()
	if p.SubAttribute != nil {
		return
	}
	got, err := Filter(s)
	if err != nil {
		t.Fatalf("%q: Filter refuses what the fast path takes: %v", s, err)
	}
	want, err := filter.ParseFilterNumber([]byte(s))
	if err != nil {
		t.Fatalf("%q: the general parser refuses as a filter what the fast path takes: %v", s, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast %#v, general %#v", s, got, want)
	}
}

// BenchmarkPath reads the value paths identity providers send on every sync, through Path (the
// fast path) and through the general parser alone.
func BenchmarkPath(b *testing.B) {
	for _, s := range []string{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`, `emails[type eq "work"].value`} {
		b.Run("path="+s[:strings.IndexByte(s, '[')]+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Path(s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("path="+s[:strings.IndexByte(s, '[')]+"/general", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := filter.ParsePathNumber([]byte(s)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
