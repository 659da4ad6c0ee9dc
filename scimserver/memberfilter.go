package scimserver

import (
	"context"
	"errors"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/storage"
)

// A PATCH that removes members by a filter on something other than their id
// (members[display sw "Ex"], members[type eq "Group"]) must compare every member of the group
// with its filters: a scan of the group, as long as the group is large. Done on the single
// writer, it would hold up every other write for as long, so it is done in a snapshot first,
// under the budget of a scan that no index serves, and the writer only checks that the group
// has not changed since.

// memberMatches are the members a PATCH's filters remove: found in a snapshot of the group at
// version (ids), or, with work set, still to be found on the writer within that budget.
type memberMatches struct {
	version uint64
	ids     []string
	work    *budget
}

// errGroupMoved: the group changed between the snapshot its members were matched in and the
// writer; the snapshot's matches no longer tell.
var errGroupMoved = errors.New("the group changed after its members were matched")

// errMembersTooMany answers a member scan past its budget.
var errMembersTooMany = invalid("tooMany", "comparing the group's members with the operations' filters needs more work than the server allows for one request; "+
	"remove members by value (members[value eq \"id\"]) or with fewer filters")

// errGroupBusy answers a match left to the writer that did not fit its share of the budget.
var errGroupBusy = &Error{Code: Busy, Message: "the group kept changing while its members were compared with the operations' filters; retry later, or remove members by value"}

// writerShare is the part of the scan budget a match may take on the writer, where every other
// write waits for it.
const writerShare = 50

// withMatches runs patch with the members of group gid that where selects. With no such filter
// it passes nil. Otherwise it matches them in a snapshot and runs patch, again from a new
// snapshot when the group changed in between (errGroupMoved), and after optimisticTries leaves
// the matching to the writer, within 1/writerShare of the budget (past it: 429).
func (s *Service) withMatches(ctx context.Context, tenant string, k *Kind, gid string, where []filter.Expression, patch func(*memberMatches) (Resource, error)) (Resource, error) {
	if len(where) == 0 {
		return patch(nil)
	}
	release, err := s.admitScan(ctx)
	if err != nil {
		return Resource{}, err
	}
	defer release()
	for range optimisticTries {
		m, err := s.matchMembers(ctx, tenant, k, gid, where)
		if err != nil {
			return Resource{}, err
		}
		if res, err := patch(m); !errors.Is(err, errGroupMoved) {
			return res, err
		}
	}
	res, err := patch(&memberMatches{work: newBudget(ctx, s.opts.ScanTimeout/writerShare)})
	return res, s.writerMatchError(err)
}

// matchMembers finds, in a read transaction, the members of group gid that where selects. A
// group that is not there has nothing to match: the write then says it is not found.
func (s *Service) matchMembers(ctx context.Context, tenant string, k *Kind, gid string, where []filter.Expression) (*memberMatches, error) {
	work := newBudget(ctx, s.opts.ScanTimeout)
	m := &memberMatches{}
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		g, err := k.get(tx, gid)
		if err != nil {
			return err
		}
		m.version = g.Version
		m.ids, err = membersWhere(tx, k, gid, where, work)
		return err
	})
	if ErrorCode(err) == NotFound {
		return m, nil
	}
	return m, s.memberScanError(err)
}

// on returns the members to remove for a group at version: the snapshot's when it was of that
// version, errGroupMoved when not, or those found now within the budget.
func (m *memberMatches) on(tx storage.Tx, k *Kind, gid string, version uint64, where []filter.Expression) ([]string, error) {
	if m.work != nil {
		return membersWhere(tx, k, gid, where, m.work)
	}
	if m.version != version {
		return nil, errGroupMoved
	}
	return m.ids, nil
}

// membersWhere returns the members of group gid that any of where selects, spending work on
// every comparison.
func membersWhere(tx storage.Tx, k *Kind, gid string, where []filter.Expression, work *budget) ([]string, error) {
	ref, _ := k.resolve("", "members", "")
	ev := evaluator{k: k}
	var ids []string
	err := tx.Members(gid, func(m storage.Member) error {
		el := map[string]any{"value": m.Value, "type": m.Type, "display": m.Display}
		for _, f := range where {
			if err := work.spend(); err != nil {
				return err
			}
			if ev.matchIn(f, &ref, el) {
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
