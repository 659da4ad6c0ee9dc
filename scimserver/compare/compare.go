// Package compare applies the comparison operators of SCIM filters (RFC 7644 §3.4.2.2) to
// attribute values as JSON decodes them, by the attribute's type. List filters and PATCH value
// filters both use it, so that a filter matches the same values wherever it appears.
package compare

import (
	"cmp"
	"encoding/json"
	"strings"
	"time"

	datetime "github.com/q-uint/xsd-datetime"
	filter "github.com/scim2/filter-parser/v2"
)

// Values applies op to an attribute value v and a filter's comparison value want, for an
// attribute of type typ (a schema type name: "string", "boolean", "integer", "decimal",
// "dateTime", "reference", "binary"). ok is false when either value is absent or not of that
// type: then neither op nor its negation holds. Strings compare case-insensitively unless
// caseExact; dateTimes compare as instants (as strings when one does not parse); co, sw and ew
// hold only for strings. pr is not a comparison: the caller tests presence itself.
func Values(typ string, caseExact bool, op filter.CompareOperator, v, want any) (result, ok bool) {
	switch typ {
	case "boolean":
		x, okx := v.(bool)
		y, oky := want.(bool)
		if !okx || !oky {
			return false, false
		}
		return holds(op, cmp.Compare(boolInt(x), boolInt(y))), true
	case "integer", "decimal":
		x, okx := Number(v)
		y, oky := Number(want)
		if !okx || !oky {
			return false, false
		}
		return holds(op, cmp.Compare(x, y)), true
	}
	s, oks := v.(string)
	w, okw := want.(string)
	if !oks || !okw {
		return false, false
	}
	if typ == "dateTime" {
		st, okS := instant(s)
		wt, okW := instant(w)
		if okS && okW {
			return holds(op, st.Compare(wt)), true
		}
	}
	if !caseExact {
		s, w = strings.ToLower(s), strings.ToLower(w)
	}
	switch op {
	case filter.CO:
		return strings.Contains(s, w), true
	case filter.SW:
		return strings.HasPrefix(s, w), true
	case filter.EW:
		return strings.HasSuffix(s, w), true
	}
	return holds(op, strings.Compare(s, w)), true
}

// instant parses an xsd:dateTime (RFC 7643 §2.3.5), or an RFC 3339 time with more fractional
// digits than xsd allows (list filters accept those).
func instant(s string) (time.Time, bool) {
	if t, err := datetime.Parse(s); err == nil {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// Number returns a JSON number as a float64, whichever way it was decoded.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// holds interprets a three-way comparison result c for op.
func holds(op filter.CompareOperator, c int) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.NE:
		return c != 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Unassigned reports whether v means "no value": null, an empty string, an empty list or an
// empty object. RFC 7643 §2.5 treats them all as unassigned, so a filter's pr, a PATCH that
// clears an attribute and the documents the server stores all read them the same way.
func Unassigned(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
