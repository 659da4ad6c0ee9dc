package scimserver

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/filterparse"
)

// The general filter parser costs microseconds per byte; identity providers send the same
// short shapes on every sync (`userName eq "…"`, `externalId eq "…"`, and two of those joined
// by and). parseSimple recognises exactly those shapes and builds the same expression the
// general parser would, so the rest of the pipeline cannot tell the difference. Anything else
// goes to the general parser.

func parseSimple(s string) (filter.Expression, bool) {
	if !utf8.ValidString(s) {
		return nil, false
	}
	left, ok := parseComparison(s)
	if ok {
		return left, true
	}
	// One and: split at the first " and " outside a quoted string.
	i := andOutsideQuotes(s)
	if i < 0 {
		return nil, false
	}
	l, ok1 := parseComparison(s[:i])
	r, ok2 := parseComparison(s[i+len(" and "):])
	if !ok1 || !ok2 {
		return nil, false
	}
	return &filter.LogicalExpression{Left: l, Right: r, Operator: filter.AND}, true
}

func andOutsideQuotes(s string) int {
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && strings.HasPrefix(s[i:], " and "):
			return i
		}
	}
	return -1
}

// parseComparison recognises `attrPath op "string"` and `attrPath op true|false`, the string
// with JSON's escapes.
func parseComparison(s string) (*filter.AttributeExpression, bool) {
	return filterparse.Comparison(s, parseAttrPath, jsonString)
}

func jsonString(quoted string) (string, bool) {
	var s string
	if json.Unmarshal([]byte(quoted), &s) != nil || strings.ContainsAny(s, "\x00") {
		return "", false
	}
	return s, true
}

// parseAttrPath recognises [URN ":"] ATTRNAME ["." ATTRNAME].
func parseAttrPath(p string) (filter.AttributePath, bool) {
	var ap filter.AttributePath
	if strings.HasPrefix(p, "urn:") {
		i := strings.LastIndexByte(p, ':')
		uri := p[:i]
		if !validURN(uri) {
			return ap, false
		}
		ap.URIPrefix = &uri
		p = p[i+1:]
	}
	name, sub, hasSub := strings.Cut(p, ".")
	if !filterparse.AttrName(name) || (hasSub && !filterparse.AttrName(sub)) {
		return ap, false
	}
	ap.AttributeName = name
	if hasSub {
		ap.SubAttribute = &sub
	}
	return ap, true
}

// knownKinds are the kinds whose schema URNs a filter may name.
var knownKinds = []*Kind{Users(), Groups()}

// validURN accepts the schema URNs this server knows, which is all a filter may name.
func validURN(s string) bool {
	for _, k := range knownKinds {
		for _, id := range k.schemaIDs() {
			if s == id {
				return true
			}
		}
	}
	return false
}
