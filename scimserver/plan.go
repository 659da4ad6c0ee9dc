package scimserver

import (
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/storage"
)

// lookupPlan is how indexes answer a filter: one lookup, or the union of several. Planning
// needs no transaction, so a query knows before it reads whether it will scan.
type lookupPlan struct {
	index, value string // a declared index of the kind, byID or byMember
	union        []lookupPlan
}

// Lookups that are not declared indexes: the id itself, and the memberships' reverse index.
const (
	byID     = "\x00id"
	byMember = "\x00member"
)

// plan returns the lookups indexes can answer expr with, or nil when none applies and the
// caller must scan. Every candidate they find is still checked against the whole filter.
//
// The indexed lookups are the kind's declared indexes (an eq on the attribute an index is
// declared on; "emails eq" and "emails[value eq …]" stand for emails.value), id eq, and, for a
// kind with members, members[value eq …] through the memberships. An and uses one indexed
// side; an or needs both sides indexed.
func (k *Kind) plan(expr filter.Expression) *lookupPlan {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		l := k.plan(e.Left)
		if e.Operator == filter.AND {
			if l != nil {
				return l
			}
			return k.plan(e.Right)
		}
		r := k.plan(e.Right)
		if l == nil || r == nil {
			return nil
		}
		return &lookupPlan{union: []lookupPlan{*l, *r}}
	case *filter.ValuePath:
		if id, ok := memberValueEq(e); ok && k.hasMembers {
			return &lookupPlan{index: byMember, value: id}
		}
		ref, ok := k.resolve(e.AttributePath.URI(), e.AttributePath.AttributeName, "")
		if !ok {
			return nil
		}
		if v, ok := eqValue(e.ValueFilter, "value"); ok {
			if s, ok := ref.attr.SubAttributes().ContainsAttribute("value"); ok {
				ref.sub = &s
				return k.indexFor(ref, v)
			}
		}
	case *filter.AttributeExpression:
		v, ok := e.CompareValue.(string)
		if e.Operator != filter.EQ || !ok {
			return nil
		}
		if e.AttributePath.URIPrefix == nil && strings.EqualFold(e.AttributePath.AttributeName, "id") && e.AttributePath.SubAttribute == nil {
			return &lookupPlan{index: byID, value: v}
		}
		ref, ok := k.resolvePath(e.AttributePath, nil)
		if !ok {
			return nil
		}
		return k.indexFor(ref, v)
	}
	return nil
}

// indexFor plans "ref eq v" on the index declared on ref's attribute, if there is one.
func (k *Kind) indexFor(ref attrRef, v string) *lookupPlan {
	path := ref.path()
	for _, ix := range k.Collection.Indexes {
		if strings.EqualFold(ix.Attr, path) {
			return &lookupPlan{index: ix.Name, value: v}
		}
	}
	return nil
}

// ids runs the plan: the ids of k's records that may match, sorted, each once.
func (p lookupPlan) ids(tx storage.Tx, k *Kind) ([]string, error) {
	var ids []string
	var err error
	switch {
	case p.union != nil:
		for _, q := range p.union {
			more, err := q.ids(tx, k)
			if err != nil {
				return nil, err
			}
			ids = append(ids, more...)
		}
	case p.index == byID:
		ids = []string{p.value}
	case p.index == byMember:
		ids, err = tx.MemberOf(p.value)
	default:
		ids, err = tx.Lookup(k.Collection, p.index, p.value)
	}
	slices.Sort(ids)
	return slices.Compact(ids), err
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
