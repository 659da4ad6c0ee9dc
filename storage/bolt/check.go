package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	bbolt "go.etcd.io/bbolt"
)

// Check verifies a data file: bbolt's own page consistency, then every index against the
// records it indexes (keys derived as the declarations say), memberships in both directions,
// the counts, the paging blocks and the trail's order. It returns one line per problem found;
// none means the file is consistent.
func (s *Store) Check() ([]string, error) {
	var problems []string
	err := s.view(func(btx *bbolt.Tx) error {
		for err := range btx.Check() {
			problems = append(problems, "bbolt: "+err.Error())
		}
		data := btx.Bucket(bktData)
		if data == nil {
			problems = append(problems, "the tenant data bucket is missing")
			return nil
		}
		return data.ForEachBucket(func(tenant []byte) error {
			t := &tx{s: s, tx: btx, b: data.Bucket(tenant), tenant: string(tenant)}
			for _, p := range t.check() {
				problems = append(problems, fmt.Sprintf("tenant %s: %s", tenant, p))
			}
			return nil
		})
	})
	return problems, err
}

// check compares the tenant's indexes with what its records say they should hold.
func (t *tx) check() []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	buckets := append([][]byte{}, fixedBuckets...)
	for _, c := range t.s.layout.colls {
		buckets = append(buckets, c.records)
		for _, ix := range c.indexes {
			if ix.bucket != nil {
				buckets = append(buckets, ix.bucket)
			}
		}
	}
	for _, name := range buckets {
		if t.b.Bucket(name) == nil {
			bad("bucket %s is missing", name)
			return problems
		}
	}
	exists := func(id []byte) bool {
		for _, c := range t.s.layout.colls {
			if t.b.Bucket(c.records).Get(id) != nil {
				return true
			}
		}
		return false
	}
	names := make([]string, 0, len(t.s.layout.colls))
	for name := range t.s.layout.colls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := t.s.layout.colls[name]
		want := make([]map[string]bool, len(c.indexes)) // expected keys per index
		for i := range want {
			want[i] = map[string]bool{}
		}
		n := 0
		err := t.b.Bucket(c.records).ForEach(func(id, v []byte) error {
			n++
			h, doc, err := decodeRecord(v)
			if err != nil {
				bad("%s %s: %v", name, id, err)
				return nil
			}
			for i := range c.indexes {
				ix := &c.indexes[i]
				if ix.bucket == nil {
					continue
				}
				stored, err := keysOf(h, doc, ix)
				if err != nil {
					bad("%s %s: %v", name, id, err)
					continue
				}
				derived, err := docKeys(ix.decl, doc)
				if err != nil {
					bad("%s %s: %v", name, id, err)
					continue
				}
				if fmt.Sprint(normalise(ix, stored)) != fmt.Sprint(normalise(ix, derived)) {
					bad("%s %s: the keys stored for index %s differ from its document's", name, id, ix.decl.Name)
				}
				for _, k := range normalise(ix, stored) {
					if ix.decl.Unique {
						want[i][k] = true
						if owner := t.b.Bucket(ix.bucket).Get([]byte(k)); string(owner) != string(id) {
							bad("%s %s: the %s index points at %q", name, id, ix.decl.Name, owner)
						}
					} else {
						want[i][string(pair(k, string(id)))] = true
					}
				}
			}
			events := h.events()
			if len(events) > headerEvents || !slices.IsSorted(events) {
				bad("%s %s: the header's list of events is out of order or too long: %v", name, id, events)
			}
			for _, seq := range events {
				v := t.b.Bucket(bktTrail).Get(seqKey(seq))
				if t.b.Bucket(bktTrailBy).Get(append(prefixOf(string(id)), seqKey(seq)...)) != nil {
					bad("%s %s: trail event %d is both in the header's list and in trailBy", name, id, seq)
				}
				if v == nil {
					bad("%s %s: the header lists trail event %d, which the trail lacks", name, id, seq)
				} else if ev, err := t.decodeEvent(seqKey(seq), v); err != nil || ev.ResourceID != string(id) {
					bad("%s %s: the header lists trail event %d, which is not about it", name, id, seq)
				}
			}
			return nil
		})
		if err != nil {
			bad("%s: %v", name, err)
		}
		for i := range c.indexes {
			if c.indexes[i].bucket != nil {
				problems = append(problems, compareKeys(t.b.Bucket(c.indexes[i].bucket), string(c.indexes[i].bucket), want[i])...)
			}
		}
		if got := t.count(name); got != uint64(n) {
			bad("the %s count says %d, there are %d", name, got, n)
		}
		problems = append(problems, c.order.check(t.b)...)
	}
	memberOf := map[string]bool{}
	seqs := map[string]string{} // a membership's reverse entry → the sequence number it must hold
	byID := t.s.layout.membersByID
	last := t.b.Bucket(bktMembers).Sequence()
	_ = t.b.Bucket(bktMembers).ForEach(func(k, v []byte) error {
		gid, rest, ok := bytes.Cut(k, []byte{0})
		sm, err := decodeMember(v)
		if !ok || err != nil {
			bad("malformed member %q = %q", k, v)
			return nil
		}
		mid := []byte(sm.Value)
		switch {
		case len(mid) > 0 && len(rest) == 8: // format 6
			if binary.BigEndian.Uint64(rest) > last {
				bad("member %s of group %s: its place %x is past the members' sequence %d", mid, gid, rest, last)
			}
		case len(mid) == 0 && byID: // format 5, keyed by member id
			mid = rest
		default:
			bad("malformed member %q = %q", k, v)
			return nil
		}
		if !exists(gid) {
			bad("member %s of group %s: the group does not exist", mid, gid)
		}
		if !exists(mid) {
			bad("member %s of group %s: the member does not exist", mid, gid)
		}
		rev := string(pair(string(mid), string(gid)))
		if memberOf[rev] {
			bad("member %s of group %s: a member twice", mid, gid)
		}
		memberOf[rev] = true
		if len(sm.Value) > 0 {
			seqs[rev] = string(rest)
		}
		return nil
	})
	_ = t.b.Bucket(bktMemberOf).ForEach(func(k, v []byte) error {
		if id, rest, ok := bytes.Cut(k, []byte{0}); ok && len(rest) == 0 {
			if !exists(id) {
				bad("a version stamp of %s: the record does not exist", id)
			}
			memberOf[string(k)] = true // a stamp, not a membership
		} else if want, ok := seqs[string(k)]; ok && string(v) != want {
			bad("the reverse entry %q holds %x, its membership is %x", k, v, want)
		}
		return nil
	})
	problems = append(problems, compareKeys(t.b.Bucket(bktMemberOf), string(bktMemberOf), memberOf)...)
	var prev uint64
	_ = t.b.Bucket(bktTrail).ForEach(func(k, _ []byte) error {
		if len(k) != 8 {
			bad("malformed audit trail key %q", k)
			return nil
		}
		seq := binary.BigEndian.Uint64(k)
		if seq <= prev {
			bad("audit trail sequence goes backwards at %d", seq)
		}
		prev = seq
		return nil
	})
	return problems
}

// compareKeys reports the keys of b that want lacks, and those of want that b lacks.
func compareKeys(b *bbolt.Bucket, name string, want map[string]bool) []string {
	var extra, missing []string
	seen := map[string]bool{}
	_ = b.ForEach(func(k, _ []byte) error {
		if want[string(k)] {
			seen[string(k)] = true
		} else {
			extra = append(extra, fmt.Sprintf("index %s has an entry no record accounts for: %q", name, k))
		}
		return nil
	})
	for k := range want {
		if !seen[k] {
			missing = append(missing, fmt.Sprintf("index %s lacks an entry: %q", name, k))
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return append(extra, missing...)
}
