package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// formatVersion is the data file format this version writes. The meta bucket records it; each
// older format has a migration to the next (migrations), run at a writable open in the same
// transaction as the rest of the open; a newer format is refused.
//
//	1  the format before versions were recorded (no "format" key)
//	2  index buckets named by a layout record; index keys stored in record headers
//	3  version stamps (Touch) in the memberOf bucket, which an older version would take for
//	   memberships; nothing to migrate
//	4  record headers of format 3, which list a record's latest events (trail.go) and which an
//	   older version cannot read; nothing to migrate
//	5  version stamps that name their record's collection (members.go), which an older version
//	   would read as no stamp; nothing to migrate (a stamp without a name is read as before)
//	6  a group's members keyed by the order they joined, their reverse entries holding that
//	   order (members.go); the open's migration records format 6 and a mark, and the members
//	   are then rekeyed in batches (migrateMembers), which drop the mark; until then, and in a
//	   file of an older format opened read-only, members are read in either form
const formatVersion = 6

var (
	keyFormat = []byte("format")
	keyLayout = []byte("layout")
	// keyMembersByID marks a file whose members are not all rekeyed yet (format 6).
	keyMembersByID = []byte("membersByID")
)

// layout is where a file keeps each declared collection's records and indexes. It is stored
// in the meta bucket, so that an index keeps its bucket whatever the declaration's order, and
// an index declared since the last open is found missing and built.
type layout struct {
	Collections map[string]*collLayout `json:"collections"`
	colls       map[string]*coll       // the declared collections, by name
	// membersByID: some members may still be keyed by member id, as before format 6: a file of
	// an older format opened read-only, or one whose members are not all rekeyed yet.
	membersByID bool
}

type collLayout struct {
	Next    uint64                  `json:"next"` // the id the next new index gets
	Indexes map[string]*indexLayout `json:"indexes"`
}

type indexLayout struct {
	ID     uint64 `json:"id"` // names the index in record headers
	Bucket string `json:"bucket"`
	Unique bool   `json:"unique"`
	Fold   bool   `json:"fold"`
}

// coll is a declared collection with the place of everything the file keeps for it.
type coll struct {
	decl    *storage.Collection
	records []byte
	indexes []index // in the order of decl.Indexes
	order   order
	deletes string // counter of deleted records
}

type index struct {
	decl   storage.Index
	id     uint64
	bucket []byte
}

func (c *coll) index(name string) (*index, error) {
	for i := range c.indexes {
		if c.indexes[i].decl.Name == name {
			return &c.indexes[i], nil
		}
	}
	return nil, storage.Errorf(storage.Invalid, "collection %s has no index %s", c.decl.Name, name)
}

func readFormat(tx *bbolt.Tx) (uint64, bool) {
	meta := tx.Bucket(bktMeta)
	if meta == nil {
		return 0, false
	}
	v := meta.Get(keyFormat)
	if len(v) != 8 {
		return 1, tx.Bucket(bktTenants) != nil // a file from before versions
	}
	return binary.BigEndian.Uint64(v), true
}

// readLayout reads the layout of a file opened read-only, which cannot be migrated: a format-1
// file is read through the layout its migration would record.
func readLayout(tx *bbolt.Tx, decls []*storage.Collection) (*layout, error) {
	version, exists := readFormat(tx)
	if !exists {
		return nil, fmt.Errorf("not a scimserver data file (or an empty one)")
	}
	if version > formatVersion {
		return nil, tooNew(version)
	}
	if version >= 2 {
		l, err := loadLayout(tx)
		if err != nil {
			return nil, err
		}
		l.membersByID = version < 6 || tx.Bucket(bktMeta).Get(keyMembersByID) != nil
		return l, l.bind(decls, false)
	}
	l := legacyLayout()
	l.membersByID = true
	if err := l.bind(decls, false); err != nil {
		return nil, err
	}
	for name, old := range legacyDeletes {
		if c := l.colls[name]; c != nil {
			c.deletes, c.order.deletes = old, old
		}
	}
	return l, nil
}

func tooNew(version uint64) error {
	return fmt.Errorf("the data file has format %d; this scimserver reads formats up to %d: upgrade scimserver", version, formatVersion)
}

func loadLayout(tx *bbolt.Tx) (*layout, error) {
	l := &layout{}
	if err := json.Unmarshal(tx.Bucket(bktMeta).Get(keyLayout), &l); err != nil {
		return nil, fmt.Errorf("the data file's layout record is unreadable: %w", err)
	}
	if l.Collections == nil {
		l.Collections = map[string]*collLayout{}
	}
	return l, nil
}

// migrate brings a file opened for writing to the current format and to the declared
// collections: it runs the migrations an older file needs, then builds what the declarations
// add (collections, indexes) and drops indexes no longer declared.
func migrate(tx *bbolt.Tx, decls []*storage.Collection) (*layout, error) {
	version, exists := readFormat(tx)
	if version > formatVersion {
		return nil, tooNew(version)
	}
	for _, b := range [][]byte{bktMeta, bktTenants, bktTokens, bktTokenIDs, bktData} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Bucket(bktMeta).CreateBucketIfNotExists(bktScrubPending); err != nil {
		return nil, err
	}
	var l *layout
	switch {
	case !exists:
		l = &layout{Collections: map[string]*collLayout{}}
	case version == 1:
		l = legacyLayout()
		if err := migrate1to2(tx); err != nil {
			return nil, fmt.Errorf("migrate format 1 to 2: %w", err)
		}
	default:
		var err error
		if l, err = loadLayout(tx); err != nil {
			return nil, err
		}
	}
	if err := l.reconcile(tx, decls); err != nil {
		return nil, err
	}
	if exists && version < 6 {
		if err := tx.Bucket(bktMeta).Put(keyMembersByID, []byte{1}); err != nil {
			return nil, err
		}
	}
	l.membersByID = tx.Bucket(bktMeta).Get(keyMembersByID) != nil
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], formatVersion)
	if err := tx.Bucket(bktMeta).Put(keyFormat, v[:]); err != nil {
		return nil, err
	}
	return l, l.save(tx)
}

func (l *layout) save(tx *bbolt.Tx) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return tx.Bucket(bktMeta).Put(keyLayout, raw)
}

// reconcile makes the file hold what decls declare, in every tenant: a missing collection gets
// its buckets, a missing index is built from the records, an index whose uniqueness or folding
// changed is rebuilt, and an index no longer declared is dropped.
func (l *layout) reconcile(tx *bbolt.Tx, decls []*storage.Collection) error {
	declared := map[string]bool{}
	for _, d := range decls {
		declared[d.Name] = true
		cl := l.Collections[d.Name]
		if cl == nil {
			cl = &collLayout{Next: 1, Indexes: map[string]*indexLayout{}}
			l.Collections[d.Name] = cl
		}
		want := map[string]bool{}
		for _, ix := range d.Indexes {
			want[ix.Name] = true
			il := cl.Indexes[ix.Name]
			if il != nil && il.Unique == ix.Unique && il.Fold == ix.Fold {
				continue
			}
			if il != nil {
				if err := eachTenant(tx, func(tb *bbolt.Bucket) error { return dropBucket(tb, []byte(il.Bucket)) }); err != nil {
					return err
				}
			}
			il = &indexLayout{ID: cl.Next, Bucket: "ix." + d.Name + "." + ix.Name, Unique: ix.Unique, Fold: ix.Fold}
			cl.Next++
			cl.Indexes[ix.Name] = il
		}
		for name, il := range cl.Indexes {
			if !want[name] {
				if err := eachTenant(tx, func(tb *bbolt.Bucket) error { return dropBucket(tb, []byte(il.Bucket)) }); err != nil {
					return err
				}
				delete(cl.Indexes, name)
			}
		}
	}
	if err := l.bind(decls, true); err != nil {
		return err
	}
	return eachTenant(tx, func(tb *bbolt.Bucket) error { return l.prepareTenant(tb) })
}

// bind resolves the declarations against the layout. In a read-only file an index the layout
// lacks is left unbuilt: lookups through it fail with a clear error; so is a collection, which
// a read then finds undeclared.
func (l *layout) bind(decls []*storage.Collection, writable bool) error {
	l.colls = map[string]*coll{}
	for _, d := range decls {
		if l.colls[d.Name] != nil {
			return fmt.Errorf("collection %s is declared twice", d.Name)
		}
		cl := l.Collections[d.Name]
		if cl == nil && !writable {
			// Declared since the file was last written: it holds none yet, and gets its
			// buckets at the next open for writing.
			continue
		}
		c := &coll{decl: d, records: []byte(d.Name), deletes: deletesCounter(d.Name)}
		c.order = order{name: d.Name, records: c.records, blocks: []byte("order." + d.Name), count: d.Name, deletes: c.deletes}
		for _, ix := range d.Indexes {
			var il *indexLayout
			if cl != nil {
				il = cl.Indexes[ix.Name]
			}
			if il == nil || il.Unique != ix.Unique || il.Fold != ix.Fold {
				if writable {
					return fmt.Errorf("index %s.%s has no layout", d.Name, ix.Name)
				}
				c.indexes = append(c.indexes, index{decl: ix})
				continue
			}
			c.indexes = append(c.indexes, index{decl: ix, id: il.ID, bucket: []byte(il.Bucket)})
		}
		l.colls[d.Name] = c
	}
	return nil
}

func eachTenant(tx *bbolt.Tx, fn func(tb *bbolt.Bucket) error) error {
	data := tx.Bucket(bktData)
	var ids [][]byte
	if err := data.ForEachBucket(func(k []byte) error { ids = append(ids, clone(k)); return nil }); err != nil {
		return err
	}
	for _, id := range ids {
		if err := fn(data.Bucket(id)); err != nil {
			return err
		}
	}
	return nil
}

func dropBucket(tb *bbolt.Bucket, name []byte) error {
	if tb.Bucket(name) == nil {
		return nil
	}
	return tb.DeleteBucket(name)
}

// prepareTenant creates what a tenant's data lacks: the fixed buckets, each collection's
// records, each index (built from the records when new), and the paging blocks.
func (l *layout) prepareTenant(tb *bbolt.Bucket) error {
	for _, name := range fixedBuckets {
		if _, err := tb.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	for _, c := range l.colls {
		if _, err := tb.CreateBucketIfNotExists(c.records); err != nil {
			return err
		}
		for i := range c.indexes {
			if tb.Bucket(c.indexes[i].bucket) != nil {
				continue
			}
			b, err := tb.CreateBucket(c.indexes[i].bucket)
			if err != nil {
				return err
			}
			if err := backfill(tb, c, &c.indexes[i], b); err != nil {
				return err
			}
		}
		if err := c.order.build(tb); err != nil {
			return err
		}
	}
	return nil
}

// backfill indexes every record of c under ix, deriving the keys from its document and folding
// them as writes do. A unique
// index that two records would share fails the open, naming neither value.
func backfill(tb *bbolt.Bucket, c *coll, ix *index, b *bbolt.Bucket) error {
	return tb.Bucket(c.records).ForEach(func(k, v []byte) error {
		_, doc, err := decodeRecord(v)
		if err != nil {
			return err
		}
		keys, err := docKeys(ix.decl, doc)
		if err != nil {
			return err
		}
		for _, key := range normalise(ix, keys) {
			if err := putKey(b, ix, key, string(k)); err != nil {
				if storage.ErrorCode(err) == storage.Conflict {
					return fmt.Errorf("cannot build the unique index %s.%s: two records share a value", c.decl.Name, ix.decl.Name)
				}
				return err
			}
		}
		return nil
	})
}

// legacyLayout is where format 1 kept its indexes.
func legacyLayout() *layout {
	return &layout{Collections: map[string]*collLayout{
		"users": {Next: 4, Indexes: map[string]*indexLayout{
			"userName":   {ID: 1, Bucket: "ix.userName", Unique: true, Fold: true},
			"externalId": {ID: 2, Bucket: "ix.user.externalId"},
			"email":      {ID: 3, Bucket: "ix.email", Fold: true},
		}},
		"groups": {Next: 3, Indexes: map[string]*indexLayout{
			"displayName": {ID: 1, Bucket: "ix.displayName", Unique: true, Fold: true},
			"externalId":  {ID: 2, Bucket: "ix.group.externalId"},
		}},
	}}
}

// deletesCounter names the counter of a collection's deleted records.
func deletesCounter(collection string) string { return collection + ".deletes" }

// legacyDeletes names format 1's counters of deleted records, by collection.
var legacyDeletes = map[string]string{"users": "userDeletes", "groups": "groupDeletes"}

// migrate1to2 renames format 1's counters of deleted records. Its records keep their format-1
// headers until they are next written: their index keys are derived from their documents.
func migrate1to2(tx *bbolt.Tx) error {
	return eachTenant(tx, func(tb *bbolt.Bucket) error {
		counts := tb.Bucket(bktCounts)
		if counts == nil {
			return nil
		}
		for name, old := range legacyDeletes {
			now := deletesCounter(name)
			if v := counts.Get([]byte(old)); v != nil {
				if err := counts.Put([]byte(now), clone(v)); err != nil {
					return err
				}
				if err := counts.Delete([]byte(old)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// membersBatch is how many memberships one transaction of migrateMembers rekeys: a file with
// millions of them is migrated in commits of bounded size, not in one.
var membersBatch = 20_000

// migrateMembers keys by the order they joined (members.go) the members of a file that migrate
// marked, a batch of memberships to a transaction, and drops the mark with the last. The file
// already says format 6, which an older version refuses; an open that stops part way resumes
// where it stopped, since a rekeyed membership reads as one.
func migrateMembers(db *bbolt.DB, settle func(committed bool)) error {
	for {
		var done bool
		err := db.Update(func(tx *bbolt.Tx) error {
			var err error
			if done, err = rekeyMembers(tx, membersBatch); err != nil || !done {
				return err
			}
			return tx.Bucket(bktMeta).Delete(keyMembersByID)
		})
		settle(err == nil)
		if err != nil {
			return fmt.Errorf("key the members by the order they joined: %w", err)
		}
		if done {
			return nil
		}
	}
}

// rekeyMembers rekeys up to batch memberships of format 5, group after group; done when none
// was left.
func rekeyMembers(tx *bbolt.Tx, batch int) (done bool, err error) {
	left := batch
	err = eachTenant(tx, func(tb *bbolt.Bucket) error {
		members := tb.Bucket(bktMembers)
		if members == nil {
			return nil
		}
		memberOf, err := tb.CreateBucketIfNotExists(bktMemberOf)
		if err != nil {
			return err
		}
		c := members.Cursor()
		for k, _ := c.First(); k != nil && left > 0; {
			gid, _, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("a malformed member key %q", k)
			}
			gid = clone(gid)
			n, err := rekeyGroup(members, memberOf, string(gid), left)
			if err != nil {
				return err
			}
			left -= n
			k, _ = c.Seek(append(gid, 1)) // past the group's keys: the separator is 0
		}
		return nil
	})
	return left > 0, err
}

// rekeyGroup rekeys up to most of the group's memberships of format 5, in member id order. They
// follow those already rekeyed: a sequence number's first byte is 0, a member id's never.
func rekeyGroup(members, memberOf *bbolt.Bucket, gid string, most int) (int, error) {
	prefix := prefixOf(gid)
	type old struct {
		id  string
		raw []byte
	}
	var list []old
	c := members.Cursor()
	for k, v := c.Seek(append(clone(prefix), 1)); k != nil && bytes.HasPrefix(k, prefix) && len(list) < most; k, v = c.Next() {
		list = append(list, old{string(k[len(prefix):]), clone(v)})
	}
	for _, o := range list {
		sm, err := decodeMember(o.raw)
		if err != nil {
			return 0, fmt.Errorf("member %s of group %s: %w", o.id, gid, err)
		}
		n, err := members.NextSequence()
		if err != nil {
			return 0, err
		}
		seq := seqKey(n)
		sm.Value = o.id
		if err := errors.Join(members.Delete(append(clone(prefix), o.id...)),
			members.Put(memberKey(gid, seq), sm.appendJSON(nil)), memberOf.Put(pair(o.id, gid), seq)); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
