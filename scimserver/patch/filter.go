package patch

import (
	"encoding/json"
	"strings"

	"github.com/elimity-com/scim/schema"
	datetime "github.com/q-uint/xsd-datetime"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/compare"
)

// checkFilter validates a value filter against the multi-valued attribute it selects from and
// returns a copy with canonical sub-attribute names and comparison values of the sub-attribute's
// type (Entra writes `primary eq "True"`), so that evaluating it, here or in the caller for
// RemoveWhere, needs no further conversion. For a multi-valued simple attribute the filter
// names the element itself as "value" (RFC 7644 §3.5.2).
func checkFilter(e filter.Expression, attr schema.CoreAttribute) (filter.Expression, *Error) {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		left, err := checkFilter(e.Left, attr)
		if err != nil {
			return nil, err
		}
		right, err := checkFilter(e.Right, attr)
		if err != nil {
			return nil, err
		}
		return &filter.LogicalExpression{Left: left, Right: right, Operator: e.Operator}, nil
	case *filter.NotExpression:
		inner, err := checkFilter(e.Expression, attr)
		if err != nil {
			return nil, err
		}
		return &filter.NotExpression{Expression: inner}, nil
	case *filter.AttributeExpression:
		return checkComparison(e, attr)
	}
	return nil, errorf(invalidPath, "nested value filters are not supported")
}

func checkComparison(e *filter.AttributeExpression, attr schema.CoreAttribute) (filter.Expression, *Error) {
	name := e.AttributePath.AttributeName
	if e.AttributePath.URIPrefix != nil || e.AttributePath.SubAttribute != nil {
		return nil, errorf(invalidPath, "a value filter can only name sub-attributes of %s", attr.Name())
	}
	def, ok := elementDef(attr, name)
	if !ok {
		return nil, errorf(invalidPath, "the filter names %s, which is no sub-attribute of %s", safeName(name), attr.Name())
	}
	out := &filter.AttributeExpression{
		AttributePath: filter.AttributePath{AttributeName: def.Name()},
		Operator:      e.Operator,
	}
	typ := def.AttributeType()
	switch e.Operator {
	case filter.PR:
		return out, nil
	case filter.EQ, filter.NE:
	case filter.CO, filter.SW, filter.EW:
		if !isStringType(typ) {
			return nil, errorf(invalidPath, "operator %s needs a string sub-attribute, %s is %s", e.Operator, def.Name(), typ)
		}
	case filter.GT, filter.GE, filter.LT, filter.LE:
		if typ == "boolean" || typ == "binary" {
			return nil, errorf(invalidPath, "operator %s cannot compare %s attribute %s", e.Operator, typ, def.Name())
		}
	default:
		return nil, errorf(invalidPath, "unsupported filter operator")
	}
	v, ok := filterValue(def, e.CompareValue)
	if !ok {
		return nil, errorf(invalidPath, "the filter compares %s (%s) with a value of another type", def.Name(), typ)
	}
	out.CompareValue = v
	return out, nil
}

// elementDef returns the definition an element filter or member map key refers to.
func elementDef(attr schema.CoreAttribute, name string) (schema.CoreAttribute, bool) {
	if attr.AttributeType() != "complex" {
		return attr, strings.EqualFold(name, "value")
	}
	return attr.SubAttributes().ContainsAttribute(name)
}

func isStringType(typ string) bool {
	switch typ {
	case "string", "reference", "binary", "dateTime":
		return true
	}
	return false
}

// filterValue converts a filter comparison value to the type of def, reporting false when it
// cannot be compared with values of def at all.
func filterValue(def schema.CoreAttribute, v any) (any, bool) {
	switch typ := def.AttributeType(); {
	case typ == "boolean":
		return boolValue(v)
	case typ == "integer" || typ == "decimal":
		n, ok := v.(json.Number)
		return n, ok
	case isStringType(typ):
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		// The parser keeps JSON escapes; undo them so `display eq "a\"b"` compares with a"b.
		var unq string
		if json.Unmarshal([]byte(`"`+s+`"`), &unq) == nil {
			s = unq
		}
		if typ == "dateTime" {
			_, err := datetime.Parse(s)
			return s, err == nil
		}
		return s, true
	}
	return nil, false
}

// boolValue accepts a JSON boolean or, because Entra sends them, "true"/"false" in any case.
func boolValue(v any) (any, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		if strings.EqualFold(v, "true") {
			return true, true
		}
		if strings.EqualFold(v, "false") {
			return false, true
		}
	}
	return nil, false
}

// matches evaluates a filter produced by checkFilter against one element of attr.
func matches(e filter.Expression, attr schema.CoreAttribute, elem any) bool {
	switch e := e.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return matches(e.Left, attr, elem) && matches(e.Right, attr, elem)
		}
		return matches(e.Left, attr, elem) || matches(e.Right, attr, elem)
	case *filter.NotExpression:
		return !matches(e.Expression, attr, elem)
	case *filter.AttributeExpression:
		def, _ := elementDef(attr, e.AttributePath.AttributeName)
		v := elem
		if attr.AttributeType() == "complex" {
			v = asMap(elem)[def.Name()]
		}
		if e.Operator == filter.PR {
			return !compare.Unassigned(v)
		}
		c, ok := compare.Values(def.AttributeType(), def.CaseExact(), e.Operator, v, e.CompareValue)
		if !ok {
			return e.Operator == filter.NE // an absent or mistyped value equals nothing
		}
		return c
	}
	return false
}

// eqPairs returns the sub-attribute values a filter pins down when it is a conjunction of eq
// comparisons, e.g. {"type": "work"} for `type eq "work"`: an add or replace through such a
// filter that matches nothing creates an element with these values, which is what Entra and
// Microsoft's validator expect for `emails[type eq "work"].value`.
func eqPairs(e filter.Expression) (map[string]any, bool) {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ {
			return nil, false
		}
		return map[string]any{e.AttributePath.AttributeName: e.CompareValue}, true
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return nil, false
		}
		left, ok := eqPairs(e.Left)
		if !ok {
			return nil, false
		}
		right, ok := eqPairs(e.Right)
		if !ok {
			return nil, false
		}
		for k, v := range right {
			if w, dup := left[k]; dup && w != v {
				return nil, false // `type eq "a" and type eq "b"` describes no element
			}
			left[k] = v
		}
		return left, true
	}
	return nil, false
}
