package bolt

import (
	"bytes"
	"encoding/binary"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// tx is a transaction over one tenant's buckets.
type tx struct {
	s      *Store
	tx     *bbolt.Tx
	b      *bbolt.Bucket
	now    time.Time
	tenant string
	// appendedEvent: the transaction appended to the trail, and wakes the watchers on commit.
	appendedEvent bool
	// written holds the records this transaction stored, by id: an event about one of them goes
	// into its header (see trail.go).
	written map[string]*coll
}

var _ storage.Tx = (*tx)(nil)

func (s *Store) tenantTx(btx *bbolt.Tx, tenant string, now time.Time) (*tx, error) {
	b := btx.Bucket(bktData).Bucket([]byte(tenant))
	if b == nil {
		return nil, storage.Errorf(storage.NotFound, "the tenant does not exist")
	}
	return &tx{s: s, tx: btx, b: b, now: now, tenant: tenant}, nil
}

func (t *tx) Tenant() string { return t.tenant }
func (t *tx) Now() time.Time { return t.now }
func (t *tx) writable() bool { return t.tx.Writable() }
func (t *tx) mustWrite() error {
	if !t.writable() {
		return storage.Errorf(storage.Invalid, "a read transaction cannot write")
	}
	return nil
}

// coll resolves a declared collection.
func (t *tx) coll(c *storage.Collection) (*coll, error) {
	cl := t.s.layout.colls[c.Name]
	if cl == nil {
		return nil, storage.Errorf(storage.Invalid, "collection %s is not declared", c.Name)
	}
	return cl, nil
}

func (t *tx) Get(c *storage.Collection, id string) (storage.Record, error) {
	cl, err := t.coll(c)
	if err != nil {
		return storage.Record{}, err
	}
	raw := t.b.Bucket(cl.records).Get([]byte(id))
	if raw == nil {
		return storage.Record{}, storage.Errorf(storage.NotFound, "no such record")
	}
	r, err := decode(id, raw)
	return t.fold(r), err
}

func (t *tx) Exists(c *storage.Collection, id string) bool {
	cl, err := t.coll(c)
	return err == nil && t.b.Bucket(cl.records).Get([]byte(id)) != nil
}

func (t *tx) Insert(c *storage.Collection, r storage.Record) (storage.Record, error) {
	cl, err := t.coll(c)
	if err != nil {
		return r, err
	}
	if err := t.mustWrite(); err != nil {
		return r, err
	}
	if err := storage.CheckID(r.ID); err != nil {
		return r, err
	}
	if t.b.Bucket(cl.records).Get([]byte(r.ID)) != nil {
		return r, storage.Errorf(storage.Conflict, "a record with that id already exists")
	}
	r.Created, r.Modified, r.Version = t.now, t.now, 1
	return r, t.add(cl, r)
}

// add stores a record whose id is free: its index entries (Conflict when a unique key is
// taken), the record, the collection's count and its place in the id order.
func (t *tx) add(cl *coll, r storage.Record) error {
	if err := t.reindex(cl, r.ID, nil, nil, r.Keys); err != nil {
		return err
	}
	if err := t.put(cl, r, nil); err != nil {
		return err
	}
	if err := t.addCount(cl.decl.Name, 1); err != nil {
		return err
	}
	return cl.order.add(t.b, []byte(r.ID))
}

func (t *tx) Update(c *storage.Collection, r storage.Record) (storage.Record, error) {
	cl, err := t.coll(c)
	if err != nil {
		return r, err
	}
	if err := t.mustWrite(); err != nil {
		return r, err
	}
	h, doc, err := t.stored(cl, r.ID)
	if err != nil {
		return r, err
	}
	if err := t.reindex(cl, r.ID, &h, doc, r.Keys); err != nil {
		return r, err
	}
	// The record absorbs its stamp: the stored version counts the touches from now on.
	st := t.stampOf(r.ID)
	r.Created, r.Modified, r.Version = h.created, t.now, h.version+st.n
	if h.modified != t.now && st.at != t.now {
		r.Version++
	}
	if err := t.put(cl, r, h.events()); err != nil {
		return r, err
	}
	return r, t.dropStamp(r.ID, st)
}

func (t *tx) Touch(c *storage.Collection, id string) error {
	cl, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := t.mustWrite(); err != nil {
		return err
	}
	st := t.stampOf(id)
	if !bytes.Equal(st.coll, cl.records) { // no stamp of this collection: only the record tells
		h, _, err := t.stored(cl, id)
		if err != nil {
			return err
		}
		if h.modified == t.now {
			return nil // written in this transaction
		}
	}
	if st.at == t.now {
		return nil // already touched in this transaction
	}
	return t.putStamp(cl, id, stamp{n: st.n + 1, at: t.now})
}

func (t *tx) Delete(c *storage.Collection, id string) error {
	cl, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := t.mustWrite(); err != nil {
		return err
	}
	h, doc, err := t.stored(cl, id)
	if err != nil {
		return err
	}
	if err := t.reindex(cl, id, &h, doc, make([][]string, len(cl.indexes))); err != nil {
		return err
	}
	// The record's trail outlives it: the events its header lists move to the index.
	if err := t.indexEvents(id, h.events()); err != nil {
		return err
	}
	delete(t.written, id)
	if err := t.b.Bucket(cl.records).Delete([]byte(id)); err != nil {
		return err
	}
	if err := t.dropStamp(id, t.stampOf(id)); err != nil {
		return err
	}
	if err := t.addCount(cl.deletes, 1); err != nil {
		return err
	}
	if err := t.addCount(cl.decl.Name, -1); err != nil {
		return err
	}
	return cl.order.remove(t.b, []byte(id))
}

// stored reads and decodes record id of cl: NotFound when there is none.
func (t *tx) stored(cl *coll, id string) (header, []byte, error) {
	raw := t.b.Bucket(cl.records).Get([]byte(id))
	if raw == nil {
		return header{}, nil, storage.Errorf(storage.NotFound, "no such record")
	}
	return decodeRecord(raw)
}

// put stores r with the events its header lists.
func (t *tx) put(cl *coll, r storage.Record, events []uint64) error {
	if t.written == nil {
		t.written = map[string]*coll{}
	}
	t.written[r.ID] = cl
	return t.appended(cl.records).Put([]byte(r.ID), encodeRecord(cl, r, events))
}

// reindex moves id's index entries from the stored record's keys (old; nil for a new record)
// to keys, failing with Conflict when a unique key belongs to another record. Every key is
// checked before any entry changes, so that a refused write leaves the indexes as they were even
// when the transaction goes on and commits.
func (t *tx) reindex(cl *coll, id string, old *header, oldDoc []byte, keys [][]string) error {
	n := len(cl.indexes)
	var buf [16][]string // collections declare few indexes: no allocation on the write path
	lists := buf[:]
	if 2*n > len(buf) {
		lists = make([][]string, 2*n)
	}
	had, want := lists[:n:n], lists[n:2*n]
	for i := range cl.indexes {
		ix := &cl.indexes[i]
		if i < len(keys) {
			want[i] = normalise(ix, keys[i])
		}
		for _, k := range want[i] {
			if len(k) > storage.MaxKeyLen {
				return storage.Errorf(storage.Invalid, "an indexed value (%s) is longer than %d bytes", ix.decl.Name, storage.MaxKeyLen)
			}
			if ix.decl.Unique {
				if owner := t.b.Bucket(ix.bucket).Get([]byte(k)); owner != nil && string(owner) != id {
					return storage.Errorf(storage.Conflict, "%s is already taken", ix.decl.Name)
				}
			}
		}
		if old != nil {
			ks, err := keysOf(*old, oldDoc, ix)
			if err != nil {
				return err
			}
			had[i] = normalise(ix, ks)
		}
	}
	for i := range cl.indexes {
		ix := &cl.indexes[i]
		b := t.b.Bucket(ix.bucket)
		for _, k := range had[i] {
			if !contains(want[i], k) {
				if err := delKey(b, ix, k, id); err != nil {
					return err
				}
			}
		}
		for _, k := range want[i] {
			if !contains(had[i], k) {
				if err := putChecked(b, ix, k, id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// normalise folds keys as the index says and drops empty and repeated ones.
func normalise(ix *index, keys []string) []string { return ix.decl.NormalKeys(keys) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// putKey adds an index entry, failing with Conflict when a unique key belongs to another record.
func putKey(b *bbolt.Bucket, ix *index, key, id string) error {
	if ix.decl.Unique {
		if owner := b.Get([]byte(key)); owner != nil && string(owner) != id {
			return storage.Errorf(storage.Conflict, "%s is already taken", ix.decl.Name)
		}
	}
	return putChecked(b, ix, key, id)
}

// putChecked adds an index entry whose key is known to be free for id. Unique indexes map
// key -> id; others key 0 id -> empty, so that a prefix scan finds a key's ids.
func putChecked(b *bbolt.Bucket, ix *index, key, id string) error {
	if ix.decl.Unique {
		return b.Put([]byte(key), []byte(id))
	}
	return b.Put(pair(key, id), nil)
}

func delKey(b *bbolt.Bucket, ix *index, key, id string) error {
	if ix.decl.Unique {
		if owner := b.Get([]byte(key)); string(owner) != id {
			return nil
		}
		return b.Delete([]byte(key))
	}
	return b.Delete(pair(key, id))
}

func (t *tx) Count(c *storage.Collection) int {
	cl, err := t.coll(c)
	if err != nil {
		return 0
	}
	return int(t.count(cl.decl.Name))
}

func (t *tx) Deletes(c *storage.Collection) uint64 {
	cl, err := t.coll(c)
	if err != nil {
		return 0
	}
	return t.count(cl.deletes)
}

func (t *tx) Lookup(c *storage.Collection, index, key string) ([]string, error) {
	cl, err := t.coll(c)
	if err != nil {
		return nil, err
	}
	ix, err := cl.index(index)
	if err != nil {
		return nil, err
	}
	if ix.bucket == nil {
		return nil, storage.Errorf(storage.Unavailable, "the index %s.%s is built when the data file is next opened for writing", c.Name, index)
	}
	if ix.decl.Fold {
		key = storage.Fold(key)
	}
	b := t.b.Bucket(ix.bucket)
	if ix.decl.Unique {
		if id := b.Get([]byte(key)); id != nil {
			return []string{string(id)}, nil
		}
		return nil, nil
	}
	var ids []string
	err = scanPrefix(b, prefixOf(key), func(rest []byte) error {
		// A key that holds a 0 byte shares the prefix of the key before that byte: what
		// follows is not an id.
		if bytes.IndexByte(rest, 0) < 0 {
			ids = append(ids, string(rest))
		}
		return nil
	})
	return ids, err
}

func (t *tx) Scan(c *storage.Collection, from storage.Position, fn func(storage.Record) (bool, error)) error {
	cl, err := t.coll(c)
	if err != nil {
		return err
	}
	after, skip := "", from.Offset
	if from.From != "" {
		after = before(t.b.Bucket(cl.records), from.From)
	} else if skip > 0 {
		after, skip = cl.order.find(t.b, skip)
	}
	cur := t.b.Bucket(cl.records).Cursor()
	k, v := seek(cur, after, skip)
	for ; k != nil; k, v = cur.Next() {
		r, err := decode(string(k), v)
		if err != nil {
			return err
		}
		more, err := fn(t.fold(r))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (t *tx) ScanIndex(c *storage.Collection, index string, descending bool, skip int, fn func(id string) (bool, error)) error {
	cl, err := t.coll(c)
	if err != nil {
		return err
	}
	ix, err := cl.index(index)
	if err != nil {
		return err
	}
	if !ix.decl.Unique || ix.bucket == nil {
		return storage.Errorf(storage.Invalid, "the index %s.%s cannot be scanned in key order", c.Name, index)
	}
	cur := t.b.Bucket(ix.bucket).Cursor()
	first, next := cur.First, cur.Next
	if descending {
		first, next = cur.Last, cur.Prev
	}
	k, v := first()
	for ; skip > 0 && k != nil; skip-- {
		k, v = next()
	}
	for ; k != nil; k, v = next() {
		more, err := fn(string(v))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Composite keys: a 0 byte separates the parts, so a prefix scan on "a\x00" finds a's entries.
func pair(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

func prefixOf(a string) []byte { return append([]byte(a), 0) }

// scanPrefix calls fn with the part after the prefix of every key that starts with prefix.
func scanPrefix(b *bbolt.Bucket, prefix []byte, fn func(rest []byte) error) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := fn(k[len(prefix):]); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) count(name string) uint64 {
	v := t.b.Bucket(bktCounts).Get([]byte(name))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (t *tx) addCount(name string, delta int) error {
	n := int64(t.count(name)) + int64(delta)
	if n < 0 {
		n = 0
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	return t.b.Bucket(bktCounts).Put([]byte(name), v[:])
}

// seek positions c on the first key after the key after ("" for the first key), then steps
// over skip keys without decoding them.
func seek(c *bbolt.Cursor, after string, skip int) ([]byte, []byte) {
	k, v := c.First()
	if after != "" {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	}
	for ; skip > 0 && k != nil; skip-- {
		k, v = c.Next()
	}
	return k, v
}

// appendFill is the fill of buckets whose keys grow with time (ids are UUIDv7, trail sequence
// numbers count up): new keys land on the last page, so packing pages full instead of bbolt's
// half-full default nearly halves the file.
const appendFill = 0.95

// appended returns a bucket whose keys grow with time, set to pack its pages.
func (t *tx) appended(name []byte) *bbolt.Bucket {
	b := t.b.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// before returns the key just before key in b ("" when key is the first), so that a scan
// "after" it starts at key.
func before(b *bbolt.Bucket, key string) string {
	c := b.Cursor()
	k, _ := c.Seek([]byte(key))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return string(k)
}
