package filterparse

import (
	"strings"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"
)

// The general parser allocates at every character. Identity providers send a few short value
// paths on every sync: Okta removes a member with members[value eq "…"], Entra sets an address
// with emails[type eq "work"].value. simplePath recognises exactly those shapes and builds the
// Path the general parser would; anything else goes to the general parser.

var compareOps = map[string]filter.CompareOperator{"eq": filter.EQ, "ne": filter.NE, "co": filter.CO,
	"sw": filter.SW, "ew": filter.EW, "gt": filter.GT, "ge": filter.GE, "lt": filter.LT, "le": filter.LE}

// Operator returns the comparison operator a filter spells name (lower case, as identity
// providers write them).
func Operator(name string) (filter.CompareOperator, bool) {
	op, ok := compareOps[name]
	return op, ok
}

// AttrName reports whether s is an attribute name: ALPHA *(nameChar), RFC 7643 §2.1.
func AttrName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// simplePath recognises NAME "[" NAME SP op SP value "]" ["." NAME], where value is a string
// of valid UTF-8 without a backslash or a control character, DEL included (the general parser
// keeps escapes as written, so only such a string reads the same either way), true or false.
func simplePath(s string) (filter.Path, bool) {
	name, rest, ok := strings.Cut(s, "[")
	if !ok || !AttrName(name) {
		return filter.Path{}, false
	}
	attr, rest, ok := strings.Cut(rest, " ")
	if !ok || !AttrName(attr) {
		return filter.Path{}, false
	}
	opName, rest, ok := strings.Cut(rest, " ")
	op, known := compareOps[opName]
	if !ok || !known {
		return filter.Path{}, false
	}
	var value any
	switch {
	case strings.HasPrefix(rest, "true]"):
		value, rest = true, rest[len("true]"):]
	case strings.HasPrefix(rest, "false]"):
		value, rest = false, rest[len("false]"):]
	case strings.HasPrefix(rest, `"`):
		end := strings.IndexByte(rest[1:], '"') + 1 // the closing quote; 0 when there is none
		if end == 0 || !plainString(rest[1:end]) || !strings.HasPrefix(rest[end+1:], "]") {
			return filter.Path{}, false
		}
		value, rest = rest[1:end], rest[end+2:]
	default:
		return filter.Path{}, false
	}
	p := filter.Path{AttributePath: filter.AttributePath{AttributeName: name},
		ValueExpression: &filter.AttributeExpression{AttributePath: filter.AttributePath{AttributeName: attr}, Operator: op, CompareValue: value}}
	if rest != "" {
		sub, ok := strings.CutPrefix(rest, ".")
		if !ok || !AttrName(sub) {
			return filter.Path{}, false
		}
		p.SubAttribute = &sub
	}
	return p, true
}

func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == '\\' || s[i] == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}
