package main

import (
	"os"
	"syscall"
)

// fdatasync flushes f as bbolt commits on Linux: its data, without the timestamps fsync would
// also write.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
