package scimserver

import (
	"context"
	"errors"

	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// A PATCH that removes members by a filter on something other than their id
// (members[display sw "Ex"], members[type eq "Group"]) must compare every member of the group
// with its filters: a scan of the group, as long as the group is large. Done on the single
// writer, it would hold up every other write for as long, so it is done in a snapshot first,
// under the budget of a scan that no index serves, and the writer only checks that the group
// has not changed since. A PATCH whose outcome turns on what the group holds in other ways
// (patch.MemberChange.Replay) is replayed against the group's members the same way.

// memberMatches is what a snapshot of the group at version tells a PATCH's member change: the
// members its filters remove (ids), or, for a replay, what turns the members into those it
// leaves (replayed), so that the writer changes only that difference without reading them. With
// onWriter set it is still to be found, on the writer, within the budget onWriter gives as the
// writer starts on it, with members' $ref made from base.
type memberMatches struct {
	version  uint64
	ids      []string
	replayed memberDiff
	onWriter func() *budget
	base     string
}

// errGroupMoved: the group changed between the snapshot its members were matched in and the
// writer; the snapshot's matches no longer tell.
var errGroupMoved = errors.New("the group changed after its members were matched")

// errMembersTooMany answers a member scan past its budget.
var errMembersTooMany = invalid("tooMany", "comparing the group's members with the operations' filters needs more work than the server allows for one request; "+
	"remove members by value (members[value eq \"id\"]) or with fewer filters")

// errGroupBusy answers a match that found no scan slot, or that was left to the writer and did
// not fit its share of the budget.
var errGroupBusy = &Error{Code: Busy, Message: "the server has no room now to compare the group's members with the operations; retry later, or remove members by value"}

// writerShare is the part of the scan budget a match may take on the writer, where every other
// write waits for it.
const writerShare = 50

// withMatches runs patch with what the group's members tell mc (ops are its operations). When
// mc needs nothing of them it passes nil. Otherwise it works that out in a snapshot and runs
// patch, again from a new snapshot when the group changed in between (errGroupMoved), and after
// optimisticTries leaves the work to the writer, within 1/writerShare of the budget (past it:
// 429). Filters on a member's $ref compare the reference a read of the group shows, made from
// base.
func (s *Service) withMatches(ctx context.Context, tenant string, k *Kind, gid string, ops []patch.Operation, mc patch.MemberChange, base string, run func(*memberMatches) (Resource, error)) (Resource, error) {
	if !mc.Replay && len(mc.RemoveWhere) == 0 {
		return run(nil)
	}
	release, err := s.admitScan(ctx)
	if err == errScansBusy {
		err = errGroupBusy
	}
	if err != nil {
		return Resource{}, err
	}
	defer release()
	for range optimisticTries {
		m, err := s.matchMembers(ctx, tenant, k, gid, ops, mc, base)
		if err != nil {
			return Resource{}, err
		}
		if res, err := run(m); !errors.Is(err, errGroupMoved) {
			return res, err
		}
	}
	res, err := run(&memberMatches{onWriter: func() *budget { return newBudget(ctx, s.opts.ScanTimeout/writerShare) }, base: base})
	return res, s.writerMatchError(err)
}

// matchMembers works out, in a read transaction, what the members of group gid tell mc. A group
// that is not there has nothing to tell: the write then says it is not found.
func (s *Service) matchMembers(ctx context.Context, tenant string, k *Kind, gid string, ops []patch.Operation, mc patch.MemberChange, base string) (*memberMatches, error) {
	work := newBudget(ctx, s.opts.ScanTimeout)
	var m *memberMatches
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		g, err := k.get(tx, gid)
		if err != nil {
			return err
		}
		m, err = s.membersTell(tx, k, gid, ops, mc, base, work)
		if m != nil {
			m.version = g.Version
		}
		return err
	})
	if ErrorCode(err) == NotFound {
		return &memberMatches{}, nil
	}
	return m, s.memberScanError(err)
}

// membersTell works out against tx what the members of group gid tell mc, spending work.
func (s *Service) membersTell(tx storage.Tx, k *Kind, gid string, ops []patch.Operation, mc patch.MemberChange, base string, work *budget) (*memberMatches, error) {
	if !mc.Replay {
		ids, err := s.membersWhere(tx, gid, mc, base, work)
		return &memberMatches{ids: ids}, err
	}
	var stored []storage.Member
	var current []patch.Member
	kinds := map[string]string{}
	err := tx.Members(gid, func(m storage.Member) error {
		stored = append(stored, m)
		current = append(current, s.shownMember(m, mc, base))
		kinds[m.Value] = m.Type
		return work.spend()
	})
	if err != nil {
		return nil, err
	}
	left, err := patch.Replay(ops, current, func(id string) (string, string) {
		t, ok := kinds[id]
		if !ok {
			t = s.kindOf(tx, id)
			kinds[id] = t
		}
		if !mc.Refs {
			return t, ""
		}
		return t, s.memberRef(t, id, base)
	}, work.spend)
	if err == nil {
		err = checkMembers(left) // the displays the operations gave that it keeps
	}
	if err != nil {
		return nil, err
	}
	want := make([]storage.Member, len(left))
	for i, l := range left {
		want[i] = asStored(l)
	}
	// What makes the group the replayed list, worked out here from the list just read: the
	// writer, finding the group at the same version, then changes only the difference.
	d, err := diffMembers(func(fn func(storage.Member) error) error {
		for _, m := range stored {
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	}, want, true)
	return &memberMatches{replayed: d}, err
}

// asStored is a PATCH's member as the store holds one.
func asStored(m patch.Member) storage.Member {
	return storage.Member{Value: m.Value, Type: m.Type, Display: m.Display}
}

// shownMember is a stored member as a read of the group shows it, which is what the member
// filters of mc compare: with its $ref, made from base, when they may compare that.
func (s *Service) shownMember(m storage.Member, mc patch.MemberChange, base string) patch.Member {
	pm := patch.Member{Value: m.Value, Type: m.Type, Display: m.Display}
	if mc.Refs {
		pm.Ref = s.memberRef(m.Type, m.Value, base)
	}
	return pm
}

// memberRef is the $ref of member id of kind typ, "" for a kind the tenant does not have.
func (s *Service) memberRef(typ, id, base string) string {
	if k := s.kindNamed(typ); k != nil {
		return k.location(base, id)
	}
	return ""
}

// kindOf names the kind of record id, "" when the tenant has none.
func (s *Service) kindOf(tx storage.Tx, id string) string {
	for _, k := range s.kinds {
		if tx.Exists(k.Collection, id) {
			return k.Name
		}
	}
	return ""
}

// told returns what group gid at version tells mc: m, the snapshot's answer, when it was of that
// version, errGroupMoved when not, or, with m.onWriter set, the answer worked out now.
func (s *Service) told(tx storage.Tx, k *Kind, gid string, version uint64, ops []patch.Operation, mc patch.MemberChange, m *memberMatches) (*memberMatches, error) {
	if m.onWriter != nil {
		return s.membersTell(tx, k, gid, ops, mc, m.base, m.onWriter())
	}
	if m.version != version {
		return nil, errGroupMoved
	}
	return m, nil
}

// membersWhere returns the members of group gid that any filter of mc.RemoveWhere selects,
// spending work on every comparison.
func (s *Service) membersWhere(tx storage.Tx, gid string, mc patch.MemberChange, base string, work *budget) ([]string, error) {
	var ids []string
	err := tx.Members(gid, func(m storage.Member) error {
		selects := mc.Selecting(s.shownMember(m, mc, base))
		for _, f := range mc.RemoveWhere {
			if err := work.spend(); err != nil {
				return err
			}
			if selects(f) {
				ids = append(ids, m.Value)
				break
			}
		}
		return nil
	})
	return ids, err
}

// memberScanError counts a member scan stopped by its budget or by the client's leaving, and
// words the first for a PATCH.
func (s *Service) memberScanError(err error) error {
	s.scanStopped(err)
	if err == errTooMany {
		return errMembersTooMany
	}
	return err
}

// writerMatchError is memberScanError for a match on the writer: one past its share of the
// budget is counted and answered as busy, since the same match fitted in a snapshot.
func (s *Service) writerMatchError(err error) error {
	if err == errTooMany {
		err = errScansBusy
	}
	s.scanStopped(err)
	if err == errScansBusy {
		return errGroupBusy
	}
	return err
}
