package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// An order keeps, beside a bucket of records in id order, a bucket of blocks: runs of
// consecutive ids, each keyed by a lower bound of its ids and holding how many there are. The
// record at any position is then found by adding up block counts (a thousandth of the records)
// and stepping over at most one block's ids, so a deep page costs about what the first one
// does, from the first request after a start. The blocks change in the transaction that adds or
// removes a record, so they are as durable as the records themselves.
type order struct {
	name    string
	records []byte
	blocks  []byte
	// count and deletes name the store's counters of the records and of their deletions: the
	// blocks keep a stamp of them, and blocks whose stamp is off are built again at open.
	count, deletes string
}

// blockSize bounds the ids stepped over to reach a position. Ids grow with time, so a full last
// block is followed by a new one rather than split: blocks stay full and few.
const blockSize = 1024

func blockCount(v []byte) int {
	if len(v) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}

func putBlock(b *bbolt.Bucket, key []byte, n int) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(n))
	return b.Put(clone(key), v[:])
}

// floor positions c on the greatest key at or below key.
func floor(c *bbolt.Cursor, key []byte) ([]byte, []byte) {
	k, v := c.Seek(key)
	switch {
	case k == nil:
		return c.Last()
	case bytes.Equal(k, key):
		return k, v
	}
	return c.Prev()
}

// stampKey is where the counts bucket keeps the stamp of the order's blocks.
func (o order) stampKey() []byte { return []byte("order." + o.name) }

// stampOf is the store's record and deletion counters as they are now. Every create or delete
// changes it, whichever version of the server made it.
func (o order) stampOf(tb *bbolt.Bucket) []byte {
	counts := tb.Bucket(bktCounts)
	return append(clone(counts.Get([]byte(o.count))), append([]byte{0}, counts.Get([]byte(o.deletes))...)...)
}

// stamp records that the blocks agree with the counters: a version of the server without
// blocks (after a rollback) changes the records and the counters but not the blocks, and the
// stamp then tells the next open to build them again. Call it after the counters are updated.
func (o order) stamp(tb *bbolt.Bucket) error {
	return tb.Bucket(bktCounts).Put(o.stampKey(), o.stampOf(tb))
}

// add counts id, just stored in the records bucket and counted, in its block.
// A failed change fails the transaction, which undoes the stamp too.
func (o order) add(tb *bbolt.Bucket, id []byte) error {
	return errors.Join(o.addToBlock(tb, id), o.stamp(tb))
}

func (o order) addToBlock(tb *bbolt.Bucket, id []byte) error {
	blocks := tb.Bucket(o.blocks)
	blocks.FillPercent = appendFill
	k, v := floor(blocks.Cursor(), id)
	if k == nil { // below every block (or none yet)
		first, fv := blocks.Cursor().First()
		n := blockCount(fv)
		if first == nil || n >= blockSize {
			return putBlock(blocks, id, 1) // a block of its own
		}
		if err := blocks.Delete(clone(first)); err != nil {
			return err
		}
		return putBlock(blocks, id, n+1) // the first block starts here now
	}
	n := blockCount(v)
	if n < blockSize {
		return putBlock(blocks, k, n+1)
	}
	if last, _ := tb.Bucket(o.records).Cursor().Last(); bytes.Equal(last, id) {
		return putBlock(blocks, id, 1)
	}
	// An id inside a full block (rare: ids grow with time): split the block in halves.
	k = clone(k)
	c := tb.Bucket(o.records).Cursor()
	mid, _ := c.Seek(k)
	for i := 0; i < (n+1)/2 && mid != nil; i++ {
		mid, _ = c.Next()
	}
	if mid == nil {
		return putBlock(blocks, k, n+1)
	}
	if err := putBlock(blocks, k, (n+1)/2); err != nil {
		return err
	}
	return putBlock(blocks, mid, n+1-(n+1)/2)
}

// remove uncounts id, removed from the records bucket and uncounted. An emptied block goes; a
// block that fits in half a block together with the next one absorbs it, so blocks stay few
// after deletions.
func (o order) remove(tb *bbolt.Bucket, id []byte) error {
	return errors.Join(o.removeFromBlock(tb, id), o.stamp(tb))
}

func (o order) removeFromBlock(tb *bbolt.Bucket, id []byte) error {
	blocks := tb.Bucket(o.blocks)
	k, v := floor(blocks.Cursor(), id)
	if k == nil {
		return fmt.Errorf("the %s order has no block for a stored id", o.name)
	}
	k, n := clone(k), blockCount(v)-1
	if n <= 0 {
		return blocks.Delete(k)
	}
	c := blocks.Cursor()
	c.Seek(k)
	if next, nv := c.Next(); next != nil && n+blockCount(nv) <= blockSize/2 {
		n += blockCount(nv)
		if err := blocks.Delete(clone(next)); err != nil {
			return err
		}
	}
	return putBlock(blocks, k, n)
}

// find returns where a scan of the records must start (after the id after, stepping over skip
// ids) to reach the record at 0-based position pos.
func (o order) find(tb *bbolt.Bucket, pos int) (after string, skip int) {
	records := tb.Bucket(o.records)
	blocks := tb.Bucket(o.blocks)
	if blocks == nil {
		return "", pos // a file without blocks, opened read-only: step over every id
	}
	sum := 0
	c := blocks.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n := blockCount(v)
		if pos < sum+n {
			return before(records, string(k)), pos - sum
		}
		sum += n
	}
	last, _ := records.Cursor().Last()
	return string(last), 0 // beyond the end: nothing follows the last id
}

// build creates the blocks of a bucket of records stored before orders existed, or changed
// since by a version of the server that kept none (their stamp is off).
func (o order) build(tb *bbolt.Bucket) error {
	if tb.Bucket(o.blocks) != nil {
		if bytes.Equal(tb.Bucket(bktCounts).Get(o.stampKey()), o.stampOf(tb)) {
			return nil
		}
		if err := tb.DeleteBucket(o.blocks); err != nil {
			return err
		}
	}
	blocks, err := tb.CreateBucket(o.blocks)
	if err != nil {
		return err
	}
	blocks.FillPercent = appendFill
	var start []byte
	n := 0
	c := tb.Bucket(o.records).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if n == blockSize {
			if err := putBlock(blocks, start, n); err != nil {
				return err
			}
			n = 0
		}
		if n == 0 {
			start = clone(k)
		}
		n++
	}
	if n > 0 {
		if err := putBlock(blocks, start, n); err != nil {
			return err
		}
	}
	return o.stamp(tb)
}

// check compares the blocks with the records: every id in a block, every count exact.
func (o order) check(tb *bbolt.Bucket) []string {
	blocks := tb.Bucket(o.blocks)
	if blocks == nil {
		return nil // a file from before orders: they are built when it is next opened for writing
	}
	var keys [][]byte
	var counts []int
	_ = blocks.ForEach(func(k, v []byte) error {
		keys, counts = append(keys, clone(k)), append(counts, blockCount(v))
		return nil
	})
	var problems []string
	i := 0
	_ = tb.Bucket(o.records).ForEach(func(id, _ []byte) error {
		for i+1 < len(keys) && bytes.Compare(id, keys[i+1]) >= 0 {
			i++
		}
		if len(keys) == 0 || bytes.Compare(id, keys[i]) < 0 {
			problems = append(problems, fmt.Sprintf("the %s order has no block for id %q", o.name, id))
			return nil
		}
		counts[i]--
		return nil
	})
	for i, n := range counts {
		if n != 0 {
			problems = append(problems, fmt.Sprintf("the %s order's block %q is off by %d", o.name, keys[i], n))
		}
	}
	return problems
}
