package bolt

import (
	"encoding/binary"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Records are stored as a small binary header followed by the document's JSON, so that reading
// a record never re-parses the document and writing one never re-encodes it:
//
//	format 3:  3 | events uvarint, each: trail seq uvarint | the rest as format 2 after its first byte
//	format 2:  2 | version uvarint | created, modified: unix ns varint |
//	           key lists uvarint, each: index id uvarint, keys uvarint, each key: uvarint length + bytes |
//	           secret: uvarint length + bytes | document JSON
//	format 1:  1 | version | created | modified | keys: uvarint length + JSON | secret | document
//
// A format-1 header's keys are ignored: they are derived from the document when needed. So are
// the keys of an index declared after the record was last written (its id is not in the header).
//
// A format-3 header lists the record's latest events (see trail.go): the events the record was
// written with, which the trailBy index then need not hold.
const (
	recordFormat1 = 1
	recordFormat2 = 2
	recordFormat  = 3
)

type header struct {
	listed            []byte // format 3's list of events, as stored; see events
	version           uint64
	created, modified time.Time
	keys              []byte // the encoded key lists (format 2), nil for format 1
	secret            []byte
}

func encodeRecord(c *coll, r storage.Record, events []uint64) []byte {
	n := 1 + (5+len(events))*binary.MaxVarintLen64 + len(r.Secret) + len(r.Doc)
	for _, ks := range r.Keys {
		n += 2 * binary.MaxVarintLen32
		for _, k := range ks {
			n += binary.MaxVarintLen32 + len(k)
		}
	}
	b := make([]byte, 0, n)
	b = appendEvents(append(b, recordFormat), events)
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendVarint(b, r.Created.UnixNano())
	b = binary.AppendVarint(b, r.Modified.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(c.indexes)))
	for i := range c.indexes {
		var ks []string
		if i < len(r.Keys) {
			ks = r.Keys[i]
		}
		b = binary.AppendUvarint(b, c.indexes[i].id)
		b = binary.AppendUvarint(b, uint64(len(ks)))
		for _, k := range ks {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Secret)))
	b = append(b, r.Secret...)
	return append(b, r.Doc...)
}

var errCorrupt = &storage.Error{Code: storage.Unavailable, Message: "a stored record is corrupt"}

// reader steps through a header.
type reader struct {
	p  []byte
	ok bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.ok = false
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *reader) time() time.Time {
	v, n := binary.Varint(r.p)
	if n <= 0 {
		r.ok = false
		return time.Time{}
	}
	r.p = r.p[n:]
	return time.Unix(0, v).UTC()
}

func (r *reader) bytes() []byte {
	l := r.uvarint()
	if !r.ok || l > uint64(len(r.p)) {
		r.ok = false
		return nil
	}
	v := r.p[:l]
	r.p = r.p[l:]
	return v
}

// skipEvents steps over format 3's list of events and returns it as stored. Reads of a record
// do not need the list, so it is decoded only when asked for (header.events).
func (r *reader) skipEvents() []byte {
	start := r.p
	n := r.uvarint()
	if n > uint64(len(r.p)) { // each takes a byte at least
		r.ok = false
		return nil
	}
	for i := uint64(0); i < n && r.ok; i++ {
		r.uvarint()
	}
	return start[:len(start)-len(r.p)]
}

// events is the list of events the header holds, oldest first.
func (h header) events() []uint64 {
	if len(h.listed) == 0 {
		return nil
	}
	r := reader{p: h.listed, ok: true}
	seqs := make([]uint64, r.uvarint())
	for i := range seqs {
		seqs[i] = r.uvarint()
	}
	return seqs
}

func appendEvents(b []byte, events []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, seq := range events {
		b = binary.AppendUvarint(b, seq)
	}
	return b
}

// withEvents gives a record of the current format (one this transaction wrote) the list events,
// leaving the rest as it is.
func withEvents(raw []byte, events []uint64) ([]byte, error) {
	if len(raw) == 0 || raw[0] != recordFormat {
		return nil, errCorrupt
	}
	r := reader{p: raw[1:], ok: true}
	if r.skipEvents(); !r.ok {
		return nil, errCorrupt
	}
	b := make([]byte, 0, len(r.p)+(1+len(events))*binary.MaxVarintLen64+1)
	b = appendEvents(append(b, recordFormat), events)
	return append(b, r.p...), nil
}

// skipKeys steps over format 2's key lists.
func (r *reader) skipKeys() {
	lists := r.uvarint()
	for i := uint64(0); i < lists && r.ok; i++ {
		r.uvarint()
		n := r.uvarint()
		for j := uint64(0); j < n && r.ok; j++ {
			r.bytes()
		}
	}
}

// decodeRecord splits a record into its header and document. The returned slices point into
// raw, which bbolt owns for the transaction only; callers copy what outlives it.
func decodeRecord(raw []byte) (header, []byte, error) {
	var h header
	if len(raw) == 0 || raw[0] < recordFormat1 || raw[0] > recordFormat {
		return h, nil, errCorrupt
	}
	r := reader{p: raw[1:], ok: true}
	if raw[0] == recordFormat {
		h.listed = r.skipEvents()
	}
	h.version = r.uvarint()
	h.created = r.time()
	h.modified = r.time()
	if raw[0] == recordFormat1 {
		r.bytes()
	} else {
		start := r.p
		r.skipKeys()
		h.keys = start[:len(start)-len(r.p)]
	}
	h.secret = r.bytes()
	if !r.ok {
		return h, nil, errCorrupt
	}
	return h, r.p, nil
}

// keysOf returns a stored record's keys under ix: from its header when the header has them,
// from its document otherwise.
func keysOf(h header, doc []byte, ix *index) ([]string, error) {
	if h.keys != nil {
		r := reader{p: h.keys, ok: true}
		lists := r.uvarint()
		for i := uint64(0); i < lists && r.ok; i++ {
			id, n := r.uvarint(), r.uvarint()
			var ks []string
			for j := uint64(0); j < n && r.ok; j++ {
				ks = append(ks, string(r.bytes()))
			}
			if id == ix.id {
				return ks, nil
			}
		}
		if !r.ok {
			return nil, errCorrupt
		}
	}
	return docKeys(ix.decl, doc)
}

// docKeys derives an index's keys from a stored document, as the declaration says.
func docKeys(ix storage.Index, doc []byte) ([]string, error) {
	m, err := storage.DecodeDoc(doc)
	if err != nil {
		return nil, errCorrupt
	}
	return ix.Keys(m), nil
}

func decode(id string, raw []byte) (storage.Record, error) {
	h, doc, err := decodeRecord(raw)
	if err != nil {
		return storage.Record{}, err
	}
	return storage.Record{ID: id, Doc: clone(doc), Secret: clone(h.secret), Created: h.created, Modified: h.modified, Version: h.version}, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
