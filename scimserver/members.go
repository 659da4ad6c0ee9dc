package scimserver

import (
	"slices"
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

// groupEdit is one transaction's changes to the members of one group: the group gets its new
// version once, and every membership event of the transaction carries that version (a
// transaction gives a record one new version, however often it changes).
type groupEdit struct {
	tx      storage.Tx
	actor   Actor
	gid     string
	version uint64 // the group's version once touched in this transaction; 0 before
	exact   bool   // a member given without a display has none, rather than keeping its own
}

func editGroup(tx storage.Tx, actor Actor, gid string) *groupEdit {
	return &groupEdit{tx: tx, actor: actor, gid: gid}
}

// touched gives the group its new version, once, and returns it.
func (s *Service) touched(e *groupEdit) (uint64, error) {
	if e.version == 0 {
		if err := e.tx.Touch(s.groups.Collection, e.gid); err != nil {
			return 0, found(err, s.groups.Name)
		}
		g, err := s.groups.get(e.tx, e.gid)
		if err != nil {
			return 0, err
		}
		e.version = g.Version
	}
	return e.version, nil
}

// addMember makes m a member of the group, or updates its display. The member must be a record
// of the tenant that can be a member: not the group itself, not an anonymized user. It reports
// whether the membership is new, and whether an existing one got a new display; a member that
// already is one with that display (or with no display given) is left as it is.
func (s *Service) addMember(e *groupEdit, m storage.Member) (added, redisplayed bool, err error) {
	tx := e.tx
	if m.Value == e.gid {
		return false, false, invalid("invalidValue", "a group cannot be a member of itself")
	}
	cur, existed, err := tx.Member(e.gid, m.Value)
	if err != nil || (existed && (m.Display == "" && !e.exact || m.Display == cur.Display)) {
		return false, false, err
	}
	// Finding the member's kind by touching it saves a lookup: a refusal below discards the
	// touch with the rest of the transaction.
	var kind *Kind
	for _, k := range s.kinds {
		if k.hasMembers {
			if tx.Exists(k.Collection, m.Value) {
				kind = k
				break
			}
			continue
		}
		err := tx.Touch(k.Collection, m.Value)
		if err == nil {
			kind = k
			break
		}
		if storage.ErrorCode(err) != storage.NotFound {
			return false, false, err
		}
	}
	if kind == nil {
		return false, false, invalid("invalidValue", "a member is not a user or group of this tenant")
	}
	if kind.audited {
		if err := notAnonymized(tx, m.Value); err != nil {
			return false, false, err
		}
	}
	m.Type = kind.Name
	if err := tx.AddMember(e.gid, m); err != nil {
		return false, false, err
	}
	if _, err := s.touched(e); err != nil {
		return false, false, err
	}
	if existed {
		return false, true, nil
	}
	return true, false, s.recordMembership(e, opMemberAdd, m)
}

// removeMember ends a membership and reports whether there was one.
func (s *Service) removeMember(e *groupEdit, mid string) (bool, error) {
	m, ok, err := e.tx.Member(e.gid, mid)
	if err != nil || !ok {
		return false, err
	}
	if err := s.dropMember(e, m); err != nil {
		return false, err
	}
	return true, s.recordMembership(e, opMemberRemove, m)
}

// dropMember ends a membership without an event of its own; removeMember records one.
func (s *Service) dropMember(e *groupEdit, m storage.Member) error {
	if _, err := e.tx.RemoveMember(e.gid, m.Value); err != nil {
		return err
	}
	return s.touchMember(e, m)
}

// recordMembership appends the event of a membership that began or ended, with the version the
// group has after the transaction.
func (s *Service) recordMembership(e *groupEdit, op string, m storage.Member) error {
	version, err := s.touched(e)
	if err != nil {
		return err
	}
	return appendEvent(e.tx, e.actor, s.groups, storage.Event{Operation: op, ResourceID: e.gid, Version: version, Related: m.Value, RelatedType: m.Type})
}

// touchMember gives the group and the member new versions: the group's members and the member's
// groups changed. A group member's representation does not show its groups. The member's kind
// is the one its membership records.
func (s *Service) touchMember(e *groupEdit, m storage.Member) error {
	if _, err := s.touched(e); err != nil {
		return err
	}
	if k := s.kindNamed(m.Type); k != nil && !k.hasMembers {
		return e.tx.Touch(k.Collection, m.Value)
	}
	return nil
}

// touchMembers gives every member that shows its groups a new version: a group's name, which
// they show, changed.
func (s *Service) touchMembers(tx storage.Tx, gid string) error {
	var touch []storage.Member
	if err := tx.Members(gid, func(m storage.Member) error {
		if k := s.kindNamed(m.Type); k != nil && !k.hasMembers {
			touch = append(touch, m)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.prepare(tx, gid, nil, touch); err != nil {
		return err
	}
	for _, m := range touch {
		if err := tx.Touch(s.kindNamed(m.Type).Collection, m.Value); err != nil {
			return err
		}
	}
	return nil
}

// leaveAllGroups removes id from every group it is a member of, through the reverse index:
// O(its memberships), whatever the number of groups.
func (s *Service) leaveAllGroups(tx storage.Tx, actor Actor, id string) error {
	gids, err := tx.MemberOf(id)
	if err != nil {
		return err
	}
	for _, gid := range gids {
		if _, err := s.removeMember(editGroup(tx, actor, gid), id); err != nil {
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

// prepare names the members whose memberships of a group a write is about to change, or that it
// is about to touch, to an engine that reads better in one go (storage.MemberPreparer).
func (s *Service) prepare(tx storage.Tx, gid string, drop []string, add []storage.Member) error {
	p, ok := tx.(storage.MemberPreparer)
	if !ok || len(drop)+len(add) < 2 {
		return nil
	}
	ids := slices.Clone(drop)
	for _, m := range add {
		ids = append(ids, m.Value)
	}
	colls := make([]*storage.Collection, len(s.kinds))
	for i, k := range s.kinds {
		colls[i] = k.Collection
	}
	return p.PrepareMembers(gid, ids, colls)
}

// replaceMembers makes a group's membership exactly want, touching only the difference; a
// member of want without a display keeps the one it has unless exact is set.
func (s *Service) replaceMembers(tx storage.Tx, actor Actor, gid string, want []storage.Member, exact bool) (memberOutcome, error) {
	change, err := diffMembers(func(fn func(storage.Member) error) error { return tx.Members(gid, fn) }, want, exact)
	if err != nil {
		return memberOutcome{}, err
	}
	return s.changeMembers(tx, actor, gid, change)
}

// memberDiff is a change of a group's members: the ids to drop, then the members to add or give
// a new display (with exact, one given without a display has none, rather than keeping its own).
// Worked out by diffMembers it is the least change; a PATCH's own lists may also name ids that
// are not members, or members that stay as they are, which changeMembers leaves as they are.
type memberDiff struct {
	exact bool
	drop  []string
	add   []storage.Member
}

// diffMembers works out the difference between the members members lists and want, as
// replaceMembers describes it.
func diffMembers(members func(func(storage.Member) error) error, want []storage.Member, exact bool) (memberDiff, error) {
	keep := make(map[string]storage.Member, len(want))
	for _, m := range want {
		keep[m.Value] = m
	}
	d := memberDiff{exact: exact}
	err := members(func(m storage.Member) error {
		w, ok := keep[m.Value]
		switch {
		case !ok:
			d.drop = append(d.drop, m.Value)
		case w.Display == m.Display || w.Display == "" && !exact:
			delete(keep, m.Value)
		}
		return nil
	})
	for _, m := range want {
		if _, ok := keep[m.Value]; ok {
			d.add = append(d.add, m)
		}
	}
	return d, err
}

// memberOutcome is what a change of a group's members did: whether a member that stays got a
// new display (a change of the member list that no membership event tells), and the version it
// gave the group, 0 when it changed nothing.
type memberOutcome struct {
	redisplayed bool
	version     uint64
}

// changeMembers carries out d on group gid.
func (s *Service) changeMembers(tx storage.Tx, actor Actor, gid string, d memberDiff) (memberOutcome, error) {
	e := editGroup(tx, actor, gid)
	e.exact = d.exact
	if err := s.prepare(tx, gid, d.drop, d.add); err != nil {
		return memberOutcome{}, err
	}
	for _, id := range d.drop {
		if _, err := s.removeMember(e, id); err != nil {
			return memberOutcome{}, err
		}
	}
	out := memberOutcome{}
	for _, m := range d.add {
		_, re, err := s.addMember(e, m)
		if err != nil {
			return memberOutcome{}, err
		}
		out.redisplayed = out.redisplayed || re
	}
	out.version = e.version
	return out, nil
}

// applyMembers carries out a PATCH's membership change one key at a time: adding or removing a
// member never reads the rest of the list, unless the change is a whole-list replace or a clear,
// or a replay or filters on something other than the member id left to the writer (matched, see
// withMatches; from a snapshot of the group at version, the writer carries out only what it
// found). The group is at version.
func (s *Service) applyMembers(tx storage.Tx, actor Actor, k *Kind, gid string, version uint64, ops []patch.Operation, mc patch.MemberChange, matched *memberMatches) (memberOutcome, error) {
	if mc.Replay {
		told, err := s.told(tx, k, gid, version, ops, mc, matched)
		if err != nil {
			return memberOutcome{}, err
		}
		return s.changeMembers(tx, actor, gid, told.replayed)
	}
	if mc.ReplaceAll {
		want := make([]storage.Member, 0, len(mc.Add))
		for _, m := range mc.Add {
			want = append(want, storage.Member{Value: m.Value, Display: m.Display})
		}
		return s.replaceMembers(tx, actor, gid, want, false)
	}
	drop := mc.Remove
	if mc.RemoveAll {
		ids, err := memberIDs(tx, gid)
		if err != nil {
			return memberOutcome{}, err
		}
		drop = ids
	}
	if len(mc.RemoveWhere) > 0 {
		told, err := s.told(tx, k, gid, version, ops, mc, matched)
		if err != nil {
			return memberOutcome{}, err
		}
		drop = append(drop, told.ids...)
	}
	add := make([]storage.Member, len(mc.Add))
	for i, m := range mc.Add {
		add[i] = storage.Member{Value: m.Value, Display: m.Display}
	}
	return s.changeMembers(tx, actor, gid, memberDiff{drop: drop, add: add})
}
