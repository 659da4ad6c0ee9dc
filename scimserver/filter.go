package scimserver

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/compare"
	"github.com/scimserver/scimserver/scimserver/filterparse"
)

// Bounds on a filter: long enough for any identity provider's query, short enough that a
// hostile one cannot make the server work hard.
const (
	maxFilterLen   = 4096
	maxFilterNodes = 64
)

func invalidFilter(detail string) *Error { return invalid("invalidFilter", detail) }

// parseFilter parses a filter (RFC 7644 §3.4.2.2) and checks it against the resource type's
// schemas: every attribute must exist and every comparison must suit the attribute's type.
func (k *Kind) parseFilter(s string) (filter.Expression, error) {
	if len(s) > maxFilterLen {
		return nil, invalidFilter("the filter is too long")
	}
	if !utf8.ValidString(s) {
		return nil, invalidFilter("the filter is not valid UTF-8")
	}
	e, ok := parseSimple(s)
	if !ok {
		var err error
		if e, err = parseGeneral(s); err != nil {
			return nil, invalidFilter("the filter is not valid filter syntax")
		}
	}
	nodes := 0
	if err := k.checkExpr(e, nil, &nodes); err != nil {
		return nil, err
	}
	return e, nil
}

// parseGeneral parses with the general parser, which leaves JSON escapes in string values as
// written ("a \"b\"" stays backslashed); they are decoded here, as the fast path does.
func parseGeneral(s string) (filter.Expression, error) {
	e, err := filterparse.Filter(s)
	if err != nil {
		return nil, err
	}
	return e, unescapeValues(e)
}

func unescapeValues(e filter.Expression) error {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if err := unescapeValues(e.Left); err != nil {
			return err
		}
		return unescapeValues(e.Right)
	case *filter.NotExpression:
		return unescapeValues(e.Expression)
	case *filter.ValuePath:
		return unescapeValues(e.ValueFilter)
	case *filter.AttributeExpression:
		if s, ok := e.CompareValue.(string); ok && strings.ContainsRune(s, '\\') {
			var v string
			if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err != nil {
				return err
			}
			e.CompareValue = v
		}
	}
	return nil
}

// checkExpr validates e; within a value path, parent is the multi-valued attribute whose
// sub-attributes unqualified names refer to.
func (k *Kind) checkExpr(e filter.Expression, parent *attrRef, nodes *int) error {
	*nodes++
	if *nodes > maxFilterNodes {
		return invalidFilter("the filter has too many terms")
	}
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if err := k.checkExpr(e.Left, parent, nodes); err != nil {
			return err
		}
		return k.checkExpr(e.Right, parent, nodes)
	case *filter.NotExpression:
		return k.checkExpr(e.Expression, parent, nodes)
	case *filter.ValuePath:
		if parent != nil {
			return invalidFilter("value filters cannot be nested")
		}
		ref, ok := k.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName, e.AttributePath.SubAttributeName())
		if !ok || ref.sub != nil || ref.attr.AttributeType() != "complex" {
			return invalidFilter("a value filter [...] needs a multi-valued complex attribute of this resource type")
		}
		return k.checkExpr(e.ValueFilter, &ref, nodes)
	case *filter.AttributeExpression:
		ref, ok := k.resolvePath(e.AttributePath, parent)
		if !ok {
			return invalidFilter("the filter names an attribute this resource type does not have")
		}
		return checkComparison(ref.target(), e)
	}
	return invalidFilter("the filter is not valid filter syntax")
}

// resolvePath resolves a filter attribute path, relative to parent inside a value path.
func (k *Kind) resolvePath(p filter.AttributePath, parent *attrRef) (attrRef, bool) {
	if parent != nil {
		if p.URIPrefix != nil || p.SubAttribute != nil {
			return attrRef{}, false
		}
		s, ok := parent.attr.SubAttributes().ContainsAttribute(p.AttributeName)
		if !ok {
			return attrRef{}, false
		}
		ref := *parent
		ref.sub = &s
		return ref, true
	}
	ref, ok := k.resolve(p.URI(), p.AttributeName, p.SubAttributeName())
	if ok && ref.sub == nil && ref.attr.AttributeType() == "complex" && ref.attr.MultiValued() {
		// "emails eq x" compares the "value" sub-attribute.
		if v, ok := ref.attr.SubAttributes().ContainsAttribute("value"); ok {
			ref.sub = &v
			ref.implicitValue = true
		}
	}
	return ref, ok
}

func checkComparison(a schema.CoreAttribute, e *filter.AttributeExpression) error {
	if e.Operator == filter.PR {
		return nil
	}
	typ := a.AttributeType()
	switch typ {
	case "complex":
		return invalidFilter("a complex attribute can only be tested with pr")
	case "boolean":
		if _, ok := e.CompareValue.(bool); !ok || (e.Operator != filter.EQ && e.Operator != filter.NE) {
			return invalidFilter("a boolean attribute compares with eq or ne against true or false")
		}
	case "integer", "decimal":
		if _, ok := e.CompareValue.(json.Number); !ok {
			return invalidFilter("a numeric attribute compares against a number")
		}
		switch e.Operator {
		case filter.CO, filter.SW, filter.EW:
			return invalidFilter("co, sw and ew compare strings only")
		}
	case "dateTime":
		s, ok := e.CompareValue.(string)
		if !ok {
			return invalidFilter("a dateTime attribute compares against a quoted date and time")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return invalidFilter("a dateTime attribute compares against an RFC 3339 date and time")
		}
	case "binary":
		if _, ok := e.CompareValue.(string); !ok || !(e.Operator == filter.EQ || e.Operator == filter.NE) {
			return invalidFilter("a binary attribute compares with eq or ne against a string")
		}
	default:
		if _, ok := e.CompareValue.(string); !ok {
			return invalidFilter("a string attribute compares against a quoted string")
		}
	}
	return nil
}

// evaluator evaluates a checked filter against rendered resources.
type evaluator struct {
	k *Kind
	// isMember, when set, answers members[value eq "id"] without loading the member list.
	isMember func(id string) bool
}

func (ev evaluator) match(e filter.Expression, m map[string]any) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return ev.match(e.Left, m) && ev.match(e.Right, m)
		}
		return ev.match(e.Left, m) || ev.match(e.Right, m)
	case *filter.NotExpression:
		return !ev.match(e.Expression, m)
	case *filter.ValuePath:
		if id, ok := memberValueEq(e); ok && ev.isMember != nil {
			return ev.isMember(id)
		}
		ref, _ := ev.k.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName, "")
		v, _ := ref.value(m)
		for _, el := range asList(v) {
			if obj, ok := el.(map[string]any); ok && ev.matchIn(e.ValueFilter, &ref, obj) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		ref, _ := ev.k.resolvePath(e.AttributePath, nil)
		return compareRef(ref, e, m)
	}
	return false
}

// matchIn evaluates a value filter against one element of a multi-valued attribute.
func (ev evaluator) matchIn(e filter.Expression, parent *attrRef, el map[string]any) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return ev.matchIn(e.Left, parent, el) && ev.matchIn(e.Right, parent, el)
		}
		return ev.matchIn(e.Left, parent, el) || ev.matchIn(e.Right, parent, el)
	case *filter.NotExpression:
		return !ev.matchIn(e.Expression, parent, el)
	case *filter.AttributeExpression:
		ref, _ := ev.k.resolvePath(e.AttributePath, parent)
		v, present := el[ref.sub.Name()]
		return compareValues(ref.target(), e, []any{v}, present)
	}
	return false
}

// memberValueEq recognises members[value eq "id"].
func memberValueEq(e *filter.ValuePath) (string, bool) {
	if !strings.EqualFold(e.AttributePath.AttributeName, "members") || e.AttributePath.SubAttribute != nil {
		return "", false
	}
	ae, ok := e.ValueFilter.(*filter.AttributeExpression)
	if !ok || ae.Operator != filter.EQ || !strings.EqualFold(ae.AttributePath.AttributeName, "value") {
		return "", false
	}
	s, ok := ae.CompareValue.(string)
	return s, ok
}

// compareRef evaluates one comparison against the values a path reaches in m.
func compareRef(ref attrRef, e *filter.AttributeExpression, m map[string]any) bool {
	v, present := ref.value(m)
	if !present {
		return compareValues(ref.target(), e, nil, false)
	}
	if ref.sub == nil {
		return compareValues(ref.attr, e, asList(v), true)
	}
	var vals []any
	for _, el := range asList(v) {
		if obj, ok := el.(map[string]any); ok {
			if sv, ok := obj[ref.sub.Name()]; ok {
				vals = append(vals, sv)
			}
		}
	}
	return compareValues(*ref.sub, e, vals, len(vals) > 0)
}

// compareValues is true when any value satisfies the comparison; ne is the negation of eq.
func compareValues(a schema.CoreAttribute, e *filter.AttributeExpression, vals []any, present bool) bool {
	switch e.Operator {
	case filter.PR:
		for _, v := range vals {
			if !compare.Unassigned(v) {
				return true
			}
		}
		return false
	case filter.NE:
		eq := *e
		eq.Operator = filter.EQ
		return !compareValues(a, &eq, vals, present)
	}
	for _, v := range vals {
		if compareOne(a, e.Operator, v, e.CompareValue) {
			return true
		}
	}
	return false
}

func compareOne(a schema.CoreAttribute, op filter.CompareOperator, v, want any) bool {
	r, ok := compare.Values(a.AttributeType(), a.CaseExact(), op, v, want)
	return ok && r
}
