package bolt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// crash stops s as a kill would: the commit log is neither checkpointed nor reset, and the
// data file is closed without a sync.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.scrub.closeOnce.Do(func() { close(s.scrub.stop) })
	<-s.scrub.done
	s.queue.close()
	l := s.log
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.jobs)
	<-l.done
	closeAll(l.files[:])
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// loseWrites puts back the bytes the data file held at an earlier moment (then) in the same
// file, as if none of the page writes since had reached the disk. With metas, the two meta
// pages of the latest commit stay: the worst a crash could leave, a meta page on disk whose
// pages are not.
func loseWrites(t *testing.T, path string, then []byte, metas bool, pageSize int) {
	t.Helper()
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lost := append([]byte(nil), then...)
	if metas {
		copy(lost, now[:2*pageSize])
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(len(now))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(lost, 0); err != nil {
		t.Fatal(err)
	}
}

// openRemembering opens a new data file and returns, besides, the bytes it holds at once: what
// the disk holds if none of the later page writes reaches it.
func openRemembering(t *testing.T) (string, *Store, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	then, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, s, then
}

// powerCut stops s as a crash would and puts back what its data file held then (loseWrites).
func powerCut(t *testing.T, s *Store, then []byte, metas bool) {
	t.Helper()
	pageSize := s.db.Info().PageSize
	crash(t, s)
	loseWrites(t, s.Path(), then, metas, pageSize)
}

// expectRecovered opens the data file at path and expects want users in it, and a consistent
// file.
func expectRecovered(t *testing.T, path string, want int, when string) *Store {
	t.Helper()
	s := openAt(t, path)
	if n := countUsers(t, s); n != want {
		t.Errorf("%s: %d users, want %d", when, n, want)
	}
	expectClean(t, s, when)
	return s
}

// consistentWithoutLog opens a copy of the data file (a copy is another file, so its log is not
// replayed over it) and reports whether bbolt finds it consistent.
func consistentWithoutLog(t *testing.T, path string) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(cp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(cp, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		return false
	}
	defer db.Close()
	ok := true
	_ = db.View(func(tx *bbolt.Tx) error {
		for range tx.Check() {
			ok = false
		}
		return nil
	})
	return ok
}

// TestCommitLogRecoversLostPages: acknowledged commits whose pages never reached the data file
// (only their meta pages did) are all there after the next open, and the file is consistent;
// without the log the same file is not.
func TestCommitLogRecoversLostPages(t *testing.T) {
	path, s, then := openRemembering(t)
	for range 5 {
		createUsers(t, s, 60, storage.NewID)
	}
	powerCut(t, s, then, true)
	if consistentWithoutLog(t, path) {
		t.Fatal("the file is consistent without its log: the test shows nothing")
	}
	s = expectRecovered(t, path, 300, "after recovery")
	createUsers(t, s, 10, storage.NewID)
	s.Close()
	s = openAt(t, path)
	if n := countUsers(t, s); n != 310 {
		t.Errorf("%d users after a write and a clean reopen, want 310", n)
	}
}

// TestCommitLogTornRecordIsNotReplayed: a record cut short (its sync never returned, so its
// commit was never acknowledged) is left out, and the commits before it are replayed.
func TestCommitLogTornRecordIsNotReplayed(t *testing.T) {
	path, s, then := openRemembering(t)
	createUsers(t, s, 50, storage.NewID)
	createUsers(t, s, 7, storage.NewID)
	l := s.log
	torn, end := l.files[l.active].Name(), l.pos[l.active].Load()
	powerCut(t, s, then, false)
	f, err := os.OpenFile(torn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xfe}, end-2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	expectRecovered(t, path, 50, "after recovery from a torn record (only whole records count)")
}

// TestCommitLogReplaysBothFilesInOrder: when the file the writer left is still waiting for its
// checkpoint at the crash, both files hold commits, and they are replayed oldest first.
func TestCommitLogReplaysBothFilesInOrder(t *testing.T) {
	path, renamed := bothFilesLive(t)
	expectRenamed(t, expectRecovered(t, path, 80, "after recovery"), renamed)
}

// TestRecoveryInterruptedBetweenRetirements: a crash after recovery retired one of the two
// files (it retires the older first) leaves a file whose next open replays the newer again,
// which changes nothing.
func TestRecoveryInterruptedBetweenRetirements(t *testing.T) {
	path, renamed := bothFilesLive(t)
	data, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identify(data.Stat())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := replayAll(path, id, data); err != nil || n < 2 {
		t.Fatalf("replayed %d records: %v", n, err)
	}
	if err := fdatasync(data); err != nil {
		t.Fatal(err)
	}
	if done, err := retireOldest(path, id); err != nil || done {
		t.Fatalf("retireOldest: %v, done %v", err, done)
	}
	data.Close()
	expectRenamed(t, expectRecovered(t, path, 80, "after an interrupted recovery"), renamed)
}

// bothFilesLive leaves, after a power cut, a data file as it was before 80 users were created
// (into the first log file) and one of them renamed (into the second), with both files live:
// the first one's checkpoint never finished. It returns the path and the renamed user.
func bothFilesLive(t *testing.T) (string, string) {
	t.Helper()
	path, s, then := openRemembering(t)
	l := s.log
	first := l.active
	ids := createUsers(t, s, 80, storage.NewID) // into the first file
	release := make(chan error)
	l.rotateAt = 1 // the next commit leaves the file
	l.sync = func() error { return <-release }
	if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error { // into the second
		_, err := tx.Update(users, named(ids[0], "renamed-in-the-second-file"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if l.active == first || l.pos[0].Load() == logHeaderSize || l.pos[1].Load() == logHeaderSize {
		t.Fatalf("the commits did not go to both files (active %d, ends %d and %d)", l.active, l.pos[0].Load(), l.pos[1].Load())
	}
	release <- errors.New("the power went out during the checkpoint")
	powerCut(t, s, then, true)
	return path, ids[0]
}

// expectRenamed expects the rename of bothFilesLive in s.
func expectRenamed(t *testing.T, s *Store, id string) {
	t.Helper()
	err := s.Read(bg, defaultTenant, func(tx storage.Tx) error {
		r, err := tx.Get(users, id)
		if err == nil && !bytes.Contains(r.Doc, []byte("renamed-in-the-second-file")) {
			t.Errorf("the update of the second file is lost: %s", r.Doc)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCommitLogOfAReplacedFileStopsTheOpen: a log left by a crash beside a file that was then
// replaced by hand is neither replayed over the newcomer nor dropped: the open fails, naming
// the files to delete if the replacement was meant; once they are gone the newcomer opens. A
// restore of a crashed server's file writes its log back and removes it.
func TestCommitLogOfAReplacedFileStopsTheOpen(t *testing.T) {
	path, s, then := openRemembering(t)
	createUsers(t, s, 40, storage.NewID)
	crash(t, s)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, then, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		if _, err := Open(path, Options{Collections: domain, ReadOnly: readOnly}); err == nil || !strings.Contains(err.Error(), "another data file") || !strings.Contains(err.Error(), logPaths(path)[1]) {
			t.Fatalf("open (read-only %v) beside another file's log: %v", readOnly, err)
		}
	}
	if err := removeLogs(path); err != nil {
		t.Fatal(err)
	}
	expectRecovered(t, path, 0, "in the replacement, its old log deleted")
}

// TestCommitLogOverAnotherCopyStopsTheOpen: a copy put over a crashed server's data file in
// place (the same inode, so the log still names it) — a backup from before the log's first
// commit, or a copy that went on past its last — is not the file the log continues: writing
// the log back would corrupt it. The open stops, leaves the file as it is and names the files
// to delete; once they are gone the copy opens with what it held.
func TestCommitLogOverAnotherCopyStopsTheOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		users int // in the copy
		copy  func(t *testing.T, path string, old []byte) []byte
	}{
		{"older", 20, func(t *testing.T, path string, old []byte) []byte { return old }},
		{"newer", 100, func(t *testing.T, path string, old []byte) []byte {
			// The crashed file, copied elsewhere (no log there) and written on.
			cp := filepath.Join(t.TempDir(), "copy.db")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cp, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openAt(t, cp)
			for range 3 {
				createUsers(t, s, 10, storage.NewID)
			}
			closeStore(t, s)
			raw, err = os.ReadFile(cp)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data.db")
			s := openAt(t, path)
			createUsers(t, s, 20, storage.NewID)
			closeStore(t, s)
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s = openAt(t, path)
			createUsers(t, s, 20, storage.NewID)
			closeStore(t, s)
			s = openAt(t, path)
			for range 3 {
				createUsers(t, s, 10, storage.NewID)
			}
			crash(t, s)
			content := tc.copy(t, path, old)
			overwrite(t, path, content)
			for _, readOnly := range []bool{false, true} {
				_, err := Open(path, Options{Collections: domain, ReadOnly: readOnly})
				if err == nil || !strings.Contains(err.Error(), "not the one the log was kept for") || !strings.Contains(err.Error(), logPaths(path)[1]) {
					t.Fatalf("open (read-only %v) of the copy beside the log: %v", readOnly, err)
				}
				if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, content) {
					t.Fatalf("the refused open changed the file (%v)", err)
				}
			}
			if err := removeLogs(path); err != nil {
				t.Fatal(err)
			}
			expectRecovered(t, path, tc.users, "in the copy, the log deleted")
		})
	}
}

// TestCommitLogOverACopyOfTheCheckpoint: of copies put in place of the crashed file, the one
// taken at the commit the checkpoint synced (the state the log continues) is written back over
// and loses nothing; one taken a commit earlier, which reads like a file whose newer meta page a
// crash tore but has both meta pages whole, is refused.
func TestCommitLogOverACopyOfTheCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	createUsers(t, s, 20, storage.NewID)
	closeStore(t, s)
	s = openAt(t, path)
	createUsers(t, s, 20, storage.NewID)
	before, err := os.ReadFile(path) // a commit before the checkpoint's
	if err != nil {
		t.Fatal(err)
	}
	createUsers(t, s, 10, storage.NewID)
	synced, err := os.ReadFile(path) // the close syncs this, and the next open's log continues it
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = openAt(t, path)
	for range 3 {
		createUsers(t, s, 10, storage.NewID)
	}
	crash(t, s)
	overwrite(t, path, before)
	if _, err := Open(path, Options{Collections: domain}); err == nil || !strings.Contains(err.Error(), "not the one the log was kept for") {
		t.Fatalf("open of a copy a commit before the checkpoint, beside the log: %v", err)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, before) {
		t.Fatalf("the refused open changed the file (%v)", err)
	}
	overwrite(t, path, synced)
	closeStore(t, expectRecovered(t, path, 80, "a copy of the checkpoint's commit, the log written back over it"))
}

// TestCommitLogCrashInsideAReset: a checkpoint syncs the data file, then gives the log file it
// retires a new header and, for an erasure's scrub, overwrites its records. A power cut inside
// that reset leaves the file with a torn header, a new header over its old records, or those
// records partly zeroed: none of them is replayed over the commits the other file holds, which
// are, losing nothing.
func TestCommitLogCrashInsideAReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(t *testing.T, f *os.File, size int64)
	}{
		{"torn header", func(t *testing.T, f *os.File, _ int64) {
			if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"new header over the old records", func(*testing.T, *os.File, int64) {}},
		{"old records partly zeroed", func(t *testing.T, f *os.File, size int64) {
			if err := writeZeros(f, logHeaderSize+8<<10, min(size, logHeaderSize+16<<10)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data.db")
			s := openAt(t, path)
			s.log.rotateAt = 64 << 10
			users := 0
			for s.LogFigures().Checkpoints < 2 {
				createUsers(t, s, 5, storage.NewID)
				users += 5
			}
			// The data file once a checkpoint has ended (and maybe some commits since), then one
			// commit more that the active file holds, not the one the checkpoint retired.
			l := s.log
			var then []byte
			var retired string
			for retired == "" {
				l.mu.Lock()
				for l.busy {
					l.cond.Wait()
				}
				active := l.active
				l.mu.Unlock()
				var err error
				if then, err = os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
				createUsers(t, s, 5, storage.NewID)
				users += 5
				l.mu.Lock()
				if l.active == active { // this commit did not start a rotation
					retired = l.files[1-active].Name()
				}
				l.mu.Unlock()
			}
			powerCut(t, s, then, true)
			f, err := os.OpenFile(retired, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			tc.cut(t, f, st.Size())
			f.Close()
			closeStore(t, expectRecovered(t, path, users, "after a power cut inside a reset"))
		})
	}
}

// TestCommitLogOverATornMeta: the log's first commit follows the one the checkpoint synced,
// but a crash can tear the file's newer meta page and leave the other one a commit older: the
// file then reads two commits before the log starts, and is recovered all the same.
func TestCommitLogOverATornMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	closeStore(t, openAt(t, path))
	then, err := os.ReadFile(path) // synced by the close: what the log continues
	if err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path)
	for range 3 {
		createUsers(t, s, 10, storage.NewID)
	}
	pageSize := s.db.Info().PageSize
	powerCut(t, s, then, false)
	newer, txid := 0, uint64(0)
	for i := range 2 {
		if t2, ok := bbolt.MetaTxid(then[i*pageSize : (i+1)*pageSize]); ok && t2 >= txid {
			newer, txid = i, t2
		}
	}
	torn := append([]byte(nil), then...)
	copy(torn[newer*pageSize+64:], "torn")
	overwrite(t, path, torn)
	expectRecovered(t, path, 30, "after a power cut that tore the newer meta page")
}

// overwrite puts content in the file at path in place: the same inode, as cp over it does.
func overwrite(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
}

func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreOverACrashedFile: restoring over the data file of a crashed server reads that
// file as its last commit left it (the hook sees its users) and leaves no log beside the
// restored file.
func TestRestoreOverACrashedFile(t *testing.T) {
	path, s, then := openRemembering(t)
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(snap, then, 0o600); err != nil {
		t.Fatal(err)
	}
	createUsers(t, s, 25, storage.NewID)
	powerCut(t, s, then, true)
	seen := -1
	_, err := Restore(snap, path, true, domain, RestoreHooks{Old: func(old string) error {
		ro, err := Open(old, Options{Collections: domain, ReadOnly: true})
		if err != nil {
			return err
		}
		defer ro.Close()
		seen = countUsers(t, ro)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 25 {
		t.Errorf("the restore's hook saw %d users in the crashed file, want its 25", seen)
	}
	for _, p := range logPaths(path) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left beside the restored file (%v)", p, err)
		}
	}
	expectRecovered(t, path, 0, "the restored snapshot")
}

// TestFailedCommitIsTakenBack: a commit whose record was synced but that bbolt did not
// complete (its data file write failed) is taken back, and does not come back at the next
// open.
func TestFailedCommitIsTakenBack(t *testing.T) {
	path, s, then := openRemembering(t)
	createUsers(t, s, 10, storage.NewID)
	l := s.log
	junk := bytes.Repeat([]byte{0xee}, s.db.Info().PageSize)
	// As bbolt's writer would: the commit's pages (junk over the meta pages), then its outcome.
	if err := l.append([]bbolt.CommitPage{{Offset: 0, Data: junk}, {Offset: int64(len(junk)), Data: junk}}); err != nil {
		t.Fatal(err)
	}
	l.settle(false)
	powerCut(t, s, then, true)
	expectRecovered(t, path, 10, "after a failed commit")
}

// TestReadOnlyOpenRecovers: a read-only open (check, backup, the inspect commands) of a file
// whose server crashed writes the logged commits back first, and finds them.
func TestReadOnlyOpenRecovers(t *testing.T) {
	path, s, then := openRemembering(t)
	createUsers(t, s, 30, storage.NewID)
	powerCut(t, s, then, true)
	ro, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n := countUsers(t, ro); n != 30 {
		t.Errorf("%d users read-only after a crash, want 30", n)
	}
	expectClean(t, ro, "read-only after a crash")
	id, err := identify(os.Stat(path))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := replayAll(path, id, discardAt{}); err != nil || n != 0 {
		t.Errorf("the log still holds %d commit(s) once they were written back (%v): a later open would write them again", n, err)
	}
}

// TestCommitLogRotates: under concurrent writers the two files take turns, each checkpointed
// while the other takes commits; every write is kept and the files stay small.
func TestCommitLogRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	s.log.rotateAt = 64 << 10
	started := max(s.log.epoch[0], s.log.epoch[1])
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				createUsers(t, s, 5, storage.NewID)
			}
		})
	}
	wg.Wait()
	if n := countUsers(t, s); n != 1000 {
		t.Errorf("%d users, want 1000", n)
	}
	for _, p := range logPaths(path) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 2<<20 {
			t.Errorf("%s grew to %d bytes: the files are not taking turns", p, st.Size())
		}
	}
	l := s.log
	l.mu.Lock()
	for l.busy {
		l.cond.Wait()
	}
	checkpoints := max(l.epoch[0], l.epoch[1]) - started
	l.mu.Unlock()
	if checkpoints < 10 {
		t.Errorf("%d checkpoints over 1,000 writes of 64 KiB files, want many", checkpoints)
	}
	// The figures for metrics: each checkpoint counted, and the bytes of the records since.
	f := s.LogFigures()
	if f.Checkpoints != checkpoints || f.CheckpointTime <= 0 {
		t.Errorf("figures tell %d checkpoints in %v, the files %d", f.Checkpoints, f.CheckpointTime, checkpoints)
	}
	var held int64
	for i, file := range l.files {
		var pages pageCounter
		records, err := replayFile(file, l.epoch[i], &pages)
		if err != nil {
			t.Fatal(err)
		}
		held += int64(records)*logRecordHead + pages.n*logPageEntry + pages.bytes
	}
	if f.Bytes != held || held <= 0 {
		t.Errorf("figures tell %d bytes in the log, its records hold %d", f.Bytes, held)
	}
	expectClean(t, s, "after many checkpoints")
}

// pageCounter counts the pages a replay writes, and their bytes.
type pageCounter struct{ n, bytes int64 }

func (c *pageCounter) WriteAt(p []byte, _ int64) (int, error) {
	c.n++
	c.bytes += int64(len(p))
	return len(p), nil
}

// FuzzReplayLog: whatever follows a whole record in a log file (a torn record, garbage, a
// record of another epoch), replay applies the whole record, its pages where it puts them,
// and stops without panicking.
func FuzzReplayLog(f *testing.F) {
	page := bytes.Repeat([]byte{7}, 4096)
	good := encodeLogRecord(nil, []bbolt.CommitPage{{Offset: 8192, Data: page}, {Offset: 0, Data: page}}, 42, 1)
	f.Add([]byte{})
	f.Add(encodeLogRecord(nil, []bbolt.CommitPage{{Offset: 4096, Data: page}}, 42, 2))
	f.Add(encodeLogRecord(nil, []bbolt.CommitPage{{Offset: 4096, Data: page}}, 41, 2))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, tail []byte) {
		content := append(append(logHeader{epoch: 42}.encode(), good...), tail...)
		var w pageSink
		n, err := replayLog(bytes.NewReader(content), int64(len(content)), 42, &w)
		if err != nil || n < 1 {
			t.Fatalf("replayed %d record(s), error %v: the whole first record is lost", n, err)
		}
		if len(w.offsets) < 2 || w.offsets[0] != 8192 || w.offsets[1] != 0 {
			t.Fatalf("pages written at %v, want the whole record's first: 8192, then 0", w.offsets)
		}
	})
}

// pageSink records where a replay writes.
type pageSink struct{ offsets []int64 }

func (s *pageSink) WriteAt(p []byte, off int64) (int, error) {
	s.offsets = append(s.offsets, off)
	return len(p), nil
}

// TestCommitLogNotTakenOverWithCommits: a writer never resets a log that holds commits no
// recovery wrote back.
func TestCommitLogNotTakenOverWithCommits(t *testing.T) {
	path, s, then := openRemembering(t)
	createUsers(t, s, 20, storage.NewID)
	powerCut(t, s, then, true)
	if _, err := openLog(path, func() error { return nil }, DefaultCommitLogBytes); !errors.Is(err, errLogNotEmpty) {
		t.Fatalf("openLog over a log with commits: %v, want errLogNotEmpty", err)
	}
	expectRecovered(t, path, 20, "after the refused take-over")
}
