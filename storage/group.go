package storage

import (
	"encoding/json"
	"time"
)

// Group is a stored group. Its members live in their own bucket, one key per membership, so a
// group of any size changes by one key per member added or removed.
type Group struct {
	ID       string
	Doc      json.RawMessage
	Keys     GroupKeys
	Created  time.Time
	Modified time.Time
	Version  uint64
}

// GroupKeys are a group's indexed values.
type GroupKeys struct {
	DisplayName string `json:"n"`           // unique per tenant, compared case-insensitively
	ExternalID  string `json:"x,omitempty"` // compared exactly
}

// Group index names for LookupGroups.
const (
	ByDisplayName = "displayName"
)

// Member is one membership of a group: a user or a group of the same tenant.
type Member struct {
	Value   string `json:"-"`
	Type    string `json:"t"` // "User" or "Group"
	Display string `json:"d,omitempty"`
}

// Group returns the group with id, without reading its members.
func (t *Tx) Group(id string) (Group, error) {
	raw := t.b.Bucket(bktGroups).Get([]byte(id))
	if raw == nil {
		return Group{}, errGroupNotFound
	}
	return decodeGroup(id, raw)
}

// GroupExists reports whether id is a group of the tenant.
func (t *Tx) GroupExists(id string) bool { return t.b.Bucket(bktGroups).Get([]byte(id)) != nil }

// CountGroups is the number of groups of the tenant.
func (t *Tx) CountGroups() int { return int(t.count("groups")) }

// GroupDeletes counts the groups ever deleted (see UserDeletes).
func (t *Tx) GroupDeletes() uint64 { return t.count("groupDeletes") }

// LookupGroups returns the ids of the groups whose indexed value under index equals value.
func (t *Tx) LookupGroups(index, value string) ([]string, error) {
	switch index {
	case ByDisplayName:
		if id := t.b.Bucket(bktGroupName).Get([]byte(Fold(value))); id != nil {
			return []string{string(id)}, nil
		}
		return nil, nil
	case ByExternalID:
		return indexLookup(t.b.Bucket(bktGroupExt), value)
	}
	return nil, Errorf(Invalid, "no group index %q", index)
}

// ScanGroups calls fn for every group in id order, after the id after and skip groups further,
// until fn returns false.
func (t *Tx) ScanGroups(after string, skip int, fn func(Group) (bool, error)) error {
	c := t.b.Bucket(bktGroups).Cursor()
	k, v := seek(c, after, skip)
	for ; k != nil; k, v = c.Next() {
		g, err := decodeGroup(string(k), v)
		if err != nil {
			return err
		}
		more, err := fn(g)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (k GroupKeys) check() error {
	if k.DisplayName == "" {
		return Errorf(Invalid, "displayName is required")
	}
	if err := checkKey("displayName", k.DisplayName); err != nil {
		return err
	}
	return checkKey("externalId", k.ExternalID)
}

// ScanGroupNames calls fn with group ids in the order of their displayNames compared
// case-insensitively (reversed when descending), after stepping over skip groups, until fn
// returns false.
func (t *Tx) ScanGroupNames(descending bool, skip int, fn func(id string) bool) {
	scanNames(t.b.Bucket(bktGroupName), descending, skip, fn)
}

// GroupPosition returns where ScanGroups must start (after, skip) to reach the group at 0-based
// position pos of the id order.
func (t *Tx) GroupPosition(pos int) (after string, skip int) { return groupOrder.find(t.b, pos) }

// GroupBefore returns the id just before id in id order ("" if none).
func (t *Tx) GroupBefore(id string) string { return before(t.b.Bucket(bktGroups), id) }

// CreateGroup stores a new group (without members; add them with AddMember).
func (t *Tx) CreateGroup(g Group) (Group, error) {
	if err := g.Keys.check(); err != nil {
		return Group{}, err
	}
	if t.GroupExists(g.ID) {
		return Group{}, Errorf(Conflict, "a group with that id already exists")
	}
	if err := t.indexGroup(g.ID, GroupKeys{}, g.Keys); err != nil {
		return Group{}, err
	}
	g.Created, g.Modified, g.Version = t.now, t.now, 1
	if err := t.putGroup(g); err != nil {
		return Group{}, err
	}
	if err := t.addCount("groups", 1); err != nil {
		return Group{}, err
	}
	return g, groupOrder.add(t.b, []byte(g.ID))
}

// UpdateGroup replaces a group's document and keys, bumping its version. Membership changes
// made in the same transaction bump it only once.
func (t *Tx) UpdateGroup(g Group) (Group, error) {
	old, err := t.Group(g.ID)
	if err != nil {
		return Group{}, err
	}
	if err := g.Keys.check(); err != nil {
		return Group{}, err
	}
	if err := t.indexGroup(g.ID, old.Keys, g.Keys); err != nil {
		return Group{}, err
	}
	g.Created, g.Modified, g.Version = old.Created, t.now, old.Version
	if old.Modified != t.now {
		g.Version++
	}
	if old.Keys.DisplayName != g.Keys.DisplayName {
		// Members show the group's name in their groups attribute: their versions change too.
		if err := t.Members(g.ID, func(m Member) error { return t.touchMember(m.Value) }); err != nil {
			return Group{}, err
		}
	}
	return g, t.putGroup(g)
}

// touchGroup records that a group's membership changed: new version, new lastModified.
func (t *Tx) touchGroup(id string) error {
	g, err := t.Group(id)
	if err != nil {
		return err
	}
	if g.Modified == t.now {
		return nil // already bumped in this transaction
	}
	g.Modified = t.now
	g.Version++
	return t.putGroup(g)
}

func (t *Tx) putGroup(g Group) error {
	raw, err := marshalGroup(g)
	if err != nil {
		return err
	}
	return t.appended(bktGroups).Put([]byte(g.ID), raw)
}

// DeleteGroup removes a group, its memberships, and its own membership in other groups.
func (t *Tx) DeleteGroup(id string) error {
	old, err := t.Group(id)
	if err != nil {
		return err
	}
	if err := t.indexGroup(id, old.Keys, GroupKeys{}); err != nil {
		return err
	}
	if err := t.RemoveAllMembers(id); err != nil {
		return err
	}
	if err := t.RemoveFromAllGroups(id); err != nil {
		return err
	}
	if err := t.b.Bucket(bktGroups).Delete([]byte(id)); err != nil {
		return err
	}
	if err := t.addCount("groupDeletes", 1); err != nil {
		return err
	}
	if err := t.addCount("groups", -1); err != nil {
		return err
	}
	return groupOrder.remove(t.b, []byte(id))
}

func (t *Tx) indexGroup(id string, old, new GroupKeys) error {
	names := t.b.Bucket(bktGroupName)
	if Fold(old.DisplayName) != Fold(new.DisplayName) {
		if new.DisplayName != "" {
			if owner := names.Get([]byte(Fold(new.DisplayName))); owner != nil && string(owner) != id {
				return Errorf(Conflict, "displayName is already taken")
			}
		}
		if old.DisplayName != "" {
			if err := names.Delete([]byte(Fold(old.DisplayName))); err != nil {
				return err
			}
		}
		if new.DisplayName != "" {
			if err := names.Put([]byte(Fold(new.DisplayName)), []byte(id)); err != nil {
				return err
			}
		}
	}
	ext := t.b.Bucket(bktGroupExt)
	if old.ExternalID != new.ExternalID {
		if old.ExternalID != "" {
			if err := indexDel(ext, old.ExternalID, id); err != nil {
				return err
			}
		}
		if new.ExternalID != "" {
			return indexAdd(ext, new.ExternalID, id)
		}
	}
	return nil
}

// AddMember adds m to group gid. The member must be a user or group of this tenant (Invalid
// otherwise); adding an existing member updates its display. A group cannot contain itself.
func (t *Tx) AddMember(gid string, m Member) error {
	switch {
	case m.Value == gid:
		return Errorf(Invalid, "a group cannot be a member of itself")
	case t.UserExists(m.Value):
		m.Type = "User"
		if f, err := t.Facts(m.Value); err != nil {
			return err
		} else if f.AnonymizedAt != nil {
			return Errorf(Anonymized, "an anonymized user cannot join a group")
		}
	case t.GroupExists(m.Value):
		m.Type = "Group"
	default:
		return Errorf(Invalid, "a member is not a user or group of this tenant")
	}
	if !t.GroupExists(gid) {
		return errGroupNotFound
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := t.b.Bucket(bktMembers).Put(pair(gid, m.Value), raw); err != nil {
		return err
	}
	if err := t.b.Bucket(bktMemberOf).Put(pair(m.Value, gid), nil); err != nil {
		return err
	}
	if err := t.touchMember(m.Value); err != nil {
		return err
	}
	return t.touchGroup(gid)
}

// touchMember gives a user a new version when its groups change: they are part of its
// representation, so its ETag must change with them.
func (t *Tx) touchMember(mid string) error {
	raw := t.b.Bucket(bktUsers).Get([]byte(mid))
	if raw == nil {
		return nil // a group member: a group's representation does not list its parents
	}
	u, err := decodeUser(mid, raw)
	if err != nil || u.Modified == t.now {
		return err // already bumped in this transaction
	}
	u.Modified = t.now
	u.Version++
	return t.putUser(u)
}

// RemoveMember removes member mid from group gid; it reports whether it was a member.
func (t *Tx) RemoveMember(gid, mid string) (bool, error) {
	k := pair(gid, mid)
	if t.b.Bucket(bktMembers).Get(k) == nil {
		return false, nil
	}
	if err := t.b.Bucket(bktMembers).Delete(k); err != nil {
		return false, err
	}
	if err := t.b.Bucket(bktMemberOf).Delete(pair(mid, gid)); err != nil {
		return false, err
	}
	if err := t.touchMember(mid); err != nil {
		return false, err
	}
	return true, t.touchGroup(gid)
}

// RemoveAllMembers empties group gid.
func (t *Tx) RemoveAllMembers(gid string) error {
	var ids []string
	if err := t.Members(gid, func(m Member) error { ids = append(ids, m.Value); return nil }); err != nil {
		return err
	}
	for _, mid := range ids {
		if _, err := t.RemoveMember(gid, mid); err != nil {
			return err
		}
	}
	return nil
}

// IsMember reports whether mid is a member of group gid.
func (t *Tx) IsMember(gid, mid string) bool {
	return t.b.Bucket(bktMembers).Get(pair(gid, mid)) != nil
}

// Member returns one membership.
func (t *Tx) Member(gid, mid string) (Member, bool, error) {
	raw := t.b.Bucket(bktMembers).Get(pair(gid, mid))
	if raw == nil {
		return Member{}, false, nil
	}
	var m Member
	err := json.Unmarshal(raw, &m)
	m.Value = mid
	return m, true, err
}

// Members calls fn for each member of group gid, in member id order.
func (t *Tx) Members(gid string, fn func(Member) error) error {
	c := t.b.Bucket(bktMembers).Cursor()
	prefix := prefixOf(gid)
	for k, v := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		m.Value = string(k[len(prefix):])
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// GroupsOf returns the ids of the groups that mid is a direct member of.
func (t *Tx) GroupsOf(mid string) ([]string, error) {
	var ids []string
	err := scanPrefix(t.b.Bucket(bktMemberOf), prefixOf(mid), func(rest []byte) error {
		ids = append(ids, string(rest))
		return nil
	})
	return ids, err
}

// RemoveFromAllGroups removes mid from every group it is a member of, through the reverse
// index: O(its memberships), whatever the number of groups.
func (t *Tx) RemoveFromAllGroups(mid string) error {
	gids, err := t.GroupsOf(mid)
	if err != nil {
		return err
	}
	for _, gid := range gids {
		if _, err := t.RemoveMember(gid, mid); err != nil {
			return err
		}
	}
	return nil
}
