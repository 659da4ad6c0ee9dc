package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// createUsers creates n users in one write, with ids from id, and returns their ids.
func createUsers(t testing.TB, s *Store, n int, id func() string) []string {
	t.Helper()
	var ids []string
	err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		ids = ids[:0]
		for range n {
			r, err := tx.Insert(users, named(id(), storage.NewID()))
			if err != nil {
				return err
			}
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// firstAt returns the id a scan from 0-based position pos reaches ("" past the end).
func firstAt(t *testing.T, s *Store, pos int) string {
	t.Helper()
	got := ""
	err := s.Read(bg, defaultTenant, func(tx storage.Tx) error {
		return tx.Scan(users, storage.Position{Offset: pos}, func(r storage.Record) (bool, error) { got = r.ID; return false, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkPositions compares the scan at every step-th position with the sorted ids, and Check.
func checkPositions(t *testing.T, s *Store, ids []string, step int) {
	t.Helper()
	slices.Sort(ids)
	for pos := 0; pos < len(ids); pos += step {
		if got := firstAt(t, s, pos); got != ids[pos] {
			t.Fatalf("position %d of %d: got %s, want %s", pos, len(ids), got, ids[pos])
		}
	}
	if got := firstAt(t, s, len(ids)); got != "" {
		t.Fatalf("past the end: got %s", got)
	}
	expectClean(t, s, "of the positions")
}

// TestOrderFindsEveryPosition creates users in id order and out of it (ids below every other,
// ids inside full blocks), deletes at random, and checks after each round that every position
// is found and that Check agrees with the blocks.
func TestOrderFindsEveryPosition(t *testing.T) {
	s := openTemp(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	create := func(n int, id func() string) { ids = append(ids, createUsers(t, s, n, id)...) }
	randomID := func() string { return fmt.Sprintf("%016x", rng.Uint64()) } // sorts anywhere
	create(3*blockSize+10, storage.NewID)
	checkPositions(t, s, ids, 7)
	create(blockSize, randomID) // fills and splits blocks in the middle and below the first
	checkPositions(t, s, ids, 3)
	low := 0
	create(10, func() string { low++; return fmt.Sprintf("00%d", low) }) // ids below all others
	checkPositions(t, s, ids, 5)
	for round := range 3 {
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		gone := ids[:len(ids)/2]
		err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
			for _, id := range gone {
				if err := tx.Delete(users, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[len(ids)/2:]
		checkPositions(t, s, ids, 1+round)
		create(blockSize/2, storage.NewID)
		checkPositions(t, s, ids, 3)
	}
	if blocks, most := blockCounts(t, s), 2*len(ids)/blockSize+2; len(blocks) > most {
		t.Fatalf("%d users in %d blocks: deletions left blocks too small (at most %d expected)", len(ids), len(blocks), most)
	}
}

// usersBlocks is the bucket of the users order's blocks in the default tenant.
func usersBlocks(tx *bbolt.Tx, s *Store) *bbolt.Bucket {
	return tx.Bucket(bktData).Bucket([]byte(defaultTenant)).Bucket(s.layout.colls["users"].order.blocks)
}

// blockCounts returns the counts of the users order's blocks, in order.
func blockCounts(t *testing.T, s *Store) []int {
	t.Helper()
	var counts []int
	err := s.view(func(tx *bbolt.Tx) error {
		return usersBlocks(tx, s).ForEach(func(_, v []byte) error {
			counts = append(counts, blockCount(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestOrderDescendingIDs: ids that each sort below all others (a clock set back) make new
// blocks once the first is full, so no block outgrows blockSize.
func TestOrderDescendingIDs(t *testing.T) {
	s := openTemp(t)
	next := 3 * blockSize
	ids := createUsers(t, s, 3*blockSize, func() string { next--; return fmt.Sprintf("%08d", next) })
	checkPositions(t, s, ids, 5)
	for _, n := range blockCounts(t, s) {
		if n > blockSize {
			t.Fatalf("blocks %v: one holds more than %d ids", blockCounts(t, s), blockSize)
		}
	}
}

// TestOrderBuiltForOlderFiles: a file without blocks (written before they existed) gets them
// when opened for writing, and a file whose blocks disagree with the records fails Check.
func TestOrderBuiltForOlderFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	ids := createUsers(t, s, 2*blockSize+3, storage.NewID)
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(defaultTenant)).DeleteBucket(s.layout.colls["users"].order.blocks)
	})
	if err != nil {
		t.Fatal(err)
	}
	expectClean(t, s, "of a file without blocks (it is not damaged)")
	s.Close()
	s = openTestStore(t, path, domain)
	checkPositions(t, s, ids, 11)

	// A version without blocks (a rollback) creates and deletes users: the counters move, the
	// blocks do not, and the next open builds them again.
	err = s.update(func(btx *bbolt.Tx) error {
		tx, err := s.tenantTx(btx, defaultTenant, s.now())
		if err != nil {
			return err
		}
		cl := s.layout.colls["users"]
		u := named(storage.NewID(), "rolled-back")
		u.Created, u.Modified, u.Version = tx.now, tx.now, 1
		if err := tx.reindex(cl, u.ID, nil, nil, u.Keys); err != nil {
			return err
		}
		if err := tx.put(cl, u, nil); err != nil {
			return err
		}
		if err := tx.addCount("users", 1); err != nil {
			return err
		}
		ids = append(ids, u.ID)
		raw := tx.b.Bucket(cl.records).Get([]byte(ids[3]))
		h, doc, err := decodeRecord(raw)
		if err != nil {
			return err
		}
		if err := tx.reindex(cl, ids[3], &h, doc, make([][]string, len(cl.indexes))); err != nil {
			return err
		}
		if err := tx.b.Bucket(cl.records).Delete([]byte(ids[3])); err != nil {
			return err
		}
		ids = slices.Delete(ids, 3, 4)
		if err := tx.addCount("users", -1); err != nil {
			return err
		}
		return tx.addCount(cl.deletes, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, _ := s.Check(); len(problems) == 0 {
		t.Fatal("blocks left behind by a rollback: Check finds nothing")
	}
	s.Close()
	s = openTestStore(t, path, domain)
	checkPositions(t, s, ids, 13)

	err = s.update(func(tx *bbolt.Tx) error { return putBlock(usersBlocks(tx, s), []byte(ids[0]), 5) })
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(); err != nil || len(problems) != 1 {
		t.Fatalf("a wrong block count: want 1 problem, got %v %v", problems, err)
	}
}

// TestOrderReadOnlyWithoutBlocks: a file without blocks opened read-only (a backup of a file
// from before blocks existed), where they cannot be built, still serves every position.
func TestOrderReadOnlyWithoutBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	ids := createUsers(t, s, blockSize+50, storage.NewID)
	err := s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(defaultTenant)).DeleteBucket(s.layout.colls["users"].order.blocks)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	checkPositions(t, ro, ids, 37)
}
