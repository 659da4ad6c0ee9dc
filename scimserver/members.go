package scimserver

import (
	"strings"

	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// Memberships are stored apart from group documents, one per member, so that a group of any
// size changes by one key per member added or removed. A member's representation shows its
// groups, and a group's shows its members: a change to a membership gives both new versions.

// membersFromBody takes the members list out of a POST or PUT body of a kind with members and
// reads it as a PATCH value is read.
func membersFromBody(m map[string]any) ([]storage.Member, error) {
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
		return nil, invalid("invalidValue", "members must be a list")
	}
	parsed, err := patch.ParseMembers(raw)
	if err == nil {
		err = checkMembers(parsed)
	}
	if err != nil {
		return nil, ErrorOf(err)
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

// Every membership that begins or ends appends its own event (member-add, member-remove: the
// group, its new version and the member), so that a follower of the trail learns who joined or
// left without reading the member list. Only the memberships of a group being deleted end
// silently: the group's delete says it.

// addMember makes m a member of group gid, or updates its display. The member must be a record
// of the tenant that can be a member: not the group itself, not an anonymized user. It reports
// whether the membership is new.
func (s *Service) addMember(tx storage.Tx, actor Actor, gid string, m storage.Member) (bool, error) {
	if m.Value == gid {
		return false, invalid("invalidValue", "a group cannot be a member of itself")
	}
	var kind *Kind
	for _, k := range s.kinds {
		if tx.Exists(k.Collection, m.Value) {
			kind = k
			break
		}
	}
	if kind == nil {
		return false, invalid("invalidValue", "a member is not a user or group of this tenant")
	}
	if kind.audited {
		if err := notAnonymized(tx, m.Value); err != nil {
			return false, err
		}
	}
	_, existed, err := tx.Member(gid, m.Value)
	if err != nil {
		return false, err
	}
	m.Type = kind.Name
	if err := tx.AddMember(gid, m); err != nil {
		return false, err
	}
	if err := s.touchMembership(tx, gid, m.Value); err != nil {
		return false, err
	}
	if existed {
		return false, nil
	}
	return true, s.recordMembership(tx, actor, opMemberAdd, gid, m)
}

// removeMember ends a membership and reports whether there was one.
func (s *Service) removeMember(tx storage.Tx, actor Actor, gid, mid string) (bool, error) {
	m, ok, err := tx.Member(gid, mid)
	if err != nil || !ok {
		return false, err
	}
	if _, err := s.dropMember(tx, gid, mid); err != nil {
		return false, err
	}
	return true, s.recordMembership(tx, actor, opMemberRemove, gid, m)
}

// dropMember ends a membership without an event of its own; removeMember records one.
func (s *Service) dropMember(tx storage.Tx, gid, mid string) (bool, error) {
	removed, err := tx.RemoveMember(gid, mid)
	if err != nil || !removed {
		return false, err
	}
	return true, s.touchMembership(tx, gid, mid)
}

// recordMembership appends the event of a membership that began or ended, with the version the
// group has now (a transaction gives it one new version, however many members change).
func (s *Service) recordMembership(tx storage.Tx, actor Actor, op, gid string, m storage.Member) error {
	g, err := s.groups.get(tx, gid)
	if err != nil {
		return err
	}
	return appendEvent(tx, actor, s.groups, storage.Event{Operation: op, ResourceID: gid, Version: g.Version, Related: m.Value, RelatedType: m.Type})
}

// touchMembership gives the group and the member new versions: the group's members and the
// member's groups changed. A group member's representation does not show its groups.
func (s *Service) touchMembership(tx storage.Tx, gid, mid string) error {
	if err := tx.Touch(s.groups.Collection, gid); err != nil {
		return found(err, s.groups.Name)
	}
	for _, k := range s.kinds {
		if !k.hasMembers && tx.Exists(k.Collection, mid) {
			return tx.Touch(k.Collection, mid)
		}
	}
	return nil
}

// touchMembers gives every member that shows its groups a new version: a group's name, which
// they show, changed.
func (s *Service) touchMembers(tx storage.Tx, gid string) error {
	return tx.Members(gid, func(m storage.Member) error {
		if k := s.kindNamed(m.Type); k != nil && !k.hasMembers {
			return tx.Touch(k.Collection, m.Value)
		}
		return nil
	})
}

// leaveAllGroups removes id from every group it is a member of, through the reverse index:
// O(its memberships), whatever the number of groups.
func (s *Service) leaveAllGroups(tx storage.Tx, actor Actor, id string) error {
	gids, err := tx.MemberOf(id)
	if err != nil {
		return err
	}
	for _, gid := range gids {
		if _, err := s.removeMember(tx, actor, gid, id); err != nil {
			return err
		}
	}
	return nil
}

// memberIDs lists the ids of a group's members.
func memberIDs(tx storage.Tx, gid string) ([]string, error) {
	var ids []string
	err := tx.Members(gid, func(m storage.Member) error { ids = append(ids, m.Value); return nil })
	return ids, err
}

// addMembers adds the members of a new group.
func (s *Service) addMembers(tx storage.Tx, actor Actor, gid string, members []storage.Member) error {
	for _, m := range members {
		if _, err := s.addMember(tx, actor, gid, m); err != nil {
			return err
		}
	}
	return nil
}

// replaceMembers makes a group's membership exactly want, touching only the difference. It
// reports whether a member that stays got a new display: a change of the member list that no
// membership event tells.
func (s *Service) replaceMembers(tx storage.Tx, actor Actor, gid string, want []storage.Member) (bool, error) {
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
		if _, err := s.removeMember(tx, actor, gid, id); err != nil {
			return false, err
		}
	}
	redisplayed := false
	for _, m := range want {
		if _, ok := keep[m.Value]; ok {
			added, err := s.addMember(tx, actor, gid, m)
			if err != nil {
				return false, err
			}
			redisplayed = redisplayed || !added
		}
	}
	return redisplayed, nil
}

// applyMembers carries out a PATCH's membership change one key at a time: adding or removing a
// member never reads the rest of the list, unless the change is a whole-list replace or a
// filter on something other than the member id. Like replaceMembers, it reports whether a
// member that stays got a new display.
func (s *Service) applyMembers(tx storage.Tx, actor Actor, k *Kind, gid string, mc patch.MemberChange) (bool, error) {
	if mc.ReplaceAll {
		want := make([]storage.Member, 0, len(mc.Add))
		for _, m := range mc.Add {
			want = append(want, storage.Member{Value: m.Value, Display: m.Display})
		}
		return s.replaceMembers(tx, actor, gid, want)
	}
	drop := mc.Remove
	if mc.RemoveAll {
		ids, err := memberIDs(tx, gid)
		if err != nil {
			return false, err
		}
		drop = ids
	}
	if len(mc.RemoveWhere) > 0 {
		ref, _ := k.resolve("", "members", "")
		ev := evaluator{k: k}
		err := tx.Members(gid, func(m storage.Member) error {
			el := map[string]any{"value": m.Value, "type": m.Type, "display": m.Display}
			for _, f := range mc.RemoveWhere {
				if ev.matchIn(f, &ref, el) {
					drop = append(drop, m.Value)
					break
				}
			}
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	for _, id := range drop {
		if _, err := s.removeMember(tx, actor, gid, id); err != nil {
			return false, err
		}
	}
	redisplayed := false
	for _, m := range mc.Add {
		cur, ok, err := tx.Member(gid, m.Value)
		if err != nil {
			return false, err
		}
		if ok && (m.Display == "" || m.Display == cur.Display) {
			continue
		}
		added, err := s.addMember(tx, actor, gid, storage.Member{Value: m.Value, Display: m.Display})
		if err != nil {
			return false, err
		}
		redisplayed = redisplayed || !added
	}
	return redisplayed, nil
}
