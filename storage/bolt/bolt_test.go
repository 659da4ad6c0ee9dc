package bolt

import (
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, collections []*storage.Collection) storage.Store {
		return openTestStore(t, filepath.Join(t.TempDir(), "data.db"), collections)
	})
}

func TestReopen(t *testing.T) {
	dir := map[*testing.T]string{}
	storagetest.RunReopen(t, func(t *testing.T, name string, collections []*storage.Collection) storage.Store {
		if dir[t] == "" {
			dir[t] = t.TempDir()
		}
		return openTestStore(t, filepath.Join(dir[t], name+".db"), collections)
	})
}

// openTestStore opens the data file at path, closed when t ends.
func openTestStore(t testing.TB, path string, collections []*storage.Collection) *Store {
	t.Helper()
	s, err := Open(path, Options{Collections: collections})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
