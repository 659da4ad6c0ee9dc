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
	index, value string // a storage index (storage.ByUserName, …), byID or byMember
	union        []lookupPlan
}

// Lookups that are not storage indexes: the id itself, and a group's members' reverse index.
const (
	byID     = "id"
	byMember = "member"
)

// plan returns the lookups an index can answer expr with, or nil when no index applies and
// the caller must scan. Every candidate they find is still checked against the whole filter.
//
// Indexed: id eq; Users userName eq, externalId eq, emails.value eq (also emails eq and
// emails[value eq …]); Groups displayName eq, externalId eq, members[value eq …]. An and uses
// one indexed side; an or needs both sides indexed.
func (rt *resourceType) plan(expr filter.Expression) *lookupPlan {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		l := rt.plan(e.Left)
		if e.Operator == filter.AND {
			if l != nil {
				return l
			}
			return rt.plan(e.Right)
		}
		r := rt.plan(e.Right)
		if l == nil || r == nil {
			return nil
		}
		return &lookupPlan{union: []lookupPlan{*l, *r}}
	case *filter.ValuePath:
		if rt.name == "Group" {
			if id, ok := memberValueEq(e); ok {
				return &lookupPlan{index: byMember, value: id}
			}
			return nil
		}
		if rt.name == "User" && strings.EqualFold(e.AttributePath.AttributeName, "emails") {
			if v, ok := eqValue(e.ValueFilter, "value"); ok {
				return &lookupPlan{index: storage.ByEmail, value: v}
			}
		}
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.URIPrefix != nil && !strings.EqualFold(e.AttributePath.URI(), rt.core.ID) {
			return nil
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return nil
		}
		name, sub := strings.ToLower(e.AttributePath.AttributeName), strings.ToLower(e.AttributePath.SubAttributeName())
		switch {
		case name == "id" && sub == "":
			return &lookupPlan{index: byID, value: v}
		case name == "externalid" && sub == "":
			return &lookupPlan{index: storage.ByExternalID, value: v}
		case rt.name == "User" && name == "username" && sub == "":
			return &lookupPlan{index: storage.ByUserName, value: v}
		case rt.name == "User" && name == "emails" && (sub == "" || sub == "value"):
			return &lookupPlan{index: storage.ByEmail, value: v}
		case rt.name == "Group" && name == "displayname" && sub == "":
			return &lookupPlan{index: storage.ByDisplayName, value: v}
		}
	}
	return nil
}

// ids runs the plan: the ids of rt's records that may match, sorted, each once.
func (p lookupPlan) ids(tx *storage.Tx, rt *resourceType) ([]string, error) {
	var ids []string
	var err error
	switch {
	case p.union != nil:
		for _, q := range p.union {
			more, err := q.ids(tx, rt)
			if err != nil {
				return nil, err
			}
			ids = append(ids, more...)
		}
	case p.index == byID:
		ids = []string{p.value}
	case p.index == byMember:
		ids, err = tx.GroupsOf(p.value)
	case rt.name == "User":
		ids, err = tx.LookupUsers(p.index, p.value)
	default:
		ids, err = tx.LookupGroups(p.index, p.value)
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
