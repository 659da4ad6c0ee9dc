package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/scimserver/scimserver/internal/jsonenc"
	"github.com/scimserver/scimserver/storage"
)

// Memberships live one key per membership, in both directions, so that a group of any size
// changes by one key per member added or removed, and a member's groups are found without
// reading any group. A group's members are keyed by a sequence number of the members bucket, in
// the order they joined (those of a file migrated from format 5 first, in member id order), not
// by member id: ids are random to whoever adds members, and 100 new members keyed by id landed
// on up to 100 pages of a big group's keys, where by sequence they land on its last page or two.
// The reverse entry (member, group) holds the sequence number, which finds the membership.
// Before format 6 members were keyed by member id, with empty reverse entries; the migration
// (migrateMembers) rekeys them in batches, and a reader takes either form (a file opened
// read-only is not migrated).

// storedMember is a membership as the members bucket stores it.
type storedMember struct {
	Value   string `json:"v"` // the member's id; in the key before format 6
	Type    string `json:"t"`
	Display string `json:"d,omitempty"`
}

// appendJSON appends m as json.Marshal writes it, without its reflection.
func (m storedMember) appendJSON(b []byte) []byte {
	b = jsonenc.AppendString(append(b, `{"v":`...), m.Value)
	b = jsonenc.AppendString(append(b, `,"t":`...), m.Type)
	if m.Display != "" {
		b = jsonenc.AppendString(append(b, `,"d":`...), m.Display)
	}
	return append(b, '}')
}

// decodeMember reads a stored membership: as appendJSON writes it, with no escapes in its
// strings, directly (a group's members are read one by one); anything else, a membership of a
// format before 6 among them, through json.Unmarshal.
func decodeMember(raw []byte) (storedMember, error) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"v":"`))
	if ok {
		var id, typ, display []byte
		id, rest, ok = cutPlain(rest)
		if ok {
			rest, ok = bytes.CutPrefix(rest, []byte(`,"t":"`))
		}
		if ok {
			typ, rest, ok = cutPlain(rest)
		}
		if ok && string(rest) != "}" {
			if rest, ok = bytes.CutPrefix(rest, []byte(`,"d":"`)); ok {
				display, rest, ok = cutPlain(rest)
				ok = ok && string(rest) == "}"
			}
		}
		if ok {
			return storedMember{Value: string(id), Type: string(typ), Display: string(display)}, nil
		}
	}
	var sm storedMember
	err := json.Unmarshal(raw, &sm)
	return sm, err
}

// cutPlain cuts a JSON string's contents, up to its closing quote, from the start of b: ok only
// when it holds no escape, no control character and no invalid UTF-8, which json.Unmarshal
// would decode to something else or refuse.
func cutPlain(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], utf8.Valid(b[:i])
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// memberKey is a membership's key in the members bucket: the group, 0, its sequence number.
func memberKey(group string, seq []byte) []byte {
	return append(prefixOf(group), seq...)
}

// seqOf returns the sequence number that member's reverse entry for group holds: nil when it is
// not a member, or when the entry is of format 5 (empty), whose membership is keyed by id.
func (t *tx) seqOf(group, member string) []byte {
	if seq := t.b.Bucket(bktMemberOf).Get(pair(member, group)); len(seq) == 8 {
		return seq
	}
	return nil
}

func (t *tx) AddMember(group string, m storage.Member) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	if group == "" || m.Value == "" || len(group)+len(m.Value) > storage.MaxKeyLen {
		return storage.Errorf(storage.Invalid, "a membership needs a group and a member id")
	}
	members := t.b.Bucket(bktMembers)
	seq := t.seqOf(group, m.Value)
	if seq == nil { // a new member, or a reverse entry left without its membership: a new place
		n, err := members.NextSequence()
		if err != nil {
			return err
		}
		seq = seqKey(n)
		if err := t.b.Bucket(bktMemberOf).Put(pair(m.Value, group), seq); err != nil {
			return err
		}
	}
	raw := storedMember{Value: m.Value, Type: m.Type, Display: m.Display}.appendJSON(make([]byte, 0, 32+len(m.Value)+len(m.Type)+len(m.Display)))
	return members.Put(memberKey(group, seq), raw)
}

func (t *tx) RemoveMember(group, member string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	seq := t.seqOf(group, member)
	if seq == nil {
		return false, nil
	}
	if err := t.b.Bucket(bktMembers).Delete(memberKey(group, seq)); err != nil {
		return false, err
	}
	return true, t.b.Bucket(bktMemberOf).Delete(pair(member, group))
}

func (t *tx) Member(group, member string) (storage.Member, bool, error) {
	var raw []byte
	if seq := t.seqOf(group, member); seq != nil {
		raw = t.b.Bucket(bktMembers).Get(memberKey(group, seq))
	} else if t.s.layout.membersByID {
		raw = t.b.Bucket(bktMembers).Get(pair(group, member))
	}
	if raw == nil {
		return storage.Member{}, false, nil
	}
	sm, err := decodeMember(raw)
	return storage.Member{Value: member, Type: sm.Type, Display: sm.Display}, true, err
}

func (t *tx) Members(group string, fn func(storage.Member) error) error {
	c := t.b.Bucket(bktMembers).Cursor()
	prefix := prefixOf(group)
	byID := t.s.layout.membersByID
	for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
		sm, err := decodeMember(v)
		if err != nil {
			return err
		}
		if sm.Value == "" { // a membership of format 5, keyed by member id
			if !byID || len(k) == len(prefix) {
				continue
			}
			sm.Value = string(k[len(prefix):])
		}
		if err := fn(storage.Member{Value: sm.Value, Type: sm.Type, Display: sm.Display}); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) MemberOf(member string) ([]string, error) {
	var ids []string
	err := scanPrefix(t.b.Bucket(bktMemberOf), prefixOf(member), func(rest []byte) error {
		if len(rest) > 0 { // the empty rest is the member's stamp
			ids = append(ids, string(rest))
		}
		return nil
	})
	return ids, err
}

// A stamp is what Touch gives a record instead of rewriting it: how many new versions it got
// since it was last written, and when the latest was. Reads fold it into the record's Version
// and Modified; Update folds it into the stored header and drops it. It is kept in the memberOf
// bucket under "id 0", just before the record's own memberships: a membership change, which
// writes that page anyway, so gives the member a new version without writing the member's
// record (a user's page holds one or two records, so touching 100 members used to write 100
// more pages). Its value is the count and the time, 8 bytes each, then the name of the record's
// collection (format 5; a stamp written before has none). A stamp exists only while its record
// does, and never for a record written in the same transaction, so a stamp that names the
// collection spares a touch reading the record.
type stamp struct {
	n    uint64
	at   time.Time
	coll []byte // the record's collection; empty in a stamp of format 4
}

func (t *tx) stampOf(id string) stamp {
	v := t.b.Bucket(bktMemberOf).Get(prefixOf(id))
	if len(v) < 16 {
		return stamp{}
	}
	return stamp{n: binary.BigEndian.Uint64(v), at: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))).UTC(), coll: v[16:]}
}

// putStamp stores a stamp of a record of cl.
func (t *tx) putStamp(cl *coll, id string, st stamp) error {
	v := make([]byte, 16, 16+len(cl.records))
	binary.BigEndian.PutUint64(v, st.n)
	binary.BigEndian.PutUint64(v[8:], uint64(st.at.UnixNano()))
	return t.b.Bucket(bktMemberOf).Put(prefixOf(id), append(v, cl.records...))
}

// dropStamp removes a record's stamp once its header holds the count, or the record is gone.
func (t *tx) dropStamp(id string, st stamp) error {
	if st.n == 0 {
		return nil
	}
	return t.b.Bucket(bktMemberOf).Delete(prefixOf(id))
}

// fold adds a record's stamp to what was read from its header.
func (t *tx) fold(r storage.Record) storage.Record {
	st := t.stampOf(r.ID)
	r.Version += st.n
	if st.at.After(r.Modified) {
		r.Modified = st.at
	}
	return r
}
