package storage

import (
	"encoding/binary"
	"encoding/json"
	"time"
)

// Event is one entry of a tenant's append-only audit trail. It names what changed, never the
// values: the trail must hold no personal data that an erasure would have to find.
type Event struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Tenant       string    `json:"tenant"`
	ActorID      string    `json:"actorId,omitempty"`
	ActorName    string    `json:"actorName,omitempty"`
	Operation    string    `json:"operation"`
	ResourceType string    `json:"resourceType,omitempty"`
	ResourceID   string    `json:"resourceId,omitempty"`
	Attributes   []string  `json:"attributes,omitempty"`
	Outcome      string    `json:"outcome"`
}

// Actor is who performs a write, as recorded in the trail.
type Actor struct {
	ID   string
	Name string
}

// Record appends an event to the trail in the transaction's own commit.
func (t *Tx) Record(actor Actor, op, resourceType, resourceID string, attributes []string) error {
	b := t.b.Bucket(bktTrail)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	ev := Event{Seq: seq, Time: t.now, Tenant: t.tenant, ActorID: actor.ID, ActorName: actor.Name,
		Operation: op, ResourceType: resourceType, ResourceID: resourceID, Attributes: attributes,
		Outcome: "success"}
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return b.Put(k[:], raw)
}

// Trail calls fn for the tenant's events, newest first, starting below seq before (0: newest).
func (t *Tx) Trail(before uint64, fn func(Event) (bool, error)) error {
	c := t.b.Bucket(bktTrail).Cursor()
	var k, v []byte
	if before == 0 {
		k, v = c.Last()
	} else {
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], before)
		k, v = c.Seek(key[:])
		if k == nil {
			k, v = c.Last()
		}
		for k != nil && binary.BigEndian.Uint64(k) >= before {
			k, v = c.Prev()
		}
	}
	for ; k != nil; k, v = c.Prev() {
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil {
			return err
		}
		more, err := fn(ev)
		if err != nil || !more {
			return err
		}
	}
	return nil
}
