package storage

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// createUsers creates n users in one write, with ids from id, and returns their ids.
func createUsers(t *testing.T, s *Store, n int, id func() string) []string {
	t.Helper()
	var ids []string
	err := s.Write(DefaultTenant, func(tx *Tx) error {
		for range n {
			u, err := tx.CreateUser(User{ID: id(), Doc: []byte(`{}`), Keys: UserKeys{UserName: NewID()}})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// firstAt returns the id ScanUsers reaches for 0-based position pos ("" past the end).
func firstAt(t *testing.T, s *Store, pos int) string {
	t.Helper()
	got := ""
	err := s.Read(DefaultTenant, func(tx *Tx) error {
		after, skip := tx.UserPosition(pos)
		return tx.ScanUsers(after, skip, func(u User) (bool, error) { got = u.ID; return false, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkPositions compares UserPosition at every position with the sorted ids, and Check.
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
	if problems, err := s.Check(); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
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
	create(3*blockSize+10, NewID)
	checkPositions(t, s, ids, 7)
	create(blockSize, randomID) // fills and splits blocks in the middle and below the first
	checkPositions(t, s, ids, 3)
	low := 0
	create(10, func() string { low++; return fmt.Sprintf("00%d", low) }) // ids below all others
	checkPositions(t, s, ids, 5)
	for round := range 3 {
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		gone := ids[:len(ids)/2]
		err := s.Write(DefaultTenant, func(tx *Tx) error {
			for _, id := range gone {
				if err := tx.DeleteUser(id); err != nil {
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
		create(blockSize/2, NewID)
		checkPositions(t, s, ids, 3)
	}
	if blocks, most := blockCounts(t, s), 2*len(ids)/blockSize+2; len(blocks) > most {
		t.Fatalf("%d users in %d blocks: deletions left blocks too small (at most %d expected)", len(ids), len(blocks), most)
	}
}

// blockCounts returns the counts of the users order's blocks, in order.
func blockCounts(t *testing.T, s *Store) []int {
	t.Helper()
	var counts []int
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(DefaultTenant)).Bucket(userOrder.blocks).ForEach(func(_, v []byte) error {
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
	ids := createUsers(t, s, 2*blockSize+3, NewID)
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktData).Bucket([]byte(DefaultTenant)).DeleteBucket(userOrder.blocks)
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(); err != nil || len(problems) != 0 {
		t.Fatalf("a file without blocks is not damaged: %v %v", problems, err)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPositions(t, s, ids, 11)

	// A version without blocks (a rollback) creates and deletes users: the counters move, the
	// blocks do not, and the next open builds them again.
	err = s.Write(DefaultTenant, func(tx *Tx) error {
		u := User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: "rolled-back"}, Created: tx.Now(), Modified: tx.Now(), Version: 1}
		if err := tx.indexUser(u.ID, UserKeys{}, u.Keys); err != nil {
			return err
		}
		if err := tx.putUser(u); err != nil {
			return err
		}
		if err := tx.addCount("users", 1); err != nil {
			return err
		}
		ids = append(ids, u.ID)
		gone, err := tx.User(ids[3])
		if err != nil {
			return err
		}
		if err := tx.indexUser(gone.ID, gone.Keys, UserKeys{}); err != nil {
			return err
		}
		if err := tx.b.Bucket(bktUsers).Delete([]byte(gone.ID)); err != nil {
			return err
		}
		ids = slices.Delete(ids, 3, 4)
		if err := tx.addCount("users", -1); err != nil {
			return err
		}
		return tx.addCount("userDeletes", 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, _ := s.Check(); len(problems) == 0 {
		t.Fatal("blocks left behind by a rollback: Check finds nothing")
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkPositions(t, s, ids, 13)

	err = s.update(func(tx *bolt.Tx) error {
		return putBlock(tx.Bucket(bktData).Bucket([]byte(DefaultTenant)).Bucket(userOrder.blocks), []byte(ids[0]), 5)
	})
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(); err != nil || len(problems) != 1 {
		t.Fatalf("a wrong block count: want 1 problem, got %v %v", problems, err)
	}
}
