package bolt

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/scimserver/scimserver/internal/jsonenc"
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

// appendJSON appends e as json.Marshal writes it, without its reflection: every change
// writes an event, in the single writer.
func (e storedEvent) appendJSON(b []byte) []byte {
	b = strconv.AppendInt(append(b, `{"t":`...), e.Time, 10)
	b = appendField(b, "a", e.ActorID)
	b = appendField(b, "n", e.ActorName)
	b = jsonenc.AppendString(append(b, `,"o":`...), e.Operation)
	b = appendField(b, "r", e.ResourceType)
	b = appendField(b, "i", e.ResourceID)
	if len(e.Attributes) > 0 {
		b = append(b, `,"x":[`...)
		for i, a := range e.Attributes {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, a)
		}
		b = append(b, ']')
	}
	b = appendField(b, "l", e.Related)
	b = appendField(b, "lt", e.RelatedType)
	if e.Version != 0 {
		b = strconv.AppendUint(append(b, `,"v":`...), e.Version, 10)
	}
	b = appendField(b, "s", e.Outcome)
	return append(b, '}')
}

// appendField appends a string field that is left out when empty (omitempty).
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(append(append(b, ',', '"'), key...), '"', ':')
	return jsonenc.AppendString(b, v)
}

// The events of one resource are found through the trailBy index (resource id, seq), or, for
// the latest events of a record, through the record's own header: an event about a record the
// same transaction stored (a create, PUT or PATCH) is listed in the header that transaction
// writes anyway, rather than in trailBy, whose entry would be one more page written at a random
// place of the file (resources are changed in no particular order). A header lists at most
// headerEvents; when it is full, or the record is deleted, its events move to trailBy together,
// as adjacent keys (one page, as a rule).
const headerEvents = 16

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
	size := 96 + len(ev.ActorID) + len(ev.ActorName) + len(ev.ResourceID) + len(ev.Related) // one allocation, as a rule
	for _, a := range ev.Attributes {
		size += len(a) + 3
	}
	raw := storedEvent{Time: at.UnixNano(), ActorID: ev.ActorID, ActorName: ev.ActorName,
		Operation: ev.Operation, ResourceType: ev.ResourceType, ResourceID: ev.ResourceID,
		Attributes: ev.Attributes, Related: ev.Related, RelatedType: ev.RelatedType, Version: ev.Version, Outcome: outcome}.appendJSON(make([]byte, 0, size))
	if err := t.appended(bktTrail).Put(seqKey(seq), raw); err != nil {
		return err
	}
	if ev.ResourceID == "" {
		return nil
	}
	if cl := t.written[ev.ResourceID]; cl != nil {
		return t.listEvent(cl, ev.ResourceID, seq)
	}
	return t.indexEvents(ev.ResourceID, []uint64{seq})
}

// listEvent adds seq to the header of record id, which this transaction stored; a full list
// moves to trailBy first.
func (t *tx) listEvent(cl *coll, id string, seq uint64) error {
	b := t.appended(cl.records)
	raw := b.Get([]byte(id))
	if raw == nil { // deleted since, through another Tx over the same transaction
		return t.indexEvents(id, []uint64{seq})
	}
	h, _, err := decodeRecord(raw)
	if err != nil {
		return err
	}
	events := h.events()
	if len(events) >= headerEvents {
		if err := t.indexEvents(id, events); err != nil {
			return err
		}
		events = nil
	}
	next, err := withEvents(raw, append(events[:len(events):len(events)], seq))
	if err != nil {
		return err
	}
	return b.Put([]byte(id), next)
}

// indexEvents puts events of resource id into trailBy.
func (t *tx) indexEvents(id string, events []uint64) error {
	b := t.b.Bucket(bktTrailBy)
	for _, seq := range events {
		if err := b.Put(append(prefixOf(id), seqKey(seq)...), nil); err != nil {
			return err
		}
	}
	return nil
}

// listedEvents returns, oldest first, the events the headers of records with id list (one
// record, unless an import gave two collections the same id).
func (t *tx) listedEvents(id string) ([]uint64, error) {
	var all []uint64
	for _, cl := range t.s.layout.colls {
		if raw := t.b.Bucket(cl.records).Get([]byte(id)); raw != nil {
			h, _, err := decodeRecord(raw)
			if err != nil {
				return nil, err
			}
			all = append(all, h.events()...)
		}
	}
	slices.Sort(all)
	return all, nil
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
	var listed []uint64 // the resource's events its header lists, oldest first
	c := trail.Cursor()
	if q.ResourceID != "" {
		c, prefix = t.b.Bucket(bktTrailBy).Cursor(), prefixOf(q.ResourceID)
		var err error
		if listed, err = t.listedEvents(q.ResourceID); err != nil {
			return nil, 0, err
		}
	}
	// takeListed takes the listed events newer than seq, newest first.
	takeListed := func(seq uint64) (bool, error) {
		for ; len(listed) > 0 && listed[len(listed)-1] > seq; listed = listed[:len(listed)-1] {
			last := listed[len(listed)-1]
			if q.Before > 0 && last >= q.Before {
				continue
			}
			v := trail.Get(seqKey(last))
			if v == nil {
				return false, errCorrupt
			}
			if more, err := take(seqKey(last), v); err != nil || !more {
				return false, err
			}
		}
		return true, nil
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
		if more, err := takeListed(seq); err != nil {
			return nil, 0, err
		} else if !more {
			listed = nil
			break
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
			listed = nil
			break
		}
	}
	if _, err := takeListed(0); err != nil {
		return nil, 0, err
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
