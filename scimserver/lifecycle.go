package scimserver

import (
	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// The product's rule: a user who is part of the audit record is never destroyed. A user is
// audited once the platform reported an interaction or a campaign assignment, and for ever;
// an anonymized user is too (the history is what anonymization keeps).

// audited is the rule, in one place.
func audited(f storage.Facts) bool {
	return f.Interactions > 0 || f.Campaigns > 0 || f.AnonymizedAt != nil
}

// auditReasons lists why a user is audited: "interacted", "campaign", "anonymized".
func auditReasons(f storage.Facts) []string {
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

// deleteRecord is the one place a record is deleted, and where the rule applies: an audited
// user is deactivated instead (active=false, nothing else changes), in the same transaction as
// the check, so a concurrent login or campaign assignment cannot slip between.
func (s *Service) deleteRecord(tx storage.Tx, actor Actor, k *Kind, rec storage.Record, doc map[string]any) error {
	if k.audited {
		f, err := tx.Facts(rec.ID)
		if err != nil {
			return err
		}
		if audited(f) {
			version, changed, err := deactivate(tx, k, rec, doc)
			if err != nil {
				return err
			}
			var names []string
			if changed {
				names = []string{"active"}
			}
			return record(tx, actor, opDeactivateInsteadOfDelete, k, rec.ID, version, names)
		}
	}
	if k.hasMembers {
		var members []storage.Member
		if err := tx.Members(rec.ID, func(m storage.Member) error { members = append(members, m); return nil }); err != nil {
			return err
		}
		e := editGroup(tx, actor, rec.ID)
		for _, m := range members {
			if err := s.dropMember(e, m); err != nil {
				return err
			}
		}
	}
	if err := s.leaveAllGroups(tx, actor, rec.ID); err != nil {
		return err
	}
	if err := tx.Delete(k.Collection, rec.ID); err != nil {
		return err
	}
	return record(tx, actor, opDelete, k, rec.ID, 0, nil)
}

// deactivate sets active=false on a stored record; it returns the record's version after and
// whether that changed anything.
func deactivate(tx storage.Tx, k *Kind, rec storage.Record, doc map[string]any) (uint64, bool, error) {
	doc = cloneDoc(doc)
	if !setInactive(doc) {
		return rec.Version, false, nil
	}
	var err error
	if rec.Doc, err = encodeDoc(doc); err != nil {
		return 0, false, err
	}
	rec.Keys = k.Collection.KeysOf(doc)
	rec, err = tx.Update(k.Collection, rec)
	return rec.Version, err == nil, err
}

// setInactive makes a document inactive: the one meaning of deactivation. It reports whether
// the document was active.
func setInactive(doc map[string]any) bool {
	was := doc["active"] != false
	doc["active"] = false
	return was
}

// updateOp names a user update in the trail: a change that turns an inactive user active again
// is a reactivation (what Okta and Entra ID send when a person is reassigned), one that turns an
// active user inactive a deactivation (what they send when a person leaves).
func updateOp(op string, old, new map[string]any) string {
	switch wasActive, active := old["active"] != false, new["active"] != false; {
	case !wasActive && active:
		return opReactivate
	case wasActive && !active:
		return opDeactivate
	}
	return op
}

// lifecycleOf renders the lifecycle extension from the user's audit facts.
func lifecycleOf(f storage.Facts) map[string]any {
	m := map[string]any{"audited": audited(f), "anonymized": f.AnonymizedAt != nil}
	if r := auditReasons(f); len(r) > 0 {
		reasons := make([]any, len(r)) // as decoded JSON holds it: what filters compare against
		for i, v := range r {
			reasons[i] = v
		}
		m["auditReasons"] = reasons
	}
	if f.LastInteractionAt != nil {
		m["lastInteractionAt"] = f.LastInteractionAt.Format(timeFormat)
	}
	if f.Campaigns > 0 {
		m["campaignCount"] = f.Campaigns
	}
	if f.AnonymizedAt != nil {
		m["anonymizedAt"] = f.AnonymizedAt.Format(timeFormat)
	}
	if f.ScrubbedAt != nil {
		m["scrubbedAt"] = f.ScrubbedAt.Format(timeFormat)
	}
	return m
}

// stripLifecycle removes the lifecycle extension from a client's document: its attributes are
// the server's to state, never stored in the document.
func stripLifecycle(doc map[string]any) {
	delete(doc, schemas.LifecycleURN)
}

// notAnonymized refuses changes that would re-attach anything to an anonymized user.
func notAnonymized(tx storage.Tx, id string) error {
	f, err := tx.Facts(id)
	if err != nil {
		return err
	}
	if f.AnonymizedAt != nil {
		return Errorf(Conflict, "mutability", "the user was anonymized and can no longer change")
	}
	return nil
}
