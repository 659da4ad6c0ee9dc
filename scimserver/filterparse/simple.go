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

// Comparison recognises `attrPath op "string"` and `attrPath op true|false`, with the
// attribute path read by attr and the quoted string by str: the shapes identity providers send,
// which the callers read without the general parser. ok is false for anything else.
func Comparison(s string, attr func(string) (filter.AttributePath, bool), str func(quoted string) (string, bool)) (*filter.AttributeExpression, bool) {
	path, rest, ok := strings.Cut(s, " ")
	if !ok {
		return nil, false
	}
	opName, value, ok := strings.Cut(rest, " ")
	op, known := compareOps[opName]
	if !ok || !known {
		return nil, false
	}
	ap, ok := attr(path)
	if !ok {
		return nil, false
	}
	var v any
	switch {
	case value == "true":
		v = true
	case value == "false":
		v = false
	case len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"':
		if v, ok = str(value); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	return &filter.AttributeExpression{AttributePath: ap, Operator: op, CompareValue: v}, true
}

// simplePath recognises NAME "[" comparison "]" ["." NAME], the comparison of an attribute NAME
// with true, false or a string of valid UTF-8 without a backslash, a quote or a control
// character, DEL included (the general parser keeps escapes as written, so only such a string
// reads the same either way).
func simplePath(s string) (filter.Path, bool) {
	name, rest, ok := strings.Cut(s, "[")
	if !ok || !AttrName(name) {
		return filter.Path{}, false
	}
	end := bracketEnd(rest)
	if end < 0 {
		return filter.Path{}, false
	}
	cmp, ok := Comparison(rest[:end], plainName, plainString)
	if !ok {
		return filter.Path{}, false
	}
	p := filter.Path{AttributePath: filter.AttributePath{AttributeName: name}, ValueExpression: cmp}
	if rest = rest[end+1:]; rest != "" {
		sub, ok := strings.CutPrefix(rest, ".")
		if !ok || !AttrName(sub) {
			return filter.Path{}, false
		}
		p.SubAttribute = &sub
	}
	return p, true
}

// bracketEnd returns the index of the first "]" of s outside a string literal, -1 when there is
// none.
func bracketEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			if i = closingQuote(s, i); i < 0 {
				return -1
			}
		case ']':
			return i
		}
	}
	return -1
}

func plainName(s string) (filter.AttributePath, bool) {
	return filter.AttributePath{AttributeName: s}, AttrName(s)
}

// plainString returns the text of a quoted string that needs no unescaping.
func plainString(quoted string) (string, bool) {
	s := quoted[1 : len(quoted)-1]
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == '\\' || s[i] == '"' || s[i] == 0x7f {
			return "", false
		}
	}
	return s, utf8.ValidString(s)
}
