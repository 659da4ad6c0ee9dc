package scimserver

import (
	"reflect"
	"slices"
	"strings"

	"github.com/scimserver/scimserver/storage"
)

// Audit trail operations. Every change appends one event, in the transaction that makes it,
// naming the attributes that changed — never their values.
const (
	opCreate                    = "create"
	opReplace                   = "replace"
	opPatch                     = "patch"
	opDelete                    = "delete"
	opDeactivateInsteadOfDelete = "deactivate-instead-of-delete"
	opDeactivate                = "deactivate"
	opReactivate                = "reactivate"
	opAnonymize                 = "anonymize"
	opScrub                     = "scrub" // the storage that could hold a user's erased values was cleared
	opInteraction               = "interaction"
	opCampaignAssign            = "campaign-assign"
	opCampaignUnassign          = "campaign-unassign"
	opMemberAdd                 = "member-add"
	opMemberRemove              = "member-remove"
	opTenantCreate              = "tenant-create"
	opTenantDisable             = "tenant-disable"
	opTenantEnable              = "tenant-enable"
	opTokenCreate               = "token-create"
	opTokenRevoke               = "token-revoke"
	opRestored                  = "restored" // the data was restored from a backup (feed.go: MarkRestored)
)

// Event is one entry of a tenant's audit trail.
type Event = storage.Event

// TrailQuery selects audit events (see storage.TrailQuery).
type TrailQuery = storage.TrailQuery

// record appends an event about the record id of kind k. version is the one the transaction
// left the record at (0 when it deleted it): what the change feed reports as the resource's new
// meta.version.
func record(tx storage.Tx, actor Actor, op string, k *Kind, id string, version uint64, attributes []string) error {
	return appendEvent(tx, actor, k, storage.Event{Operation: op, ResourceID: id, Version: version, Attributes: attributes})
}

// appendEvent appends ev about a record of kind k, by actor.
func appendEvent(tx storage.Tx, actor Actor, k *Kind, ev storage.Event) error {
	ev.ActorID, ev.ActorName, ev.ResourceType = actor.ID, actor.Name, k.Name
	return tx.Append(ev)
}

// attrNames lists the top-level attributes (extension attributes URN-qualified) whose values
// differ between two documents: what the audit trail records instead of the values.
func attrNames(old, new map[string]any, password bool) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, pair := range [][2]map[string]any{{old, new}, {new, old}} {
		for k, v := range pair[0] {
			ov, ok := pair[1][k]
			if ok && reflect.DeepEqual(v, ov) {
				continue
			}
			if strings.HasPrefix(k, "urn:") {
				a, _ := v.(map[string]any)
				b, _ := ov.(map[string]any)
				for _, sub := range attrNames(a, b, false) {
					add(k + ":" + sub)
				}
				continue
			}
			add(k)
		}
	}
	if password {
		add("password")
	}
	slices.Sort(names)
	return names
}
