package bolt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// The commit log makes a write durable with one sequential append and one fdatasync. bbolt
// alone writes each page a commit changed where its freelist put it — anywhere in the file —
// and fdatasyncs twice; what a disk does slowly is exactly that, pages at scattered places
// (BENCHMARKS.md, "What the disk allows a commit of scattered pages"). With the log, every
// commit's pages (the meta page last) are appended to it and synced before any of them
// reaches the data file; the data file is then written without a sync, and synced at a
// checkpoint, after which the log that the checkpoint covers is reset. After a crash,
// recoverLocked writes the pages of every whole record back over the data file before bbolt
// reads it: the file is then exactly as the last acknowledged commit left it.
//
// Two files alternate: commits append to one while the other, full, waits for its checkpoint
// (an fdatasync of the data file, then a new header). Each reset gives a file a higher epoch;
// a record counts only under its file's epoch and in sequence, so replaying both files in
// epoch order replays the commits in the order they were made, and stops at a torn last
// record. A header also names the data file (its inode): the log of a file that a restore or
// a compaction replaced is not replayed over its successor; and the log's commits must carry
// on from the file's own (recoverLocked): nor is it replayed over a copy put in its place.
//
// The log holds images of pages with personal data until it is overwritten: the scrub that
// follows an erasure zeroes both files (clearLog) before it reports the erasure cleared.

const (
	logHeaderSize  = 4096
	logRecordHead  = 32
	logPageEntry   = 12
	logMagic       = "SCIMLOG1"
	logRecordMagic = 0x5c1a10c5
	logMinExtend   = 1 << 20
	logMaxExtend   = 16 << 20
	logKeptBuffer  = 8 << 20
)

var logCRC = crc32.MakeTable(crc32.Castagnoli)

// logPaths are the two files of the commit log of the data file at path.
func logPaths(path string) [2]string {
	return [2]string{path + "-log.0", path + "-log.1"}
}

// fileID names a data file by its inode: a file renamed over it (a restore, a compaction) is
// another file. Not the device, which can change between boots for the same file.
type fileID struct{ ino uint64 }

func identify(st os.FileInfo, err error) (fileID, error) {
	if err != nil {
		return fileID{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, errors.New("no inode for " + st.Name())
	}
	return fileID{ino: uint64(sys.Ino)}, nil
}

type logHeader struct {
	epoch uint64
	id    fileID
}

func (h logHeader) encode() []byte {
	b := make([]byte, logHeaderSize)
	copy(b, logMagic)
	binary.LittleEndian.PutUint64(b[8:], h.epoch)
	binary.LittleEndian.PutUint64(b[16:], h.id.ino)
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], logCRC))
	return b
}

// readLogHeader reads a log file's header; ok is false for a file too short, torn or foreign.
func readLogHeader(f *os.File) (h logHeader, ok bool) {
	b := make([]byte, 36)
	if _, err := f.ReadAt(b, 0); err != nil {
		return h, false
	}
	if string(b[:8]) != logMagic || binary.LittleEndian.Uint32(b[32:]) != crc32.Checksum(b[:32], logCRC) {
		return h, false
	}
	h.epoch = binary.LittleEndian.Uint64(b[8:])
	h.id = fileID{ino: binary.LittleEndian.Uint64(b[16:])}
	return h, true
}

// logRecordSize is the length of the record of a commit of pages.
func logRecordSize(pages []bbolt.CommitPage) int {
	n := logRecordHead + logPageEntry*len(pages)
	for _, p := range pages {
		n += len(p.Data)
	}
	return n
}

// encodeLogRecord lays out one commit: a head (magic, checksum, length, page count, epoch,
// sequence), then each page's offset and size, then the pages. The checksum covers everything
// after it. The record goes in buf when buf is large enough.
func encodeLogRecord(buf []byte, pages []bbolt.CommitPage, epoch, seq uint64) []byte {
	n := logRecordSize(pages)
	if cap(buf) < n {
		buf = make([]byte, n, n+n/4) // room for the next commits, a little larger as a rule
	}
	b := buf[:n]
	binary.LittleEndian.PutUint32(b[0:], logRecordMagic)
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(pages)))
	binary.LittleEndian.PutUint64(b[16:], epoch)
	binary.LittleEndian.PutUint64(b[24:], seq)
	at, data := logRecordHead, logRecordHead+logPageEntry*len(pages)
	for _, p := range pages {
		binary.LittleEndian.PutUint64(b[at:], uint64(p.Offset))
		binary.LittleEndian.PutUint32(b[at+8:], uint32(len(p.Data)))
		at += logPageEntry
		data += copy(b[data:], p.Data)
	}
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], logCRC))
	return b
}

// replayLog writes the pages of each whole record of a log file of size bytes, under epoch, at
// their offsets in data, and reports how many records it applied.
func replayLog(f io.ReaderAt, size int64, epoch uint64, data io.WriterAt) (int, error) {
	at, applied := int64(logHeaderSize), 0
	head := make([]byte, logRecordHead)
	for seq := uint64(1); at+logRecordHead <= size; seq++ {
		if _, err := f.ReadAt(head, at); err != nil {
			return applied, err
		}
		n := int64(binary.LittleEndian.Uint32(head[8:]))
		count := int64(binary.LittleEndian.Uint32(head[12:]))
		if binary.LittleEndian.Uint32(head[0:]) != logRecordMagic || n < logRecordHead+logPageEntry*count ||
			at+n > size || binary.LittleEndian.Uint64(head[16:]) != epoch || binary.LittleEndian.Uint64(head[24:]) != seq {
			break
		}
		rec := make([]byte, n)
		if _, err := f.ReadAt(rec, at); err != nil {
			return applied, err
		}
		if binary.LittleEndian.Uint32(rec[4:]) != crc32.Checksum(rec[8:], logCRC) {
			break // torn: its commit was never acknowledged
		}
		entries, pages := rec[logRecordHead:], rec[logRecordHead+logPageEntry*count:]
		for i := range count {
			off := int64(binary.LittleEndian.Uint64(entries[i*logPageEntry:]))
			size := int64(binary.LittleEndian.Uint32(entries[i*logPageEntry+8:]))
			if size > int64(len(pages)) {
				return applied, fmt.Errorf("record %d overruns itself", seq)
			}
			if _, err := data.WriteAt(pages[:size], off); err != nil {
				return applied, err
			}
			pages = pages[size:]
		}
		at += n
		applied++
	}
	return applied, nil
}

// discardAt counts records without writing them anywhere.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// liveLogs opens the log files of the data file (identified by id) in epoch order, leaving out
// any whose header is torn. A file whose header names another data file and that holds
// commits is an error: replaying them would corrupt this file, ignoring them would lose them.
func liveLogs(path string, id fileID) ([]*os.File, []uint64, error) {
	var files []*os.File
	var epochs []uint64
	for _, p := range logPaths(path) {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			closeAll(files)
			return nil, nil, err
		}
		h, ok := readLogHeader(f)
		if ok && h.id != id {
			n, err := replayFile(f, h.epoch, discardAt{})
			f.Close()
			if err != nil || n > 0 {
				closeAll(files)
				return nil, nil, cmp.Or(err, fmt.Errorf("%s holds %d commit(s) of another data file than %s: if that file was replaced on purpose, delete %s and %s", p, n, path, logPaths(path)[0], logPaths(path)[1]))
			}
			continue
		}
		if !ok {
			f.Close()
			continue
		}
		files, epochs = append(files, f), append(epochs, h.epoch)
	}
	if len(files) == 2 && epochs[1] < epochs[0] {
		files[0], files[1] = files[1], files[0]
		epochs[0], epochs[1] = epochs[1], epochs[0]
	}
	return files, epochs, nil
}

// closeAll closes files; nil ones are skipped (os.File.Close of nil does nothing).
func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// replayFile replays the records of an open log file under epoch over w.
func replayFile(f *os.File, epoch uint64, w io.WriterAt) (int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return replayLog(f, st.Size(), epoch, w)
}

// replayAll replays the live logs of the data file over w, in epoch order.
func replayAll(path string, id fileID, w io.WriterAt) (int, error) {
	files, epochs, err := liveLogs(path, id)
	if err != nil {
		return 0, err
	}
	defer closeAll(files)
	total := 0
	for i, f := range files {
		n, err := replayFile(f, epochs[i], w)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// openLocked opens the data file at path under the lock bbolt keeps on it (exclusive for a
// writer, shared for a reader), having first written back every commit its log holds; bbolt
// is then handed this very file (Options.OpenFile), so no other process comes between the
// recovery and bbolt. Read-only opens recover too, since a file whose log holds commits is not
// consistent until they are written back; they take the exclusive lock only while they do.
func openLocked(path string, readOnly bool, timeout time.Duration) (*os.File, error) {
	flag, how := os.O_RDWR|os.O_CREATE, syscall.LOCK_EX
	if readOnly {
		flag, how = os.O_RDWR, syscall.LOCK_SH
	}
	f, err := os.OpenFile(path, flag, 0o600)
	writable := err == nil
	if readOnly && (errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS)) {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, how, timeout); err != nil {
		f.Close()
		return nil, err
	}
	if err := recoverLocked(f, path, readOnly, writable, timeout); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// recoverLocked writes back the commits of the log of the data file f (locked), syncs it and
// retires the log. It looks first: the log must continue the file's own history.
func recoverLocked(f *os.File, path string, readOnly, writable bool, timeout time.Duration) error {
	id, err := identify(f.Stat())
	if err != nil {
		return err
	}
	seen := &metaWatch{w: discardAt{}}
	n, err := replayAll(path, id, seen)
	if err != nil || n == 0 {
		return recoverError(path, err)
	}
	if err := seen.continues(f, path); err != nil {
		return err
	}
	if !writable {
		return fmt.Errorf("open %s: its commit log holds %d commit(s) to write back, which needs write access to the file", path, n)
	}
	if readOnly {
		if err := lockFile(f, syscall.LOCK_EX, timeout); err != nil {
			return err
		}
		defer lockFile(f, syscall.LOCK_SH, timeout)
	}
	// Another reader may have written them back between the two locks.
	if n, err = replayAll(path, id, f); err != nil || n == 0 {
		return recoverError(path, err)
	}
	if err := fdatasync(f); err != nil {
		return err
	}
	return retireLogs(path, id)
}

// metaWatch passes a replay's page writes on to w and notes the transaction ids of the meta
// pages among them: the first and the last commit the log holds.
type metaWatch struct {
	w           io.WriterAt
	first, last uint64
	pageSize    int
}

func (m *metaWatch) WriteAt(p []byte, off int64) (int, error) {
	if txid, ok := bbolt.MetaTxid(p); ok && off < 2*int64(len(p)) {
		if m.pageSize == 0 {
			m.first = txid
		}
		m.last, m.pageSize = txid, len(p)
	}
	return m.w.WriteAt(p, off)
}

// continues checks that the log's commits continue the history of the data file f: a file
// put in place of the crashed one under the same inode (a backup copied over it) is older
// than the log's first commit, or newer than its last; writing the log back over it would
// corrupt it. The file's own transaction id is that of its newer valid meta page. Its meta
// pages are written without a sync since the checkpoint before the log's first commit: a
// crash can tear the newer one and leave the other one commit older, so the file may read
// two commits before the log's first — but only with a torn meta page beside it, which a copy
// taken then does not have.
func (m *metaWatch) continues(f *os.File, path string) error {
	if m.pageSize == 0 {
		return nil // no commit's meta page: nothing to compare
	}
	var txid uint64
	valid := 0
	page := make([]byte, m.pageSize)
	for i := range int64(2) {
		if _, err := f.ReadAt(page, i*int64(m.pageSize)); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if t, ok := bbolt.MetaTxid(page); ok {
			txid, valid = max(txid, t), valid+1
		}
	}
	torn := valid == 1
	if valid == 0 || (txid+1 >= m.first || torn && txid+2 == m.first) && txid <= m.last {
		return nil // the log continues the file, or the file has no valid meta page to tell by
	}
	logs := logPaths(path)
	return fmt.Errorf("%s is at commit %d, but its commit log holds commits %d to %d: the file is not the one the log was kept for (a copy put in its place?); restore a backup with the restore command, or, if the file was replaced on purpose, delete %s and %s",
		path, txid, m.first, m.last, logs[0], logs[1])
}

// recoverError says which file a failed write-back was for.
func recoverError(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("recover %s from its commit log: %w", path, err)
}

// retireLogs gives each log file of the data file that holds records a new header, and so no
// records, the older file first: a crash between the two leaves the newer one live, and
// replaying it again, once its commits are in the file, changes nothing (the other way round,
// the older one would be replayed over the newer commits). Epochs keep growing.
func retireLogs(path string, id fileID) error {
	for {
		done, err := retireOldest(path, id)
		if err != nil || done {
			return err
		}
	}
}

// retireOldest retires the log file of the lowest epoch that holds records, giving it an epoch
// above both; done reports that none holds any.
func retireOldest(path string, id fileID) (done bool, err error) {
	files, epochs, err := liveLogs(path, id)
	if err != nil {
		return false, err
	}
	defer closeAll(files)
	for i, f := range files {
		if !startsRecords(f, epochs[i]) {
			continue
		}
		w, err := os.OpenFile(f.Name(), os.O_RDWR, 0)
		if err != nil {
			return false, err
		}
		defer w.Close()
		next := max(uint64(time.Now().UnixNano()), epochs[len(epochs)-1]+1)
		return false, writeHeader(w, logHeader{epoch: next, id: id})
	}
	return true, nil
}

// startsRecords reports whether the log file f, under epoch, begins with the head of a first
// record: what recovery retires (a torn first record too, harmlessly).
func startsRecords(f *os.File, epoch uint64) bool {
	head := make([]byte, logRecordHead)
	if _, err := f.ReadAt(head, logHeaderSize); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(head[0:]) == logRecordMagic && binary.LittleEndian.Uint64(head[16:]) == epoch &&
		binary.LittleEndian.Uint64(head[24:]) == 1
}

// writeHeader writes h at the start of f and syncs it.
func writeHeader(f *os.File, h logHeader) error {
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		return err
	}
	return fdatasync(f)
}

// writeZeros overwrites f from from to to with zeros and syncs it.
func writeZeros(f *os.File, from, to int64) error {
	zeros := make([]byte, logMinExtend)
	for at := from; at < to; at += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), to-at)], at); err != nil {
			return err
		}
	}
	return fdatasync(f)
}

// removeLogs deletes the log files of the data file at path, once they hold nothing to replay.
func removeLogs(path string) error {
	for _, p := range logPaths(path) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// lockFile takes a flock of f (how bbolt locks its file), waiting up to timeout; a lock held
// elsewhere past it is ErrLocked.
func lockFile(f *os.File, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errLocked(f.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// commitLog is the log of an open, writable store. Appends come from bbolt's writer, one at a
// time; a checkpoint runs in the background on the file the writer left.
type commitLog struct {
	files    [2]*os.File
	id       fileID
	sync     func() error // an fdatasync of the data file
	rotateAt int64        // a file is checkpointed once its records pass this
	// Of each file, owned by the writer while the file is active and by the checkpoint while
	// it is not: the next append offset (atomic, for metrics), the bytes known written, and
	// the next sequence number.
	pos     [2]atomic.Int64
	written [2]int64
	seq     [2]uint64
	buf     []byte // the last record's bytes, reused
	last    int64  // where the last record starts
	pending bool   // the last record's commit has not been settled

	// For metrics: the checkpoints done and their time.
	checkpointsDone atomic.Uint64
	checkpointTime  atomic.Int64

	mu     sync.Mutex
	cond   *sync.Cond
	epoch  [2]uint64
	active int
	busy   bool  // the other file is in (or waits for) its checkpoint
	err    error // a failed append or checkpoint: the log takes no more commits
	closed bool
	jobs   chan checkpoint
	done   chan struct{}
}

type checkpoint struct {
	file int
	zero bool          // overwrite the file's records, not only its header
	done chan struct{} // closed when the checkpoint has ended
}

// errLogNotEmpty: the log holds commits that no recovery wrote back.
var errLogNotEmpty = errors.New("the commit log holds commits to write back")

// openLog creates or takes over the log of the data file at path, which bbolt holds open for
// writing (so recovered already): it resets both files, then starts the checkpoint worker.
// syncData is an fdatasync of the data file; a file is checkpointed once its records pass
// rotateAt bytes.
func openLog(path string, syncData func() error, rotateAt int64) (*commitLog, error) {
	id, err := identify(os.Stat(path))
	if err != nil {
		return nil, err
	}
	if n, err := replayAll(path, id, discardAt{}); err != nil || n > 0 {
		return nil, cmp.Or(err, errLogNotEmpty)
	}
	l := &commitLog{id: id, sync: syncData, rotateAt: rotateAt, jobs: make(chan checkpoint, 1), done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	var last uint64
	for i, p := range logPaths(path) {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			closeAll(l.files[:])
			return nil, err
		}
		l.files[i] = f
		if h, ok := readLogHeader(f); ok {
			last = max(last, h.epoch)
		}
		st, err := f.Stat()
		if err != nil {
			closeAll(l.files[:])
			return nil, err
		}
		l.written[i] = st.Size()
	}
	// Epochs only grow, so that no record left in a file from an earlier life counts again.
	for i := range l.files {
		if err := l.reset(i, max(last+1, uint64(time.Now().UnixNano())), false); err != nil {
			closeAll(l.files[:])
			return nil, err
		}
		last = l.epoch[i]
	}
	if err := SyncDir(path); err != nil {
		closeAll(l.files[:])
		return nil, err
	}
	go l.checkpoints()
	return l, nil
}

// append is bbolt's CommitLog: it writes one commit's pages to the active file and syncs it.
// A failure before the record is written (the file could not grow) fails only this commit; a
// failed write or sync of the record stops the log, since what the disk then holds is unknown.
func (l *commitLog) append(pages []bbolt.CommitPage) error {
	l.mu.Lock()
	if l.err == nil && l.pos[l.active].Load() >= l.rotateAt {
		l.rotateLocked(false)
	}
	i, epoch, err := l.active, l.epoch[l.active], l.err
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if size := logRecordSize(pages); uint64(size) > math.MaxUint32 {
		return fmt.Errorf("a commit of %d bytes is more than the commit log takes in one record", size)
	}
	rec := encodeLogRecord(l.buf, pages, epoch, l.seq[i])
	if cap(rec) <= logKeptBuffer {
		l.buf = rec // reused by the next append: a commit is up to a few MiB (member changes)
	}
	at := l.pos[i].Load()
	if err := l.extend(i, at+int64(len(rec))); err != nil {
		return fmt.Errorf("grow the commit log: %w", err)
	}
	if _, err := l.files[i].WriteAt(rec, at); err != nil {
		return l.fail(fmt.Errorf("write the commit log: %w", err))
	}
	if err := fdatasync(l.files[i]); err != nil {
		return l.fail(fmt.Errorf("sync the commit log: %w", err))
	}
	l.last, l.pending = at, true
	l.pos[i].Store(at + int64(len(rec)))
	l.seq[i]++
	return nil
}

// settle is told, after each commit, whether bbolt completed it. A commit that failed after its
// record was synced (the data file could not be written) must not come back at the next open:
// its record is taken back. If that fails too, the log stops.
func (l *commitLog) settle(committed bool) {
	pending := l.pending
	l.pending = false
	if committed || !pending {
		return
	}
	i := l.active
	if _, err := l.files[i].WriteAt(make([]byte, logRecordHead), l.last); err != nil {
		l.fail(fmt.Errorf("take back a failed commit's record: %w", err))
		return
	}
	if err := fdatasync(l.files[i]); err != nil {
		l.fail(fmt.Errorf("take back a failed commit's record: %w", err))
		return
	}
	l.pos[i].Store(l.last)
	l.seq[i]--
}

func (l *commitLog) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	l.cond.Broadcast()
	return l.err
}

// extend makes sure the bytes up to end of file i were written, with zeros where nothing was:
// a sync of a record then changes no file size or extent, only data.
func (l *commitLog) extend(i int, end int64) error {
	if end <= l.written[i] {
		return nil
	}
	grow := min(max(l.written[i], logMinExtend), logMaxExtend)
	end = max(end, l.written[i]+grow)
	if err := writeZeros(l.files[i], l.written[i], end); err != nil {
		return err
	}
	l.written[i] = end
	return nil
}

// rotateLocked makes the other file the active one, once its own checkpoint has ended, and
// hands the one left to a checkpoint. l.mu is held; only the writer calls it.
func (l *commitLog) rotateLocked(zero bool) chan struct{} {
	for l.busy && l.err == nil {
		l.cond.Wait()
	}
	done := make(chan struct{})
	if l.err != nil {
		close(done)
		return done
	}
	old := l.active
	l.active, l.busy = 1-old, true
	l.jobs <- checkpoint{file: old, zero: zero, done: done}
	return done
}

// rotate checkpoints the active file now, overwriting its records, and returns a channel
// closed when that has ended. It must run on bbolt's writer (inside a write transaction), so
// that no append runs meanwhile.
func (l *commitLog) rotate() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rotateLocked(true)
}

// figures reports the log for metrics.
func (l *commitLog) figures() storage.LogFigures {
	return storage.LogFigures{Bytes: l.pos[0].Load() + l.pos[1].Load() - 2*logHeaderSize, Checkpoints: l.checkpointsDone.Load(),
		CheckpointTime: time.Duration(l.checkpointTime.Load())}
}

// failure is the error that stopped the log, if one did.
func (l *commitLog) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *commitLog) checkpoints() {
	defer close(l.done)
	for c := range l.jobs {
		start := time.Now()
		err := l.sync()
		if err == nil {
			l.mu.Lock()
			next := max(l.epoch[0], l.epoch[1]) + 1
			l.mu.Unlock()
			err = l.reset(c.file, next, c.zero)
		}
		if err == nil {
			l.checkpointsDone.Add(1)
			l.checkpointTime.Add(int64(time.Since(start)))
		}
		l.mu.Lock()
		if err != nil && l.err == nil {
			l.err = fmt.Errorf("checkpoint the commit log: %w", err)
		}
		l.busy = false
		l.cond.Broadcast()
		l.mu.Unlock()
		close(c.done)
	}
}

// reset writes file i a new header under epoch and syncs it, then, when zero is set,
// overwrites the records it held and syncs again: the header goes first, so that no crash can
// leave the old header over a mix of old records and zeros. The data file must be synced past
// every record of the file.
func (l *commitLog) reset(i int, epoch uint64, zero bool) error {
	if err := writeHeader(l.files[i], logHeader{epoch: epoch, id: l.id}); err != nil {
		return err
	}
	if zero {
		if err := writeZeros(l.files[i], logHeaderSize, l.written[i]); err != nil {
			return err
		}
	}
	l.written[i] = max(l.written[i], logHeaderSize)
	l.pos[i].Store(logHeaderSize)
	l.seq[i] = 1
	l.mu.Lock()
	l.epoch[i] = epoch
	l.mu.Unlock()
	return nil
}

// close checkpoints both files, so that a store closed cleanly leaves nothing to replay, and
// closes them; with remove, it deletes them too. No commit may run any more.
func (l *commitLog) close(remove bool) error {
	l.mu.Lock()
	for l.busy {
		l.cond.Wait()
	}
	failed, closed := l.err, l.closed
	l.closed = true
	l.mu.Unlock()
	if closed {
		return nil
	}
	close(l.jobs)
	<-l.done
	defer closeAll(l.files[:])
	if failed != nil {
		return failed // the records stay for the next open to write back
	}
	if err := l.sync(); err != nil {
		return err
	}
	for i := range l.files {
		if err := l.reset(i, max(l.epoch[0], l.epoch[1])+1, false); err != nil {
			return err
		}
	}
	if !remove {
		return nil
	}
	for _, f := range l.files {
		if err := os.Remove(f.Name()); err != nil {
			return err
		}
	}
	return nil
}
