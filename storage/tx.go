package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tx is one transaction over one tenant's records. Reads see one consistent snapshot; in a write
// transaction every method keeps the records, the indexes, the counts and the audit trail in
// step, and nothing is kept unless the whole function succeeds.
type Tx struct {
	tx     *bolt.Tx
	b      *bolt.Bucket
	now    time.Time
	tenant string
}

// Read runs fn in a read-only transaction over tenant.
func (s *Store) Read(tenant string, fn func(*Tx) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b, err := tenantBucket(tx, tenant)
		if err != nil {
			return err
		}
		return fn(&Tx{tx: tx, b: b, now: s.now(), tenant: tenant})
	})
}

// Write runs fn in a write transaction over tenant; its changes are durable when Write returns
// nil. fn may run more than once (group commit reruns a batch when another member fails), so it
// must derive its effects from the transaction alone.
func (s *Store) Write(tenant string, fn func(*Tx) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := tenantBucket(tx, tenant)
		if err != nil {
			return err
		}
		return fn(&Tx{tx: tx, b: b, now: s.now(), tenant: tenant})
	})
}

// Now is the transaction's clock reading, the same for every record it writes.
func (t *Tx) Now() time.Time { return t.now }

// Tenant is the tenant the transaction is over.
func (t *Tx) Tenant() string { return t.tenant }

// NewID returns a fresh resource id: a UUIDv7 whose 12 bits after the millisecond timestamp
// count up within a millisecond, so that ids sort in creation order and paging by id is paging
// by age.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	idClock.Lock()
	ms := uint64(time.Now().UnixMilli())
	if ms <= idClock.ms {
		ms = idClock.ms
		idClock.seq++
		if idClock.seq > 0xfff {
			ms++ // borrow the next millisecond rather than lose the order
			idClock.seq = 0
		}
	} else {
		idClock.seq = 0
	}
	idClock.ms = ms
	seq := idClock.seq
	idClock.Unlock()
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = 0x70 | byte(seq>>8)
	b[7] = byte(seq)
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var idClock struct {
	sync.Mutex
	ms  uint64
	seq uint16
}

// Fold is the form in which case-insensitive values are indexed.
func Fold(s string) string { return strings.ToLower(s) }

// MaxKeyLen bounds an indexed value; the HTTP edge rejects longer ones before they get here.
const MaxKeyLen = 2048

func checkKey(what, v string) error {
	if len(v) > MaxKeyLen {
		return Errorf(Invalid, "%s is longer than %d bytes", what, MaxKeyLen)
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
func scanPrefix(b *bolt.Bucket, prefix []byte, fn func(rest []byte) error) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := fn(k[len(prefix):]); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tx) count(name string) uint64 {
	v := t.b.Bucket(bktCounts).Get([]byte(name))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (t *Tx) addCount(name string, delta int) error {
	n := int64(t.count(name)) + int64(delta)
	if n < 0 {
		n = 0
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	return t.b.Bucket(bktCounts).Put([]byte(name), v[:])
}

// multi-valued index helpers: value 0 id -> empty.
func indexAdd(b *bolt.Bucket, value, id string) error { return b.Put(pair(value, id), nil) }
func indexDel(b *bolt.Bucket, value, id string) error { return b.Delete(pair(value, id)) }

func indexLookup(b *bolt.Bucket, value string) ([]string, error) {
	var ids []string
	err := scanPrefix(b, prefixOf(value), func(rest []byte) error {
		ids = append(ids, string(rest))
		return nil
	})
	return ids, err
}

// seek positions c on the first key after the key after ("" for the first key), then steps
// over skip keys without decoding them.
func seek(c *bolt.Cursor, after string, skip int) ([]byte, []byte) {
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
func (t *Tx) appended(name []byte) *bolt.Bucket {
	b := t.b.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// before returns the key just before key in b ("" when key is the first), so that a scan
// "after" it starts at key.
func before(b *bolt.Bucket, key string) string {
	c := b.Cursor()
	k, _ := c.Seek([]byte(key))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return string(k)
}

// scanNames calls fn with the ids of a unique-name index (case-folded name -> id) in name order,
// or in reverse, after stepping over skip entries, until fn returns false.
func scanNames(b *bolt.Bucket, descending bool, skip int, fn func(id string) bool) {
	c := b.Cursor()
	first, next := c.First, c.Next
	if descending {
		first, next = c.Last, c.Prev
	}
	k, v := first()
	for ; skip > 0 && k != nil; skip-- {
		k, v = next()
	}
	for ; k != nil; k, v = next() {
		if !fn(string(v)) {
			return
		}
	}
}
