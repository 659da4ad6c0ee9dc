package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Check verifies a data file: bbolt's own page consistency, then every index against the data
// it indexes, the member lists against the reverse index, and the counts. It returns one line
// per problem found; none means the file is consistent.
func (s *Store) Check() ([]string, error) {
	var problems []string
	err := s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			problems = append(problems, "bbolt: "+err.Error())
		}
		data := tx.Bucket(bktData)
		if data == nil {
			problems = append(problems, "the tenant data bucket is missing")
			return nil
		}
		return data.ForEachBucket(func(tenant []byte) error {
			t := &Tx{tx: tx, b: data.Bucket(tenant), tenant: string(tenant)}
			for _, name := range tenantBuckets {
				if t.b.Bucket(name) == nil {
					problems = append(problems, fmt.Sprintf("tenant %s: bucket %s is missing", tenant, name))
					return nil
				}
			}
			for _, p := range t.check() {
				problems = append(problems, fmt.Sprintf("tenant %s: %s", tenant, p))
			}
			return nil
		})
	})
	return problems, err
}

// check compares the tenant's indexes with what its records say they should hold.
func (t *Tx) check() []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	want := map[string]map[string]bool{} // bucket -> expected keys
	expect := func(bucket []byte, key []byte) {
		m := want[string(bucket)]
		if m == nil {
			m = map[string]bool{}
			want[string(bucket)] = m
		}
		m[string(key)] = true
	}
	users, groups := 0, 0
	_ = t.ScanUsers("", 0, func(u User) (bool, error) {
		users++
		expect(bktUserName, []byte(Fold(u.Keys.UserName)))
		if id := t.b.Bucket(bktUserName).Get([]byte(Fold(u.Keys.UserName))); string(id) != u.ID {
			bad("user %s: the userName index points at %q", u.ID, id)
		}
		if u.Keys.ExternalID != "" {
			expect(bktUserExt, pair(u.Keys.ExternalID, u.ID))
		}
		for _, e := range foldAll(u.Keys.Emails) {
			expect(bktEmail, pair(e, u.ID))
		}
		return true, nil
	})
	_ = t.ScanGroups("", 0, func(g Group) (bool, error) {
		groups++
		expect(bktGroupName, []byte(Fold(g.Keys.DisplayName)))
		if id := t.b.Bucket(bktGroupName).Get([]byte(Fold(g.Keys.DisplayName))); string(id) != g.ID {
			bad("group %s: the displayName index points at %q", g.ID, id)
		}
		if g.Keys.ExternalID != "" {
			expect(bktGroupExt, pair(g.Keys.ExternalID, g.ID))
		}
		return true, nil
	})
	_ = t.b.Bucket(bktMembers).ForEach(func(k, _ []byte) error {
		gid, mid, ok := bytes.Cut(k, []byte{0})
		if !ok {
			bad("malformed member key %q", k)
			return nil
		}
		if !t.GroupExists(string(gid)) {
			bad("member %s of group %s: the group does not exist", mid, gid)
		}
		if !t.UserExists(string(mid)) && !t.GroupExists(string(mid)) {
			bad("member %s of group %s: the member does not exist", mid, gid)
		}
		expect(bktMemberOf, pair(string(mid), string(gid)))
		return nil
	})
	for _, name := range [][]byte{bktUserName, bktUserExt, bktEmail, bktGroupName, bktGroupExt, bktMemberOf} {
		exp := want[string(name)]
		var extra []string
		_ = t.b.Bucket(name).ForEach(func(k, _ []byte) error {
			if exp[string(k)] {
				delete(exp, string(k))
			} else {
				extra = append(extra, fmt.Sprintf("%q", k))
			}
			return nil
		})
		sort.Strings(extra)
		for _, k := range extra {
			bad("index %s has an entry no record accounts for: %s", name, k)
		}
		var missing []string
		for k := range exp {
			missing = append(missing, fmt.Sprintf("%q", k))
		}
		sort.Strings(missing)
		for _, k := range missing {
			bad("index %s lacks an entry: %s", name, k)
		}
	}
	if n := t.count("users"); n != uint64(users) {
		bad("the user count says %d, there are %d", n, users)
	}
	if n := t.count("groups"); n != uint64(groups) {
		bad("the group count says %d, there are %d", n, groups)
	}
	for _, o := range orders {
		problems = append(problems, o.check(t.b)...)
	}
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
