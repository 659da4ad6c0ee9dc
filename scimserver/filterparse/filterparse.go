// Package filterparse parses SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2) with
// github.com/scim2/filter-parser, including the value filters it refuses. Between brackets that
// parser takes one comparison, two joined by and/or, or one not(...), where the RFC's grammar
// takes any filter: it refuses emails[type eq "work" and not (value ew "example.org")] and
// members[value eq "a" or value eq "b" or value eq "c"]. Such a value filter is parsed here on
// its own, as a filter, and put back in its place. The value paths identity providers send on
// every sync are read without that parser at all (simple.go).
package filterparse

import (
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// Filter parses a filter; numbers stay json.Number.
func Filter(s string) (filter.Expression, error) {
	if p, ok := simplePath(s); ok && p.SubAttribute == nil {
		return &filter.ValuePath{AttributePath: p.AttributePath, ValueFilter: p.ValueExpression}, nil
	}
	e, err := filter.ParseFilterNumber([]byte(s))
	if err == nil {
		return e, nil
	}
	outline, inner, ok := hollow(s)
	if !ok {
		return nil, err
	}
	e, oerr := filter.ParseFilterNumber([]byte(outline))
	if oerr != nil {
		return nil, err
	}
	filled := 0
	if e, ok = fill(e, inner, &filled); !ok || filled != len(inner) {
		return nil, err
	}
	return e, nil
}

// Path parses a PATCH path; numbers stay json.Number.
func Path(s string) (filter.Path, error) {
	if p, ok := simplePath(s); ok {
		return p, nil
	}
	p, err := filter.ParsePathNumber([]byte(s))
	if err == nil {
		return p, nil
	}
	outline, inner, ok := hollow(s)
	if !ok || len(inner) != 1 {
		return filter.Path{}, err
	}
	p, oerr := filter.ParsePathNumber([]byte(outline))
	if oerr != nil || !isPlaceholder(p.ValueExpression, 0) {
		return filter.Path{}, err
	}
	p.ValueExpression = inner[0]
	return p, nil
}

// placeholderPrefix starts the names of what stands for the value filters in an outline: an
// attribute name no schema has (fill checks that each stands where a value filter was).
const placeholderPrefix = "scimserver-value-filter-"

func placeholder(i int) string { return placeholderPrefix + strconv.Itoa(i) }

func isPlaceholder(e filter.Expression, i int) bool {
	a, ok := e.(*filter.AttributeExpression)
	return ok && a.Operator == filter.PR && a.AttributePath.URIPrefix == nil && a.AttributePath.SubAttribute == nil &&
		a.AttributePath.AttributeName == placeholder(i)
}

// hollow replaces the text between each pair of brackets of s with a placeholder comparison and
// parses that text as a filter. ok is false when the brackets do not pair up outside string
// literals, nest, or hold something that is not a filter.
func hollow(s string) (outline string, inner []filter.Expression, ok bool) {
	var b strings.Builder
	open := -1 // where the bracket being read opened, -1 outside brackets
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			end := closingQuote(s, i)
			if end < 0 {
				return "", nil, false
			}
			if open < 0 {
				b.WriteString(s[i : end+1])
			}
			i = end
		case c == '[':
			if open >= 0 {
				return "", nil, false
			}
			open = i + 1
			b.WriteByte(c)
		case c == ']':
			if open < 0 {
				return "", nil, false
			}
			e, err := filter.ParseFilterNumber([]byte(s[open:i]))
			if err != nil {
				return "", nil, false
			}
			b.WriteString(placeholder(len(inner)) + " pr]")
			inner = append(inner, e)
			open = -1
		case open < 0:
			b.WriteByte(c)
		}
	}
	return b.String(), inner, open < 0 && len(inner) > 0
}

// closingQuote returns the index of the quote that ends the string literal opening at s[i], -1
// when there is none.
func closingQuote(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// fill puts inner[i] in place of placeholder i in e, counting those it fills; ok is false when a
// placeholder stands anywhere but as the whole filter of a value path.
func fill(e filter.Expression, inner []filter.Expression, filled *int) (filter.Expression, bool) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		l, lok := fill(e.Left, inner, filled)
		r, rok := fill(e.Right, inner, filled)
		return &filter.LogicalExpression{Left: l, Operator: e.Operator, Right: r}, lok && rok
	case *filter.NotExpression:
		x, ok := fill(e.Expression, inner, filled)
		return &filter.NotExpression{Expression: x}, ok
	case *filter.ValuePath:
		if !isPlaceholder(e.ValueFilter, *filled) {
			return e, false
		}
		*filled++
		return &filter.ValuePath{AttributePath: e.AttributePath, ValueFilter: inner[*filled-1]}, true
	case *filter.AttributeExpression:
		return e, !strings.HasPrefix(e.AttributePath.AttributeName, placeholderPrefix)
	}
	return e, true
}
