package storagetest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var memberTests = []test{
	{"both directions", testMembers},
	{"ids that are prefixes of others", testMemberPrefixes},
	{"touching members", testTouchMembers},
}

// byValue sorts members by id: the order of Members is the engine's.
func byValue(ms []storage.Member) []storage.Member {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b storage.Member) int { return strings.Compare(a.Value, b.Value) })
	return out
}

// members returns group's members in the order Members gives them.
func (e *env) members(group string) []storage.Member {
	e.t.Helper()
	var out []storage.Member
	e.read(func(tx storage.Tx) error {
		out = nil
		return tx.Members(group, func(m storage.Member) error {
			out = append(out, m)
			return nil
		})
	})
	return out
}

func (e *env) memberOf(member string) []string {
	e.t.Helper()
	var out []string
	e.read(func(tx storage.Tx) error {
		var err error
		out, err = tx.MemberOf(member)
		return err
	})
	return out
}

func testMembers(t *testing.T, open Opener) {
	e := newEnv(t, open)
	u1, u2, u3, g1, g2 := "u-1", "u-2", "u-3", "g-1", "g-2"
	e.write(func(tx storage.Tx) error {
		for _, add := range []struct {
			group string
			m     storage.Member
		}{
			{g1, storage.Member{Value: u3, Type: "User", Display: "Three"}},
			{g1, storage.Member{Value: u1, Type: "User", Display: "One"}},
			{g2, storage.Member{Value: u1, Type: "User"}},
			{g1, storage.Member{Value: g2, Type: "Group", Display: "Two"}},
			{g1, storage.Member{Value: u2, Type: "User", Display: "Two"}},
		} {
			if err := tx.AddMember(add.group, add.m); err != nil {
				return err
			}
		}
		return nil
	})
	want := []storage.Member{
		{Value: g2, Type: "Group", Display: "Two"},
		{Value: u1, Type: "User", Display: "One"},
		{Value: u2, Type: "User", Display: "Two"},
		{Value: u3, Type: "User", Display: "Three"},
	}
	order := e.members(g1)
	if got := byValue(order); !slices.Equal(got, want) {
		t.Errorf("Members(g1): %+v, want %+v", got, want)
	}
	if got := e.members(g1); !slices.Equal(got, order) {
		t.Errorf("Members(g1) again: %+v, then %+v", order, got)
	}
	if got := e.memberOf(u1); !slices.Equal(got, []string{g1, g2}) {
		t.Errorf("MemberOf(u1): %v", got)
	}
	if got := e.memberOf(g2); !slices.Equal(got, []string{g1}) {
		t.Errorf("MemberOf(g2): %v", got)
	}
	e.read(func(tx storage.Tx) error {
		m, ok, err := tx.Member(g1, u3)
		if err != nil || !ok || m != (storage.Member{Value: u3, Type: "User", Display: "Three"}) {
			t.Errorf("Member(g1, u3): %+v %v %v", m, ok, err)
		}
		if _, ok, err := tx.Member(g2, u3); ok || err != nil {
			t.Errorf("Member(g2, u3) of a non-member: %v %v", ok, err)
		}
		if _, ok, err := tx.Member("g-9", u1); ok || err != nil {
			t.Errorf("Member of an unknown group: %v %v", ok, err)
		}
		return nil
	})
	// Adding again updates the display and type; the group keeps one membership.
	e.write(func(tx storage.Tx) error {
		return tx.AddMember(g1, storage.Member{Value: u3, Type: "User", Display: "Third"})
	})
	want[3].Display = "Third"
	got := e.members(g1)
	if !slices.Equal(byValue(got), want) {
		t.Errorf("after updating a membership: %+v", got)
	}
	for i := range got { // u3 keeps its place
		if got[i].Value != order[i].Value {
			t.Errorf("after updating a membership, the order %+v, before %+v", got, order)
			break
		}
	}
	var removed, again bool
	e.write(func(tx storage.Tx) error {
		var err error
		if removed, err = tx.RemoveMember(g1, u1); err != nil {
			return err
		}
		again, err = tx.RemoveMember(g1, u1)
		return err
	})
	if !removed || again {
		t.Errorf("RemoveMember reported %v, then %v; want true, then false", removed, again)
	}
	if got := e.memberOf(u1); !slices.Equal(got, []string{g2}) {
		t.Errorf("MemberOf(u1) after removal: %v", got)
	}
	if got := byValue(e.members(g1)); len(got) != 3 || got[0].Value != g2 || got[1].Value != u2 || got[2].Value != u3 {
		t.Errorf("Members(g1) after removal: %+v", got)
	}
	e.write(func(tx storage.Tx) error {
		for _, m := range []string{g2, u2, u3} {
			if _, err := tx.RemoveMember(g1, m); err != nil {
				return err
			}
		}
		return nil
	})
	if got := e.members(g1); len(got) != 0 {
		t.Errorf("an emptied group has %+v", got)
	}
	if got := e.memberOf(u3); len(got) != 0 {
		t.Errorf("MemberOf(u3) after its only group removed it: %v", got)
	}
	if got := e.memberOf("nobody"); len(got) != 0 {
		t.Errorf("MemberOf of an unknown id: %v", got)
	}
	err := e.s.Read(ctx, tenantA, func(tx storage.Tx) error {
		return tx.Members(g2, func(storage.Member) error { return errSentinel })
	})
	if err != errSentinel {
		t.Errorf("Members returned %v, not the error of fn", err)
	}
}

// testMemberPrefixes: a group's members and a member's groups are exactly theirs when ids are
// prefixes of one another.
func testMemberPrefixes(t *testing.T, open Opener) {
	e := newEnv(t, open)
	e.write(func(tx storage.Tx) error {
		for _, p := range [][2]string{{"g", "u"}, {"g1", "u1"}, {"g10", "u10"}, {"g1", "u"}, {"g10", "u1"}} {
			if err := tx.AddMember(p[0], storage.Member{Value: p[1], Type: "User"}); err != nil {
				return err
			}
		}
		return nil
	})
	values := func(ms []storage.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Value)
		}
		return out
	}
	for group, want := range map[string][]string{"g": {"u"}, "g1": {"u", "u1"}, "g10": {"u1", "u10"}, "g2": nil} {
		if got := values(byValue(e.members(group))); !slices.Equal(got, want) {
			t.Errorf("Members(%s): %v, want %v", group, got, want)
		}
	}
	for member, want := range map[string][]string{"u": {"g", "g1"}, "u1": {"g1", "g10"}, "u10": {"g10"}, "u2": nil} {
		if got := e.memberOf(member); !slices.Equal(got, want) {
			t.Errorf("MemberOf(%s): %v, want %v", member, got, want)
		}
	}
}

// testTouchMembers: what a membership change does to the member (a touch, as the domain does it)
// shows in every read of the record — Get, Scan — and leaves its memberships, its document and
// its later versions as they were; a deleted record takes its touches with it.
func testTouchMembers(t *testing.T, open Opener) {
	e := newEnv(t, open)
	team := storage.NewID()
	e.insert(Teams, rec(Teams, team, obj{"name": "team"}))
	ids := []string{storage.NewID(), storage.NewID(), storage.NewID()}
	for i, id := range ids {
		e.insert(People, rec(People, id, obj{"userName": string(rune('a' + i))}))
	}
	before := e.get(People, ids[1])
	var now time.Time
	e.write(func(tx storage.Tx) error {
		now = tx.Now()
		for _, id := range ids[:2] {
			if err := tx.AddMember(team, storage.Member{Value: id, Type: "User"}); err != nil {
				return err
			}
			if err := tx.Touch(People, id); err != nil {
				return err
			}
			if err := tx.Touch(Teams, team); err != nil {
				return err
			}
		}
		return nil
	})
	got := e.get(People, ids[1])
	if got.Version != 2 || !got.Modified.Equal(now) || !bytes.Equal(got.Doc, before.Doc) {
		t.Errorf("a member after its touch: version %d modified %v; want version 2 modified at %v, the same document", got.Version, got.Modified, now)
	}
	if g := e.get(Teams, team); g.Version != 2 {
		t.Errorf("the team touched twice in one transaction: version %d, want 2", g.Version)
	}
	// A touched record is found in its own collection only: the domain tells a member's kind by
	// which collection's touch succeeds.
	for _, other := range []struct {
		c  *storage.Collection
		id string
	}{{Teams, ids[0]}, {People, team}} {
		err := e.s.Write(ctx, tenantA, func(tx storage.Tx) error { return tx.Touch(other.c, other.id) })
		wantCode(t, "a touch of a touched record in the other collection", err, storage.NotFound)
	}
	var scanned []uint64
	e.read(func(tx storage.Tx) error {
		scanned = nil
		return tx.Scan(People, storage.Position{}, func(r storage.Record) (bool, error) {
			scanned = append(scanned, r.Version)
			return true, nil
		})
	})
	if !slices.Equal(scanned, []uint64{2, 2, 1}) {
		t.Errorf("Scan's versions after touching the first two: %v, want [2 2 1]", scanned)
	}
	if got := e.memberOf(ids[0]); !slices.Equal(got, []string{team}) {
		t.Errorf("MemberOf a touched member: %v, want [%s]", got, team)
	}
	if got := e.members(team); len(got) != 2 {
		t.Errorf("the team's members: %v, want two", got)
	}
	// A touch in a later transaction, then an update: each a new version, never back.
	e.write(func(tx storage.Tx) error { return tx.Touch(People, ids[0]) })
	e.write(func(tx storage.Tx) error {
		_, err := tx.Update(People, rec(People, ids[0], obj{"userName": "a2"}))
		return err
	})
	if got := e.get(People, ids[0]); got.Version != 4 || !bytes.Contains(got.Doc, []byte(`"a2"`)) {
		t.Errorf("after two touches and an update: version %d doc %s, want version 4 and the new document", got.Version, got.Doc)
	}
	e.write(func(tx storage.Tx) error { return tx.Touch(People, ids[0]) })
	if got := e.get(People, ids[0]); got.Version != 5 {
		t.Errorf("a touch after the update: version %d, want 5", got.Version)
	}
	e.write(func(tx storage.Tx) error {
		if _, err := tx.RemoveMember(team, ids[1]); err != nil {
			return err
		}
		return tx.Delete(People, ids[1])
	})
	e.write(func(tx storage.Tx) error {
		_, err := tx.Insert(People, rec(People, ids[1], obj{"userName": "b"}))
		return err
	})
	if got := e.get(People, ids[1]); got.Version != 1 {
		t.Errorf("a touched record deleted and inserted again: version %d, want 1", got.Version)
	}
}
