package scimserver

import (
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/storage"
)

// candidates returns the ids an index says may match expr, or ok=false when no index applies
// and the caller must scan. Every candidate is still checked against the whole filter.
//
// The indexed lookups are the kind's declared indexes (an eq on the attribute an index is
// declared on; "emails eq" and "emails[value eq …]" stand for emails.value), id eq, and, for a
// kind with members, members[value eq …] through the memberships. An and uses one indexed
// side; an or needs both sides indexed.
func (k *Kind) candidates(tx storage.Tx, expr filter.Expression) ([]string, bool, error) {
	if expr == nil {
		return nil, false, nil
	}
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		l, lok, err := k.candidates(tx, e.Left)
		if err != nil {
			return nil, false, err
		}
		if e.Operator == filter.AND {
			if lok {
				return l, true, nil
			}
			return k.candidates(tx, e.Right)
		}
		if !lok {
			return nil, false, nil
		}
		r, rok, err := k.candidates(tx, e.Right)
		if err != nil || !rok {
			return nil, false, err
		}
		ids := append(l, r...)
		slices.Sort(ids)
		return slices.Compact(ids), true, nil
	case *filter.ValuePath:
		if id, ok := memberValueEq(e); ok && k.hasMembers {
			ids, err := tx.MemberOf(id)
			return ids, true, err
		}
		ref, ok := k.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName, "")
		if !ok {
			return nil, false, nil
		}
		if v, ok := eqValue(e.ValueFilter, "value"); ok {
			if s, ok := ref.attr.SubAttributes().ContainsAttribute("value"); ok {
				ref.sub = &s
				return k.lookup(tx, ref, v)
			}
		}
	case *filter.AttributeExpression:
		v, ok := e.CompareValue.(string)
		if e.Operator != filter.EQ || !ok {
			return nil, false, nil
		}
		if e.AttributePath.URIPrefix == nil && strings.EqualFold(e.AttributePath.AttributeName, "id") && e.AttributePath.SubAttribute == nil {
			return []string{v}, true, nil
		}
		ref, ok := k.resolvePath(e.AttributePath, nil)
		if !ok {
			return nil, false, nil
		}
		return k.lookup(tx, ref, v)
	}
	return nil, false, nil
}

// lookup answers "ref eq v" from the index declared on ref's attribute, if there is one.
func (k *Kind) lookup(tx storage.Tx, ref attrRef, v string) ([]string, bool, error) {
	path := ref.path()
	for _, ix := range k.Collection.Indexes {
		if strings.EqualFold(ix.Attr, path) {
			ids, err := tx.Lookup(k.Collection, ix.Name, v)
			return ids, true, err
		}
	}
	return nil, false, nil
}

// eqValue finds `attr eq "v"` in an and-chain of a value filter.
func eqValue(expr filter.Expression, attr string) (string, bool) {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		if e.Operator != filter.AND {
			return "", false
		}
		if v, ok := eqValue(e.Left, attr); ok {
			return v, true
		}
		return eqValue(e.Right, attr)
	case *filter.AttributeExpression:
		if e.Operator == filter.EQ && strings.EqualFold(e.AttributePath.AttributeName, attr) {
			v, ok := e.CompareValue.(string)
			return v, ok
		}
	}
	return "", false
}
