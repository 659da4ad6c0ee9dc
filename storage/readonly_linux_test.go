package storage

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyFileFailsClearly: a data file the process may not write (made immutable with
// chattr, which binds root too) gives a clear error at open, not a crash or a damaged file.
func TestReadOnlyFileFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	openAt(t, path).Close()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("cannot make the file immutable here: %v %s", err, out)
	}
	defer exec.Command("chattr", "-i", path).Run()
	_, err := Open(path, Options{})
	if err == nil || strings.Count(err.Error(), path) != 1 || !strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("opening a read-only data file: %v (want the path once, and the reason)", err)
	}
	// Read-only use still works, and the file is intact.
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if problems, err := ro.Check(); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}
