package bolt

import (
	"fmt"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Compact rewrites the data file at path with its live records only (no free pages, so no
// trace of overwritten values) and replaces it atomically. The file must not be open elsewhere.
// It returns the sizes before and after.
func Compact(path string) (before, after int64, err error) {
	src, err := openBolt(path, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return 0, 0, fmt.Errorf("%w (compact needs the server stopped)", err)
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bbolt.Open(tmp, 0o600, nil)
	if err != nil {
		return 0, 0, err
	}
	if err := bbolt.Compact(dst, src, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		return 0, 0, err
	}
	before, after = fileSize(path), fileSize(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return 0, 0, err
	}
	// The old file's log (written back when it was opened) belongs to a file gone.
	if err := removeLogs(path); err != nil {
		return 0, 0, err
	}
	return before, after, SyncDir(path)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
