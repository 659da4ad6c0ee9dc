package bolt

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/scimserver/scimserver/storage"
)

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
	RelatedType  string   `json:"lt,omitempty"`
	Version      uint64   `json:"v,omitempty"`
	Outcome      string   `json:"s,omitempty"` // empty: success
}

// Append numbers events with the bucket's sequence: one writer commits at a time, so sequence
// order is commit order. The tenant's watchers wake once the commit is on disk.
func (t *tx) Append(ev storage.Event) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	seq, err := t.appended(bktTrail).NextSequence()
	if err != nil {
		return err
	}
	return t.putEvent(seq, t.now, ev)
}

// putEvent stores ev under seq with the time at, and wakes the tenant's watchers on commit.
func (t *tx) putEvent(seq uint64, at time.Time, ev storage.Event) error {
	if !t.appendedEvent {
		t.appendedEvent = true
		t.tx.OnCommit(func() { t.s.watchers.Notify(t.tenant) })
	}
	outcome := ev.Outcome
	if outcome == "success" {
		outcome = ""
	}
	raw, err := json.Marshal(storedEvent{Time: at.UnixNano(), ActorID: ev.ActorID, ActorName: ev.ActorName,
		Operation: ev.Operation, ResourceType: ev.ResourceType, ResourceID: ev.ResourceID,
		Attributes: ev.Attributes, Related: ev.Related, RelatedType: ev.RelatedType, Version: ev.Version, Outcome: outcome})
	if err != nil {
		return err
	}
	k := seqKey(seq)
	if err := t.appended(bktTrail).Put(k, raw); err != nil {
		return err
	}
	if ev.ResourceID != "" {
		return t.b.Bucket(bktTrailBy).Put(append(prefixOf(ev.ResourceID), k...), nil)
	}
	return nil
}

func (t *tx) decodeEvent(k, v []byte) (storage.Event, error) {
	var se storedEvent
	if err := json.Unmarshal(v, &se); err != nil {
		return storage.Event{}, err
	}
	ev := storage.Event{Seq: binary.BigEndian.Uint64(k), Time: time.Unix(0, se.Time).UTC(), Tenant: t.tenant,
		ActorID: se.ActorID, ActorName: se.ActorName, Operation: se.Operation, ResourceType: se.ResourceType,
		ResourceID: se.ResourceID, Attributes: se.Attributes, Related: se.Related, RelatedType: se.RelatedType,
		Version: se.Version, Outcome: se.Outcome}
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

func (t *tx) Trail(q storage.TrailQuery) ([]storage.Event, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var out []storage.Event
	full := false // a page's worth taken, and a match beyond it: there is a next page
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
		if len(out) == q.Limit {
			full = true
			return false, nil
		}
		out = append(out, ev)
		return true, nil
	}
	var prefix []byte
	c := trail.Cursor()
	if q.ResourceID != "" {
		c, prefix = t.b.Bucket(bktTrailBy).Cursor(), prefixOf(q.ResourceID)
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
		if !more {
			break
		}
	}
	if !full {
		return out, 0, nil
	}
	return out, out[len(out)-1].Seq, nil
}

func (t *tx) Events(after uint64, fn func(storage.Event) (bool, error)) error {
	c := t.b.Bucket(bktTrail).Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
		ev, err := t.decodeEvent(k, v)
		if err != nil {
			return err
		}
		more, err := fn(ev)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *tx) TrailLength() (int, error) { return t.b.Bucket(bktTrail).Stats().KeyN, nil }
