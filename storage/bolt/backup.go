package bolt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// Backup writes a consistent snapshot of the whole data file to w and returns the number of
// bytes written. It runs in one read transaction, so writes go on while it runs and the snapshot
// holds exactly the commits made before it began. The snapshot is a bbolt file: open it with
// Open (ReadOnly) to read it, VerifySnapshot to check it, Restore to put it in place.
//
// A snapshot is a copy of the file's pages, free pages included: values overwritten later (by an
// anonymization, say) stay in the snapshot for as long as the snapshot exists.
func (s *Store) Backup(w io.Writer) (int64, error) {
	return s.BackupSized(func(int64) io.Writer { return w })
}

// BackupSized is Backup for a caller that must announce the snapshot's size before its first
// byte (an HTTP Content-Length): start is called inside the read transaction with the exact
// number of bytes that will follow, and returns where to write them.
func (s *Store) BackupSized(start func(size int64) io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		w := start(tx.Size())
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// VerifySnapshot checks a snapshot or data file without changing it: it opens the file
// read-only, makes sure it is not truncated, then runs Check (bbolt's page check and every index
// against the records). It returns the problems found; an error means the file could not be
// read as a data file at all.
func VerifySnapshot(path string, collections []*storage.Collection) (problems []string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	// bbolt maps the file into memory; a truncated file would fault on the first page beyond
	// its end. Turn such a fault into an error rather than a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			problems, err = nil, fmt.Errorf("%s is not a readable data file: %v", path, p)
		}
	}()
	s, err := Open(path, Options{Collections: collections, ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if need := s.pagesEnd(); need > st.Size() {
		return nil, fmt.Errorf("%s is truncated: it holds %d bytes, its pages need %d", path, st.Size(), need)
	}
	return s.Check()
}

// Restore puts the snapshot at from in place as the data file at to, and returns its size. The
// copy goes to a temporary file beside to, is synced and verified (VerifySnapshot) and only then
// renamed over to, so that to is always either the old file or the whole snapshot. An existing
// to is replaced only with overwrite, and never while a process (a running server) holds it.
// Failures are storage errors: Conflict (to exists), Unavailable (to is in use), Invalid (the
// snapshot is not a consistent data file).
func Restore(from, to string, overwrite bool, collections []*storage.Collection, hooks RestoreHooks) (int64, error) {
	if abs1, err1 := filepath.Abs(from); err1 == nil {
		if abs2, err2 := filepath.Abs(to); err2 == nil && abs1 == abs2 {
			return 0, storage.Errorf(storage.Invalid, "the snapshot and the data file are the same file")
		}
	}
	src, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if _, err := os.Stat(to); err == nil {
		if !overwrite {
			return 0, storage.Errorf(storage.Conflict, "%s exists; restoring would replace it", to)
		}
		// Hold the old file's lock until the rename: a server running on it (or starting
		// meanwhile) keeps the file, and the restore fails instead.
		// Its commit log, after a crash, is written back first, so that the hook reads the
		// file as its last acknowledged commit left it.
		old, err := openBolt(to, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		switch {
		case errors.Is(err, ErrLocked):
			return 0, &storage.Error{Code: storage.Unavailable, Message: errLocked(to).Error() + " (restore needs the server stopped)"}
		case err == nil:
			defer old.Close()
			if hooks.Old != nil {
				if err := hooks.Old(to); err != nil {
					return 0, err
				}
			}
		}
		// Any other error means the old file is damaged: replacing it is what restore is for.
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return 0, fmt.Errorf("create data directory: %w", err)
	}
	tmp := to + ".restore.tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	problems, err := VerifySnapshot(tmp, collections)
	if err == nil && len(problems) > 0 {
		err = storage.Errorf(storage.Invalid, "the snapshot is not consistent (%d problem(s), first: %s)", len(problems), problems[0])
	}
	if err != nil {
		os.Remove(tmp)
		if storage.ErrorCode(err) == "" {
			err = &storage.Error{Code: storage.Invalid, Message: "the snapshot is not a usable data file: " + err.Error()}
		}
		return 0, err
	}
	if hooks.New != nil {
		if err := hooks.New(tmp); err != nil {
			os.Remove(tmp)
			return 0, err
		}
	}
	if err := os.Rename(tmp, to); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	// The old file's log (written back when it was opened above) belongs to a file gone.
	if err := removeLogs(to); err != nil {
		return 0, err
	}
	return n, SyncDir(to)
}

// RestoreHooks carry what the data a restore replaces knew into the data it restores. Old reads
// the data file about to be replaced, while Restore holds it (no server can start on it
// meanwhile), and only when it is readable; New works on the checked copy of the snapshot before
// it is renamed into place. An error from either stops the restore, with the data file as it was.
type RestoreHooks struct {
	Old func(path string) error
	New func(path string) error
}

// SyncDir fsyncs the directory holding path, so that a rename into it survives a crash.
func SyncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var _ storage.Snapshotter = (*Store)(nil)

// snapshotsRunning holds the data files being snapshotted: one at a time per file, since each
// stages a copy of the whole file.
var snapshotsRunning sync.Map

// Snapshot stages a consistent snapshot beside the data file (a crash can leave a
// .scimserver-backup-*.tmp file there), from one read transaction that lasts as long as a local
// disk copy: a long read holds back the reuse of freed pages and the clearing after an erasure.
// Closing the snapshot removes the staged copy.
func (s *Store) Snapshot(context.Context) (*storage.Snapshot, error) {
	if _, busy := snapshotsRunning.LoadOrStore(s.path, true); busy {
		return nil, storage.Errorf(storage.Conflict, "another backup is running; retry when it has finished")
	}
	f, err := os.CreateTemp(filepath.Dir(s.path), ".scimserver-backup-*.tmp")
	if err != nil {
		snapshotsRunning.Delete(s.path)
		return nil, err
	}
	staged := &stagedFile{File: f, release: func() { snapshotsRunning.Delete(s.path) }}
	h := sha256.New()
	size, err := s.Backup(io.MultiWriter(f, h))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		staged.Close()
		return nil, err
	}
	return &storage.Snapshot{ReadCloser: staged, Size: size, SHA256: h.Sum(nil)}, nil
}

// stagedFile is a snapshot's file: closing removes it and lets the next snapshot begin.
type stagedFile struct {
	*os.File
	release func()
	once    sync.Once
}

func (f *stagedFile) Close() error {
	err := f.File.Close()
	f.once.Do(func() {
		os.Remove(f.Name())
		f.release()
	})
	return err
}
