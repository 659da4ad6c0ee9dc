package main

import (
	"os"
	"path/filepath"
)

// syncDir fsyncs the directory holding path, so a rename into it survives a crash.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
