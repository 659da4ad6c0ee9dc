package storage

import (
	"encoding/json"
	"time"
)

// Facts are what the platform reported about a user: the basis of the audit rule. A user with
// any fact is audited, and facts are never removed, so audited is forever.
type Facts struct {
	FirstInteractionAt *time.Time `json:"fi,omitempty"`
	LastInteractionAt  *time.Time `json:"li,omitempty"`
	Interactions       int        `json:"n,omitempty"`
	// Campaigns counts the distinct campaigns the user was ever assigned to.
	Campaigns    int        `json:"c,omitempty"`
	AnonymizedAt *time.Time `json:"a,omitempty"`
	// ScrubbedAt is when the free pages of the data file were overwritten after the user was
	// anonymized: from then on no erased value is in the file. Nil while that is pending.
	ScrubbedAt *time.Time `json:"s,omitempty"`
}

// Audited reports whether the user is part of the audit record. An anonymized user is: its
// history is exactly what anonymization keeps.
func (f Facts) Audited() bool { return f.Interactions > 0 || f.Campaigns > 0 || f.AnonymizedAt != nil }

// Reasons lists why the user is audited: "interacted", "campaign", "anonymized".
func (f Facts) Reasons() []string {
	var r []string
	if f.Interactions > 0 {
		r = append(r, "interacted")
	}
	if f.Campaigns > 0 {
		r = append(r, "campaign")
	}
	if f.AnonymizedAt != nil {
		r = append(r, "anonymized")
	}
	return r
}

// Facts returns what is known about user uid (the zero value for a user with no facts).
func (t *Tx) Facts(uid string) (Facts, error) {
	var f Facts
	raw := t.b.Bucket(bktFacts).Get([]byte(uid))
	if raw == nil {
		return f, nil
	}
	return f, json.Unmarshal(raw, &f)
}

func (t *Tx) putFacts(uid string, f Facts) error {
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return t.b.Bucket(bktFacts).Put([]byte(uid), raw)
}

// RecordInteraction records that user uid set a password or logged in at at. The user must
// exist in this transaction, so a fact can never be recorded against a deleted user.
func (t *Tx) RecordInteraction(uid string, at time.Time) error {
	if !t.UserExists(uid) {
		return errUserNotFound
	}
	f, err := t.Facts(uid)
	if err != nil {
		return err
	}
	at = at.UTC()
	f.Interactions++
	if f.FirstInteractionAt == nil || at.Before(*f.FirstInteractionAt) {
		f.FirstInteractionAt = &at
	}
	if f.LastInteractionAt == nil || at.After(*f.LastInteractionAt) {
		f.LastInteractionAt = &at
	}
	return t.putFacts(uid, f)
}

// AssignCampaign makes user uid a participant of campaign cid; it reports whether that is new.
func (t *Tx) AssignCampaign(cid, uid string) (bool, error) {
	if !t.UserExists(uid) {
		return false, errUserNotFound
	}
	if err := checkKey("a campaign id", cid); err != nil {
		return false, err
	}
	if t.b.Bucket(bktParticipants).Get(pair(cid, uid)) != nil {
		return false, nil
	}
	if err := t.b.Bucket(bktParticipants).Put(pair(cid, uid), []byte(t.now.Format(time.RFC3339Nano))); err != nil {
		return false, err
	}
	ever := t.b.Bucket(bktCampaignsOf)
	if ever.Get(pair(uid, cid)) == nil {
		if err := ever.Put(pair(uid, cid), nil); err != nil {
			return false, err
		}
		f, err := t.Facts(uid)
		if err != nil {
			return false, err
		}
		f.Campaigns++
		if err := t.putFacts(uid, f); err != nil {
			return false, err
		}
	}
	return true, nil
}

// UnassignCampaign ends user uid's participation in campaign cid; the user stays audited. It
// reports whether the user was a participant.
func (t *Tx) UnassignCampaign(cid, uid string) (bool, error) {
	if !t.UserExists(uid) {
		return false, errUserNotFound
	}
	k := pair(cid, uid)
	if t.b.Bucket(bktParticipants).Get(k) == nil {
		return false, nil
	}
	return true, t.b.Bucket(bktParticipants).Delete(k)
}

// IsParticipant reports whether user uid is currently assigned to campaign cid.
func (t *Tx) IsParticipant(cid, uid string) bool {
	return t.b.Bucket(bktParticipants).Get(pair(cid, uid)) != nil
}

// CurrentCampaigns lists the campaigns user uid is currently assigned to.
func (t *Tx) CurrentCampaigns(uid string) ([]string, error) {
	var out []string
	err := scanPrefix(t.b.Bucket(bktCampaignsOf), prefixOf(uid), func(rest []byte) error {
		if t.IsParticipant(string(rest), uid) {
			out = append(out, string(rest))
		}
		return nil
	})
	return out, err
}

// MarkAnonymized records when user uid was anonymized; the mark is permanent.
func (t *Tx) MarkAnonymized(uid string) error {
	f, err := t.Facts(uid)
	if err != nil {
		return err
	}
	if f.AnonymizedAt == nil {
		now := t.now
		f.AnonymizedAt = &now
	}
	return t.putFacts(uid, f)
}
