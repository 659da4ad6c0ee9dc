package storage

import (
	"encoding/binary"
	"encoding/json"
	"time"
)

// Records are stored as a small binary header followed by the document's JSON, so that reading
// a record never re-parses the document and writing one never re-encodes it:
//
//	format byte (1) | version uvarint | created, modified: unix nanoseconds, varint |
//	keys: uvarint length + JSON | password hash: uvarint length + bytes | document JSON
const recordFormat = 1

type header struct {
	version           uint64
	created, modified time.Time
	keys              []byte
	password          []byte
}

func encodeRecord(h header, doc []byte) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+2*binary.MaxVarintLen32+len(h.keys)+len(h.password)+len(doc))
	b = append(b, recordFormat)
	b = binary.AppendUvarint(b, h.version)
	b = binary.AppendVarint(b, h.created.UnixNano())
	b = binary.AppendVarint(b, h.modified.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(h.keys)))
	b = append(b, h.keys...)
	b = binary.AppendUvarint(b, uint64(len(h.password)))
	b = append(b, h.password...)
	return append(b, doc...)
}

var errCorrupt = &Error{Code: Unavailable, Message: "a stored record is corrupt"}

// decodeRecord splits a record into its header and document. The returned slices point into
// raw, which bbolt owns for the transaction only; callers copy what outlives it.
func decodeRecord(raw []byte) (header, []byte, error) {
	var h header
	if len(raw) == 0 || raw[0] != recordFormat {
		return h, nil, errCorrupt
	}
	p := raw[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	nextTime := func() (time.Time, bool) {
		v, n := binary.Varint(p)
		if n <= 0 {
			return time.Time{}, false
		}
		p = p[n:]
		return time.Unix(0, v).UTC(), true
	}
	bytesOf := func() ([]byte, bool) {
		l, ok := next()
		if !ok || l > uint64(len(p)) {
			return nil, false
		}
		v := p[:l]
		p = p[l:]
		return v, true
	}
	var ok1, ok2, ok3, ok4, ok5 bool
	h.version, ok1 = next()
	h.created, ok2 = nextTime()
	h.modified, ok3 = nextTime()
	h.keys, ok4 = bytesOf()
	h.password, ok5 = bytesOf()
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return h, nil, errCorrupt
	}
	return h, p, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func marshalUser(u User) ([]byte, error) {
	keys, err := json.Marshal(u.Keys)
	if err != nil {
		return nil, err
	}
	return encodeRecord(header{version: u.Version, created: u.Created, modified: u.Modified, keys: keys, password: u.Password}, u.Doc), nil
}

func decodeUser(id string, raw []byte) (User, error) {
	h, doc, err := decodeRecord(raw)
	if err != nil {
		return User{}, err
	}
	u := User{ID: id, Doc: clone(doc), Created: h.created, Modified: h.modified, Version: h.version, Password: clone(h.password)}
	return u, json.Unmarshal(h.keys, &u.Keys)
}

func marshalGroup(g Group) ([]byte, error) {
	keys, err := json.Marshal(g.Keys)
	if err != nil {
		return nil, err
	}
	return encodeRecord(header{version: g.Version, created: g.Created, modified: g.Modified, keys: keys}, g.Doc), nil
}

func decodeGroup(id string, raw []byte) (Group, error) {
	h, doc, err := decodeRecord(raw)
	if err != nil {
		return Group{}, err
	}
	g := Group{ID: id, Doc: clone(doc), Created: h.created, Modified: h.modified, Version: h.version}
	return g, json.Unmarshal(h.keys, &g.Keys)
}
