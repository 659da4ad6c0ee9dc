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
	// Related is another resource the operation involved, e.g. the campaign of an assignment.
	Related string `json:"related,omitempty"`
	Outcome string `json:"outcome"`
}

// Actor is who performs a write, as recorded in the trail.
type Actor struct {
	ID   string
	Name string
}

// Record appends an event to the trail in the transaction's own commit.
func (t *Tx) Record(actor Actor, op, resourceType, resourceID string, attributes []string) error {
	return t.RecordEvent(Event{ActorID: actor.ID, ActorName: actor.Name, Operation: op,
		ResourceType: resourceType, ResourceID: resourceID, Attributes: attributes})
}

// RecordEvent appends ev (its sequence, time, tenant and, when empty, outcome are filled in).
func (t *Tx) RecordEvent(ev Event) error {
	b := t.appended(bktTrail)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	ev.Time = t.now
	raw, err := json.Marshal(storedEvent{Time: ev.Time.UnixNano(), ActorID: ev.ActorID, ActorName: ev.ActorName,
		Operation: ev.Operation, ResourceType: ev.ResourceType, ResourceID: ev.ResourceID,
		Attributes: ev.Attributes, Related: ev.Related, Outcome: ev.Outcome})
	if err != nil {
		return err
	}
	k := seqKey(seq)
	if err := b.Put(k, raw); err != nil {
		return err
	}
	if ev.ResourceID != "" {
		return t.b.Bucket(bktTrailBy).Put(append(prefixOf(ev.ResourceID), k...), nil)
	}
	return nil
}

// storedEvent is an Event as the trail stores it: short keys, and no sequence or tenant, which
// the key and the bucket already say. A trail grows by one per change, so its size counts.
type storedEvent struct {
	Time         int64    `json:"t"`
	ActorID      string   `json:"a,omitempty"`
	ActorName    string   `json:"n,omitempty"`
	Operation    string   `json:"o"`
	ResourceType string   `json:"r,omitempty"`
	ResourceID   string   `json:"i,omitempty"`
	Attributes   []string `json:"x,omitempty"`
	Related      string   `json:"l,omitempty"`
	Outcome      string   `json:"s,omitempty"` // empty: success
}

func (t *Tx) decodeEvent(k, v []byte) (Event, error) {
	var se storedEvent
	if err := json.Unmarshal(v, &se); err != nil {
		return Event{}, err
	}
	ev := Event{Seq: binary.BigEndian.Uint64(k), Time: time.Unix(0, se.Time).UTC(), Tenant: t.tenant,
		ActorID: se.ActorID, ActorName: se.ActorName, Operation: se.Operation, ResourceType: se.ResourceType,
		ResourceID: se.ResourceID, Attributes: se.Attributes, Related: se.Related, Outcome: se.Outcome}
	if ev.Outcome == "" {
		ev.Outcome = "success"
	}
	return ev, nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// TrailQuery selects audit events. Before is a cursor: only events with a smaller sequence.
type TrailQuery struct {
	ResourceID   string
	Since, Until time.Time // zero means unbounded
	Before       uint64
	Limit        int
}

// Trail returns the events that match q, newest first, and the cursor for the next page (0 when
// there is none). With a ResourceID it reads that resource's events only.
func (t *Tx) Trail(q TrailQuery) ([]Event, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var out []Event
	trail := t.b.Bucket(bktTrail)
	take := func(k, v []byte) (bool, error) {
		ev, err := t.decodeEvent(k, v)
		if err != nil {
			return false, err
		}
		if !q.Until.IsZero() && ev.Time.After(q.Until) {
			return true, nil
		}
		if !q.Since.IsZero() && ev.Time.Before(q.Since) {
			return false, nil // older still: stop
		}
		out = append(out, ev)
		return len(out) < q.Limit, nil
	}
	var c interface {
		Last() ([]byte, []byte)
		Prev() ([]byte, []byte)
		Seek([]byte) ([]byte, []byte)
	}
	var prefix []byte
	if q.ResourceID != "" {
		c, prefix = t.b.Bucket(bktTrailBy).Cursor(), prefixOf(q.ResourceID)
	} else {
		c = trail.Cursor()
	}
	// Position on the newest key of the range below the cursor.
	upper := append(append([]byte{}, prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	if q.Before > 0 {
		upper = append(append([]byte{}, prefix...), seqKey(q.Before)...)
	}
	k, _ := c.Seek(upper)
	var v []byte
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	var last uint64
	for ; k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, v = c.Prev() {
		seq := binary.BigEndian.Uint64(k[len(prefix):])
		if q.Before > 0 && seq >= q.Before {
			continue
		}
		seqK := k[len(prefix):]
		if prefix != nil {
			v = trail.Get(seqK)
		}
		more, err := take(seqK, v)
		if err != nil {
			return nil, 0, err
		}
		last = seq
		if !more {
			break
		}
	}
	if len(out) < q.Limit {
		return out, 0, nil
	}
	return out, last, nil
}

// EachEvent calls fn for every event of the trail, oldest first.
func (t *Tx) EachEvent(fn func(Event) error) error {
	return t.b.Bucket(bktTrail).ForEach(func(k, v []byte) error {
		ev, err := t.decodeEvent(k, v)
		if err != nil {
			return err
		}
		return fn(ev)
	})
}
