package scimserver

import (
	"strings"

	"github.com/scimserver/scimserver/storage"
)

// membersFromBody takes the members list out of a Group POST or PUT body (membership is stored
// apart from the group document) and checks each entry's shape.
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
	list, ok := raw.([]any)
	if !ok {
		return nil, badRequest("invalidValue", "members must be a list")
	}
	var out []storage.Member
	seen := map[string]bool{}
	for _, el := range list {
		obj, ok := el.(map[string]any)
		if !ok {
			return nil, badRequest("invalidValue", "each member must be an object with a value")
		}
		mem, err := memberFrom(obj)
		if err != nil {
			return nil, err
		}
		if !seen[mem.Value] {
			seen[mem.Value] = true
			out = append(out, mem)
		}
	}
	return out, nil
}

func memberFrom(obj map[string]any) (storage.Member, error) {
	var mem storage.Member
	for k, v := range obj {
		s, isString := v.(string)
		if v != nil && !isString {
			return mem, badRequest("invalidValue", "member attributes (value, display, type, $ref) must be strings")
		}
		switch strings.ToLower(k) {
		case "value":
			mem.Value = s
		case "display":
			mem.Display = s
		case "type":
			switch strings.ToLower(s) {
			case "", "user", "group":
			default:
				return mem, badRequest("invalidValue", `member type must be "User" or "Group"`)
			}
		}
	}
	if mem.Value == "" {
		return mem, badRequest("invalidValue", "each member needs a value: the id of a user or group")
	}
	if err := checkValues(mem.Display); err != nil {
		return mem, err
	}
	return mem, nil
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
