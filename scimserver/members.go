package scimserver

import (
	"strings"

	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// membersFromBody takes the members list out of a Group POST or PUT body (membership is stored
// apart from the group document) and reads it as a PATCH value is read.
func membersFromBody(rt *resourceType, m map[string]any) ([]storage.Member, error) {
	if rt.name != "Group" {
		return nil, nil
	}
	var raw any
	for k, v := range m {
		if strings.EqualFold(k, "members") {
			raw = v
			delete(m, k)
		}
	}
	if raw == nil {
		return nil, nil
	}
	if _, ok := raw.([]any); !ok {
		return nil, badRequest("invalidValue", "members must be a list")
	}
	parsed, err := patch.ParseMembers(raw)
	if err == nil {
		err = checkMembers(parsed)
	}
	if err != nil {
		return nil, err
	}
	var out []storage.Member
	seen := map[string]bool{}
	for _, p := range parsed {
		if !seen[p.Value] {
			seen[p.Value] = true
			out = append(out, storage.Member{Value: p.Value, Display: p.Display})
		}
	}
	return out, nil
}

// checkMembers refuses member values the store should not keep (see checkValues), for POST, PUT
// and PATCH alike.
func checkMembers(members []patch.Member) error {
	for _, m := range members {
		if err := checkValues(m.Display); err != nil {
			return err
		}
	}
	return nil
}

// replaceMembers makes a group's membership exactly want, touching only the difference, and
// reports whether anything changed.
func replaceMembers(tx *storage.Tx, gid string, want []storage.Member) (bool, error) {
	keep := map[string]storage.Member{}
	for _, m := range want {
		keep[m.Value] = m
	}
	var drop []string
	if err := tx.Members(gid, func(m storage.Member) error {
		w, ok := keep[m.Value]
		switch {
		case !ok:
			drop = append(drop, m.Value)
		case w.Display == m.Display || w.Display == "":
			delete(keep, m.Value)
		}
		return nil
	}); err != nil {
		return false, err
	}
	for _, id := range drop {
		if _, err := tx.RemoveMember(gid, id); err != nil {
			return false, err
		}
	}
	for _, m := range want {
		if _, ok := keep[m.Value]; ok {
			if err := tx.AddMember(gid, m); err != nil {
				return false, err
			}
		}
	}
	return len(drop) > 0 || len(keep) > 0, nil
}
