package scimserver

import (
	"encoding/json"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// Audit trail operations for the user lifecycle.
const (
	opDeactivateInsteadOfDelete = "deactivate-instead-of-delete"
	opReactivate                = "reactivate"
)

// deleteUser is the one place a user is deleted, and where the product rule lives: a user who is
// part of the audit record is deactivated instead (active=false, nothing else changes), in the
// same transaction as the check, so a concurrent login or campaign assignment cannot slip between.
func deleteUser(tx *storage.Tx, actor storage.Actor, id string) error {
	facts, err := tx.Facts(id)
	if err != nil {
		return err
	}
	if !facts.Audited() {
		if err := tx.DeleteUser(id); err != nil {
			return err
		}
		return tx.Record(actor, "delete", "User", id, nil)
	}
	u, err := tx.User(id)
	if err != nil {
		return err
	}
	doc, err := decodeDoc(u.Doc)
	if err != nil {
		return err
	}
	if doc["active"] == false {
		return tx.Record(actor, opDeactivateInsteadOfDelete, "User", id, nil) // already inactive: no change
	}
	doc["active"] = false
	if u.Doc, err = json.Marshal(doc); err != nil {
		return err
	}
	if _, err := tx.UpdateUser(u); err != nil {
		return err
	}
	return tx.Record(actor, opDeactivateInsteadOfDelete, "User", id, []string{"active"})
}

// updateOp names a user update in the trail: a change that turns an inactive user active again
// is a reactivation (what Okta and Entra ID send when a person is reassigned).
func updateOp(op string, old, new map[string]any) string {
	if old["active"] == false && new["active"] != false {
		return opReactivate
	}
	return op
}

// lifecycleOf renders the lifecycle extension from the user's audit facts.
func lifecycleOf(f storage.Facts) map[string]any {
	m := map[string]any{"audited": f.Audited(), "anonymized": f.AnonymizedAt != nil}
	if r := f.Reasons(); len(r) > 0 {
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
