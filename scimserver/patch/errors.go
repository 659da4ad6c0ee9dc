package patch

import (
	"fmt"

	filter "github.com/scim2/filter-parser/v2"
)

// SCIM error types (RFC 7644 §3.12) this package reports.
const (
	invalidSyntax = "invalidSyntax"
	invalidPath   = "invalidPath"
	noTarget      = "noTarget"
	invalidValue  = "invalidValue"
	mutability    = "mutability"
	tooMany       = "tooMany"
)

// Error is a SCIM error caused by the PATCH request: always a bad request. Detail names the
// operation and its path but never an attribute value: values are personal data, and errors end
// up in logs and in responses.
type Error struct {
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return "scim " + e.ScimType + ": " + e.Detail }

func errorf(scimType, format string, args ...any) *Error {
	return &Error{ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// in prefixes the detail with the operation it belongs to, e.g. "Operations[2] (replace active)".
func (e *Error) in(where string) *Error {
	e.Detail = where + ": " + e.Detail
	return e
}

// isAttrName is the ATTRNAME rule of RFC 7643 §2.1 (ALPHA *(nameChar)), at most 64 long, or
// "$ref". Every PATCH path goes through it: by hand, not by a regular expression.
func isAttrName(s string) bool {
	if s == "$ref" {
		return true
	}
	if len(s) == 0 || len(s) > 64 || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !('0' <= c && c <= '9') && c != '_' && c != '$' && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }

// safeName quotes a client-supplied name for an error detail, or withholds it when it is not an
// attribute name: a client may put anything, including personal data, where a name belongs.
func safeName(s string) string {
	if isAttrName(s) {
		return fmt.Sprintf("%q", s)
	}
	return "(a name that is not a valid attribute name)"
}

// describePath renders a parsed path for error details with every filter comparison value
// replaced by "…", since filters compare against attribute values.
func describePath(p filter.Path) string {
	s := p.AttributePath.String()
	if p.ValueExpression != nil {
		s += "[" + describeFilter(p.ValueExpression) + "]"
	}
	if p.SubAttribute != nil {
		s += "." + *p.SubAttribute
	}
	return s
}

func describeFilter(e filter.Expression) string {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator == filter.PR {
			return e.AttributePath.String() + " pr"
		}
		return e.AttributePath.String() + " " + string(e.Operator) + " …"
	case *filter.LogicalExpression:
		return describeFilter(e.Left) + " " + string(e.Operator) + " " + describeFilter(e.Right)
	case *filter.NotExpression:
		return "not (" + describeFilter(e.Expression) + ")"
	}
	return "…"
}
