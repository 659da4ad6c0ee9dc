package scimserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// The change feed: a tenant's audit trail read oldest first from a cursor, in the platform's
// words. The trail is appended in the transaction of every change, numbered in commit order, so
// the feed is ordered, complete and resumable: a follower that remembers the cursor of the last
// change it handled and reads on from there misses nothing and sees nothing twice. Operators'
// changes to tenants and tokens are in the trail but not in the feed; their cursors are stepped
// over.

// Change is one entry of the feed. It names what changed, never a value: a consumer reads the
// resource by id for its current state.
type Change struct {
	// Cursor is the change's position (the trail event's sequence number), to resume after.
	Cursor       string    `json:"cursor"`
	Time         time.Time `json:"time"`
	ResourceType string    `json:"resourceType,omitempty"` // empty only for "restored"
	ResourceID   string    `json:"resourceId,omitempty"`
	Operation    string    `json:"operation"`
	// Version is the resource's meta.version after the change; empty when it was deleted.
	Version string `json:"version,omitempty"`
	// Attributes names the attributes that changed (an anonymization's: those it erased).
	Attributes []string `json:"attributes,omitempty"`
	// Member is the member that joined or left the group (member-added, member-removed).
	Member *ChangeMember `json:"member,omitempty"`
	// Campaign is the campaign of campaign-assigned and campaign-unassigned.
	Campaign string `json:"campaign,omitempty"`
	// Interaction is what an interaction was: "login" or "password_set".
	Interaction string `json:"interaction,omitempty"`
	// Actor is the name of the token (or operator command) that made the change.
	Actor string `json:"actor,omitempty"`
	// TakenBack is, for "restored", the cursors a restore from a backup took back: a consumer
	// that handled any of those changes must resync.
	TakenBack *CursorRange `json:"takenBack,omitempty"`

	seq uint64
}

// CursorRange is the cursors after After, through Through.
type CursorRange struct {
	After   string `json:"after"`
	Through string `json:"through"`
}

// ChangeMember is the member of a membership change.
type ChangeMember struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Seq is the change's cursor as a number.
func (c Change) Seq() uint64 { return c.seq }

// changeOps names each trail operation that is a change of the feed in the platform's words.
var changeOps = map[string]string{
	opCreate:                    "created",
	opReplace:                   "updated",
	opPatch:                     "updated",
	opDeactivate:                "deactivated",
	opReactivate:                "reactivated",
	opDelete:                    "deleted",
	opDeactivateInsteadOfDelete: "deactivated-instead-of-delete",
	opAnonymize:                 "anonymized",
	opMemberAdd:                 "member-added",
	opMemberRemove:              "member-removed",
	opInteraction:               "interaction",
	opCampaignAssign:            "campaign-assigned",
	opCampaignUnassign:          "campaign-unassigned",
	opRestored:                  "restored",
}

// changeOf reads a trail event as a change of the feed; false for events the feed leaves out.
func changeOf(ev Event) (Change, bool) {
	op, ok := changeOps[ev.Operation]
	if !ok || ev.Outcome != "success" {
		return Change{}, false
	}
	c := Change{Cursor: FormatCursor(ev.Seq), Time: ev.Time, ResourceType: ev.ResourceType, ResourceID: ev.ResourceID,
		Operation: op, Attributes: ev.Attributes, Actor: ev.ActorName, seq: ev.Seq}
	if ev.Version > 0 {
		c.Version = etag(ev.Version)
	}
	switch ev.Operation {
	case opMemberAdd, opMemberRemove:
		c.Member = &ChangeMember{Type: ev.RelatedType, ID: ev.Related}
	case opCampaignAssign, opCampaignUnassign:
		c.Campaign = ev.Related
	case opInteraction:
		c.Interaction, c.Attributes = firstOf(ev.Attributes), nil
	case opRestored:
		c.TakenBack = &CursorRange{After: ev.Related, Through: FormatCursor(ev.Seq - 1)}
	}
	return c, true
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// FormatCursor and ParseCursor write and read a cursor: the decimal sequence number.
func FormatCursor(seq uint64) string { return strconv.FormatUint(seq, 10) }

// ParseCursor reads a cursor; Invalid when it is not one.
func ParseCursor(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, invalid("invalidValue", "a cursor is a value the feed returned (a decimal number)")
	}
	return n, nil
}

// ChangePage is one read of the feed: the changes after the cursor asked for, and the cursor to
// read on from (past the last change, and past events the feed leaves out).
type ChangePage struct {
	Changes []Change
	Next    uint64
}

// MaxChanges bounds one page of the feed.
const MaxChanges = 1000

// maxSteppedOver bounds the events a read examines beyond the page: operators' events are
// stepped over, and a long run of them ends a read early rather than making it slow.
const maxSteppedOver = 10 * MaxChanges

// CursorGoneError is the answer to a cursor the feed cannot resume from: older than the
// retention (changes after it are no longer served) or ahead of the trail (not a cursor of this
// data). The consumer must resync, then follow from Oldest (or from now).
type CursorGoneError struct {
	Oldest  uint64
	Message string
}

func (e *CursorGoneError) Error() string { return e.Message }

// Head is the tenant's newest cursor: following the feed from it returns the changes committed
// after this call.
func (s *Service) Head(ctx context.Context, tenant string) (uint64, error) {
	var head uint64
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		var err error
		head, err = headOf(tx)
		return err
	})
	return head, err
}

func headOf(tx storage.Tx) (uint64, error) {
	evs, _, err := tx.Trail(storage.TrailQuery{Limit: 1})
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	return evs[0].Seq, nil
}

// Changes reads up to limit changes (at most MaxChanges) after the cursor after, oldest first.
// A cursor the feed cannot resume from is a *CursorGoneError.
func (s *Service) Changes(ctx context.Context, tenant string, after uint64, limit int) (ChangePage, error) {
	limit = min(max(limit, 1), MaxChanges)
	page := ChangePage{Next: after}
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		page = ChangePage{Next: after}
		cutoff := time.Time{}
		if s.opts.FeedRetention > 0 {
			cutoff = tx.Now().Add(-s.opts.FeedRetention)
		}
		examined, first := 0, true
		err := tx.Events(after, func(ev Event) (bool, error) {
			if first && ev.Time.Before(cutoff) {
				return false, errBehind
			}
			if first && takenBack(ev, after) {
				return false, errTakenBack
			}
			first = false
			examined++
			page.Next = ev.Seq
			if c, ok := changeOf(ev); ok {
				page.Changes = append(page.Changes, c)
			}
			return len(page.Changes) < limit && examined < limit+maxSteppedOver, nil
		})
		if errors.Is(err, errBehind) || errors.Is(err, errTakenBack) {
			oldest, oerr := oldestCursor(tx, cutoff)
			if oerr != nil {
				return oerr
			}
			msg := fmt.Sprintf("the cursor is older than the feed's retention (%s): resync, then follow from oldestCursor", s.opts.FeedRetention)
			if errors.Is(err, errTakenBack) {
				msg = "the data was restored from a backup taken before this cursor, so changes up to it were taken back: resync, then follow from oldestCursor"
			}
			return &CursorGoneError{Oldest: oldest, Message: msg}
		}
		if err != nil || !first {
			return err
		}
		// Nothing after the cursor: it must not be ahead of the trail.
		head, err := headOf(tx)
		if err != nil {
			return err
		}
		if after > head {
			oldest, err := oldestCursor(tx, cutoff)
			if err != nil {
				return err
			}
			return &CursorGoneError{Oldest: oldest, Message: "the cursor is ahead of the feed (the data was restored from a backup, or the cursor is another tenant's): resync, then follow from oldestCursor"}
		}
		return nil
	})
	return page, err
}

var (
	errBehind    = &Error{Code: Internal, Message: "behind the retention"}
	errTakenBack = &Error{Code: Internal, Message: "taken back by a restore"}
)

// takenBack reports whether ev, the first event after the cursor after, is the mark of a
// restore that took the trail back to before after: the consumer has seen changes that are no
// longer there, and the trail's events after the mark are not the ones it would expect.
func takenBack(ev Event, after uint64) bool {
	if ev.Operation != opRestored {
		return false
	}
	from, err := ParseCursor(ev.Related)
	return err == nil && after > from
}

// TrailEnds returns each tenant's newest cursor: what MarkRestored needs to know of a data file
// before a restore replaces it.
func (s *Service) TrailEnds(ctx context.Context) (map[string]uint64, error) {
	ts, err := s.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	ends := make(map[string]uint64, len(ts))
	for _, t := range ts {
		if ends[t.ID], err = s.Head(ctx, t.ID); err != nil {
			return nil, err
		}
	}
	return ends, nil
}

var restoreActor = Actor{ID: "server", Name: "scimserver restore"}

// Restored is what MarkRestored did for one tenant: its trail ended at From in the backup and at
// To in the data the backup replaced; the trail goes on after To. Missing: the tenant is not in
// the backup at all, and nothing could be marked.
type Restored struct {
	Tenant   string
	From, To uint64
	Missing  bool
}

// MarkRestored runs on data just restored from a backup, before a server uses it, with the
// TrailEnds of the data it replaces. Where a tenant's trail had gone further than the backup's,
// the trail goes on after where it had gone, and a mark there (an event "restored", Related
// the backup's newest cursor) makes the feed answer a cursor between the two with 410: that
// consumer saw changes the restore took back, and new changes take cursors above its own. A
// consumer at or before the backup's newest cursor reads the mark as a change "restored": a
// webhook, whose position the backup holds, may have sent its receiver what was taken back.
func (s *Service) MarkRestored(ctx context.Context, ends map[string]uint64) ([]Restored, error) {
	im, ok := s.store.(storage.Importer)
	if !ok {
		return nil, &Error{Code: Invalid, Message: "this storage engine cannot mark a restore"}
	}
	var out []Restored
	for tenant, end := range ends {
		var marked *Restored // set by the write function, which may run more than once
		err := im.Import(ctx, tenant, func(tx storage.ImportTx) error {
			marked = nil
			last, err := tx.LastSeq()
			if err != nil || end <= last {
				return err
			}
			marked = &Restored{Tenant: tenant, From: last, To: end}
			return tx.PutEvent(Event{Seq: end + 1, Time: tx.Now(), Tenant: tenant, ActorName: restoreActor.Name,
				Operation: opRestored, Related: FormatCursor(last), Outcome: "success"})
		})
		switch {
		case storage.ErrorCode(err) == storage.NotFound: // created after the backup was taken
			out = append(out, Restored{Tenant: tenant, To: end, Missing: true})
		case err != nil:
			return out, err
		case marked != nil:
			out = append(out, *marked)
		}
	}
	slices.SortFunc(out, func(a, b Restored) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out, nil
}

// oldestCursor is the oldest cursor the feed resumes from: the smallest one whose next event is
// not older than cutoff (the zero cutoff: 0, the beginning). The trail's times follow its order,
// so a binary search over cursors finds it with a few seeks.
func oldestCursor(tx storage.Tx, cutoff time.Time) (uint64, error) {
	if cutoff.IsZero() {
		return 0, nil
	}
	head, err := headOf(tx)
	if err != nil {
		return 0, err
	}
	// recent reports whether the first event after c is within the retention (or there is none).
	recent := func(c uint64) (bool, error) {
		ok := true
		err := tx.Events(c, func(ev Event) (bool, error) {
			ok = !ev.Time.Before(cutoff)
			return false, nil
		})
		return ok, err
	}
	lo, hi := uint64(0), head
	for lo < hi {
		mid := lo + (hi-lo)/2
		ok, err := recent(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// WaitChanges is Changes that, when there is nothing to return, waits up to wait for a commit
// that brings something. A cancelled context ends the wait early, without an error.
func (s *Service) WaitChanges(ctx context.Context, tenant string, after uint64, limit int, wait time.Duration) (ChangePage, error) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		// Watch before reading: a commit between the read and the wait still wakes it.
		woken := s.store.Watch(tenant)
		page, err := s.Changes(ctx, tenant, after, limit)
		if err != nil || len(page.Changes) > 0 || timeout == nil {
			return page, err
		}
		after = page.Next
		select {
		case <-woken:
		case <-timeout:
			return page, nil
		case <-ctx.Done():
			return page, nil
		}
	}
}
