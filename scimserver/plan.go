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
// Indexed: id eq; Users userName eq, externalId eq, emails.value eq (also emails eq and
// emails[value eq …]); Groups displayName eq, externalId eq, members[value eq …]. An and uses
// one indexed side; an or needs both sides indexed.
func (rt *resourceType) candidates(tx *storage.Tx, expr filter.Expression) ([]string, bool, error) {
	if expr == nil {
		return nil, false, nil
	}
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		l, lok, err := rt.candidates(tx, e.Left)
		if err != nil {
			return nil, false, err
		}
		if e.Operator == filter.AND {
			if lok {
				return l, true, nil
			}
			return rt.candidates(tx, e.Right)
		}
		if !lok {
			return nil, false, nil
		}
		r, rok, err := rt.candidates(tx, e.Right)
		if err != nil || !rok {
			return nil, false, err
		}
		ids := append(l, r...)
		slices.Sort(ids)
		return slices.Compact(ids), true, nil
	case *filter.ValuePath:
		if rt.name == "Group" {
			if id, ok := memberValueEq(e); ok {
				ids, err := tx.GroupsOf(id)
				return ids, true, err
			}
			return nil, false, nil
		}
		if rt.name == "User" && strings.EqualFold(e.AttributePath.AttributeName, "emails") {
			if v, ok := eqValue(e.ValueFilter, "value"); ok {
				return lookup(tx, rt, storage.ByEmail, v)
			}
		}
	case *filter.AttributeExpression:
		if e.Operator != filter.EQ || e.AttributePath.URIPrefix != nil && !strings.EqualFold(e.AttributePath.URI(), rt.core.ID) {
			return nil, false, nil
		}
		v, ok := e.CompareValue.(string)
		if !ok {
			return nil, false, nil
		}
		name, sub := strings.ToLower(e.AttributePath.AttributeName), strings.ToLower(e.AttributePath.SubAttributeName())
		switch {
		case name == "id" && sub == "":
			return []string{v}, true, nil
		case name == "externalid" && sub == "":
			return lookup(tx, rt, storage.ByExternalID, v)
		case rt.name == "User" && name == "username" && sub == "":
			return lookup(tx, rt, storage.ByUserName, v)
		case rt.name == "User" && name == "emails" && (sub == "" || sub == "value"):
			return lookup(tx, rt, storage.ByEmail, v)
		case rt.name == "Group" && name == "displayname" && sub == "":
			return lookup(tx, rt, storage.ByDisplayName, v)
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

func lookup(tx *storage.Tx, rt *resourceType, index, value string) ([]string, bool, error) {
	var ids []string
	var err error
	if rt.name == "User" {
		ids, err = tx.LookupUsers(index, value)
	} else {
		ids, err = tx.LookupGroups(index, value)
	}
	slices.Sort(ids)
	return ids, true, err
}
