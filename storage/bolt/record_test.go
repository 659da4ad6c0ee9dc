package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// TestHeaderEvents holds a record's list of events to what was written, through an encode and
// through a change of the list alone, and refuses lists that do not fit the record.
func TestHeaderEvents(t *testing.T) {
	s := openTemp(t)
	cl := s.layout.colls["users"]
	r := named(storage.NewID(), "listed")
	r.Secret = []byte("hash")
	r.Version, r.Created, r.Modified = 7, time.Unix(1, 2).UTC(), time.Unix(3, 4).UTC()
	same := func(raw []byte, events []uint64) {
		t.Helper()
		h, doc, err := decodeRecord(raw)
		if err != nil || !slices.Equal(h.events(), events) || h.version != 7 || !h.created.Equal(r.Created) ||
			!h.modified.Equal(r.Modified) || string(h.secret) != "hash" || !bytes.Equal(doc, r.Doc) {
			t.Errorf("decoded %+v %q %v, want events %v and the record as written", h, doc, err, events)
		}
	}
	for _, events := range [][]uint64{nil, {1}, {5, 1 << 40, 1<<64 - 1}, make([]uint64, headerEvents)} {
		raw := encodeRecord(cl, r, events)
		same(raw, events)
		next, err := withEvents(raw, []uint64{42, 43})
		if err != nil {
			t.Fatal(err)
		}
		same(next, []uint64{42, 43})
		// A record of format 2 is the same record without a list; only records this version
		// wrote get a list.
		format2 := append([]byte{recordFormat2}, encodeRecord(cl, r, nil)[2:]...)
		same(format2, nil)
		if _, err := withEvents(format2, events); !errors.Is(err, errCorrupt) {
			t.Errorf("withEvents on format 2: %v, want corrupt", err)
		}
	}
	for _, raw := range [][]byte{{recordFormat}, {recordFormat, 200, 1}, {recordFormat, 1, 0x80}, {recordFormat + 1, 0}} {
		if _, _, err := decodeRecord(raw); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeRecord(%v): %v, want corrupt", raw, err)
		}
		if _, err := withEvents(raw, nil); !errors.Is(err, errCorrupt) {
			t.Errorf("withEvents(%v): %v, want corrupt", raw, err)
		}
	}
}

// TestRecordEventsStayOffTheIndex: an event about a record written in the same transaction is
// listed in the record's header and writes nothing to trailBy until the list is full or the
// record is deleted; then the list moves there whole.
func TestRecordEventsStayOffTheIndex(t *testing.T) {
	s := openTemp(t)
	id := storage.NewID()
	indexed := func() int {
		t.Helper()
		n := 0
		err := s.view(func(btx *bbolt.Tx) error {
			return scanPrefix(btx.Bucket(bktData).Bucket([]byte(defaultTenant)).Bucket(bktTrailBy), prefixOf(id), func([]byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	write := func(fn func(tx storage.Tx) error) {
		t.Helper()
		err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Append(storage.Event{Operation: "op", ResourceID: id, Outcome: "success"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx storage.Tx) error { _, err := tx.Insert(users, named(id, "u")); return err })
	for range headerEvents - 1 {
		write(func(tx storage.Tx) error { _, err := tx.Update(users, named(id, "u")); return err })
	}
	if n := indexed(); n != 0 {
		t.Fatalf("%d events of a full list in trailBy, want none", n)
	}
	write(func(tx storage.Tx) error { _, err := tx.Update(users, named(id, "u")); return err })
	if n := indexed(); n != headerEvents {
		t.Fatalf("%d events in trailBy once the list overflowed, want %d", n, headerEvents)
	}
	write(func(tx storage.Tx) error { return tx.Touch(users, id) }) // not written: indexed at once
	if n := indexed(); n != headerEvents+1 {
		t.Fatalf("%d events in trailBy after an event without a write, want %d", n, headerEvents+1)
	}
	write(func(tx storage.Tx) error { return tx.Delete(users, id) })
	if n := indexed(); n != headerEvents+3 {
		t.Fatalf("%d events in trailBy after the delete, want all %d", n, headerEvents+3)
	}
	if problems, err := s.Check(); len(problems) != 0 || err != nil {
		t.Errorf("check: %v %v", problems, err)
	}
}

// FuzzStoredEventJSON: an event is stored exactly as json.Marshal writes it, each field left
// out when json.Marshal leaves it out.
func FuzzStoredEventJSON(f *testing.F) {
	f.Add(int64(1764700000000000000), "tok-1", "Okta", "update", "User", "0192", "active\nname", "g1", "Group", uint64(3), "")
	f.Add(int64(-1), "", "", "", "", "", "", "", "", uint64(0), "denied")
	f.Add(int64(0), "a\"<&>", "é\u2028", "\x00", "\xff", "", "\n", "", "", uint64(1<<63), "x")
	f.Fuzz(func(t *testing.T, at int64, actor, name, op, typ, id, attrs, rel, relType string, version uint64, outcome string) {
		e := storedEvent{Time: at, ActorID: actor, ActorName: name, Operation: op, ResourceType: typ, ResourceID: id,
			Related: rel, RelatedType: relType, Version: version, Outcome: outcome}
		if attrs != "" {
			e.Attributes = strings.Split(attrs, "\n")
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("%s, json.Marshal %s", got, want)
		}
	})
}

// FuzzStoredMember: a membership is stored exactly as json.Marshal writes it, and read back as
// json.Unmarshal reads whatever a members bucket holds, a membership of format 5 (no id) among
// them.
func FuzzStoredMember(f *testing.F) {
	f.Add("01a2", "User", "Ada", []byte(`{"v":"01a2","t":"User","d":"Ada"}`))
	f.Add("g", "Group", "", []byte(`{"t":"Group"}`))
	f.Add("x\"y", "User", "é\"\\<\x01\xff", []byte(`{"v":"a","t":"User","d":"a\u00e9\"\n"}`))
	f.Add("", "", "", []byte(`{"d":"x","t":"y","v":"z"} `))
	f.Add("\xff", "User", "", []byte("{\"v\":\"\xff\",\"t\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, id, typ, display string, raw []byte) {
		m := storedMember{Value: id, Type: typ, Display: display}
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("%s, json.Marshal %s", got, want)
		}
		for _, b := range [][]byte{want, raw} {
			var want storedMember
			werr := json.Unmarshal(b, &want)
			got, err := decodeMember(b)
			if (err == nil) != (werr == nil) || err == nil && got != want {
				t.Fatalf("%q: %+v (%v), json.Unmarshal %+v (%v)", b, got, err, want, werr)
			}
		}
	})
}
