package scimserver

import (
	"context"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// What the platform reports about users — interactions and campaign assignments, the facts that
// make a user audited — and what it reads of the audit record.

// Interaction kinds the platform reports.
var interactionKinds = []string{"password_set", "login"}

// RecordInteraction records that a user set a password or logged in at at (the zero time:
// now). An anonymized user can no longer interact.
func (s *Service) RecordInteraction(ctx context.Context, tenant string, actor Actor, id, kind string, at time.Time) error {
	if kind != interactionKinds[0] && kind != interactionKinds[1] {
		return invalid("invalidValue", `"type" must be "password_set" or "login"`)
	}
	if !at.IsZero() {
		if err := s.checkInteractionTime(ctx, tenant, at); err != nil {
			return err
		}
	}
	return s.write(ctx, tenant, func(tx storage.Tx) error {
		rec, err := s.users.get(tx, id)
		if err != nil {
			return err
		}
		if err := notAnonymized(tx, id); err != nil {
			return err
		}
		when := at.UTC()
		if at.IsZero() {
			when = tx.Now()
		}
		f, err := tx.Facts(id)
		if err != nil {
			return err
		}
		f.Interactions++
		if f.FirstInteractionAt == nil || when.Before(*f.FirstInteractionAt) {
			f.FirstInteractionAt = &when
		}
		if f.LastInteractionAt == nil || when.After(*f.LastInteractionAt) {
			f.LastInteractionAt = &when
		}
		if err := tx.PutFacts(id, f); err != nil {
			return err
		}
		return record(tx, actor, opInteraction, s.users, id, rec.Version, []string{kind})
	})
}

// maxClockSkew is how far in the future a reported interaction may lie: the platform's clock
// and the server's differ a little.
const maxClockSkew = 5 * time.Minute

// checkInteractionTime refuses interaction times that cannot be true: the platform reports
// interactions as they happen, and a wrong time would stay in the audit record for ever.
func (s *Service) checkInteractionTime(ctx context.Context, tenant string, at time.Time) error {
	if at.After(s.opts.Now().Add(maxClockSkew)) {
		return invalid("invalidValue", `"at" is more than 5 minutes in the future; report interactions when they happen`)
	}
	t, err := s.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if at.Before(t.Created) {
		return invalid("invalidValue", `"at" is before the tenant was created`)
	}
	return nil
}

// AssignCampaign makes a user a participant of a campaign; the user becomes audited. Inactive
// and anonymized users cannot be assigned.
func (s *Service) AssignCampaign(ctx context.Context, tenant string, actor Actor, campaign, id string) error {
	if err := checkCampaign(campaign); err != nil {
		return err
	}
	return s.write(ctx, tenant, func(tx storage.Tx) error {
		rec, err := s.users.get(tx, id)
		if err != nil {
			return err
		}
		if err := notAnonymized(tx, id); err != nil {
			return err
		}
		doc, err := storage.DecodeDoc(rec.Doc)
		if err != nil {
			return err
		}
		if doc["active"] == false {
			return Errorf(Conflict, "", "an inactive user cannot be assigned to a campaign")
		}
		added, first, err := tx.AddParticipant(campaign, id)
		if err != nil || !added {
			return err
		}
		if first {
			f, err := tx.Facts(id)
			if err != nil {
				return err
			}
			f.Campaigns++
			if err := tx.PutFacts(id, f); err != nil {
				return err
			}
		}
		return appendEvent(tx, actor, s.users, storage.Event{Operation: opCampaignAssign, ResourceID: id, Version: rec.Version, Related: campaign})
	})
}

// UnassignCampaign ends a user's participation in a campaign; the user stays audited.
func (s *Service) UnassignCampaign(ctx context.Context, tenant string, actor Actor, campaign, id string) error {
	if err := checkCampaign(campaign); err != nil {
		return err
	}
	return s.write(ctx, tenant, func(tx storage.Tx) error {
		rec, err := s.users.get(tx, id)
		if err != nil {
			return err
		}
		removed, err := tx.RemoveParticipant(campaign, id)
		if err != nil || !removed {
			return err
		}
		return appendEvent(tx, actor, s.users, storage.Event{Operation: opCampaignUnassign, ResourceID: id, Version: rec.Version, Related: campaign})
	})
}

func checkCampaign(id string) error {
	if id == "" || len(id) > storage.MaxKeyLen/2 {
		return invalid("invalidValue", "a campaign id is 1 to 1024 bytes")
	}
	return nil
}

// UserAudit is a user's place in the audit record: the facts and the trail of events about it.
type UserAudit struct {
	UserID             string     `json:"userId"`
	Exists             bool       `json:"exists"`
	Audited            bool       `json:"audited"`
	AuditReasons       []string   `json:"auditReasons"`
	Interactions       int        `json:"interactions"`
	FirstInteractionAt *time.Time `json:"firstInteractionAt"`
	LastInteractionAt  *time.Time `json:"lastInteractionAt"`
	CampaignCount      int        `json:"campaignCount"`
	CurrentCampaigns   []string   `json:"currentCampaigns"`
	AnonymizedAt       *time.Time `json:"anonymizedAt"`
	ScrubbedAt         *time.Time `json:"scrubbedAt"`
	Trail              []Event    `json:"trail"`
	// Next is the cursor of the trail's next page; 0 when there is none.
	Next uint64 `json:"-"`
}

// UserAudit reads a user's audit facts and a page of its trail. A deleted user's history stays
// readable; an id never seen is NotFound.
func (s *Service) UserAudit(ctx context.Context, tenant, id string, q TrailQuery) (UserAudit, error) {
	q.ResourceID = id
	var out UserAudit
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		exists := tx.Exists(s.users.Collection, id)
		if !exists {
			if evs, _, err := tx.Trail(storage.TrailQuery{ResourceID: id, Limit: 1}); err != nil || len(evs) == 0 {
				return notFound(s.users.Name)
			}
		}
		f, err := tx.Facts(id)
		if err != nil {
			return err
		}
		current, err := storage.Campaigns(tx, id)
		if err != nil {
			return err
		}
		evs, next, err := tx.Trail(q)
		if err != nil {
			return err
		}
		out = UserAudit{UserID: id, Exists: exists, Audited: audited(f), AuditReasons: nonNil(auditReasons(f)),
			Interactions: f.Interactions, FirstInteractionAt: f.FirstInteractionAt, LastInteractionAt: f.LastInteractionAt,
			CampaignCount: f.Campaigns, CurrentCampaigns: nonNil(current), AnonymizedAt: f.AnonymizedAt, ScrubbedAt: f.ScrubbedAt,
			Trail: nonNil(evs), Next: next}
		return nil
	})
	return out, err
}

// Trail reads a page of the tenant's audit trail, newest first, and the next page's cursor (0
// when there is none).
func (s *Service) Trail(ctx context.Context, tenant string, q TrailQuery) ([]Event, uint64, error) {
	var evs []Event
	var next uint64
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		var err error
		evs, next, err = tx.Trail(q)
		return err
	})
	return nonNil(evs), next, err
}

// Events calls fn for every event of the tenant's trail after the cursor after, oldest first,
// until fn returns false or an error.
func (s *Service) Events(ctx context.Context, tenant string, after uint64, fn func(Event) (bool, error)) error {
	return s.read(ctx, tenant, func(tx storage.Tx) error { return tx.Events(after, fn) })
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// TrailLength is the number of events in the tenant's audit trail.
func (s *Service) TrailLength(ctx context.Context, tenant string) (int, error) {
	var n int
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		var err error
		n, err = tx.TrailLength()
		return err
	})
	return n, err
}
