package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Tests that need the real binary (exit codes, the version stamped by -ldflags, README's
// commands) share one build per test run.
const (
	testVersion   = "v0.0.0-test"
	testBuildTime = "2026-01-02T03:04:05Z"
)

var testBin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// scimserverBinary builds cmd/scimserver once, with the test version and build time stamped in.
func scimserverBinary(t *testing.T) string {
	t.Helper()
	testBin.once.Do(func() {
		if testBin.dir, testBin.err = os.MkdirTemp("", "scimserver-bin-"); testBin.err != nil {
			return
		}
		testBin.path = filepath.Join(testBin.dir, "scimserver")
		cmd := exec.Command("go", "build", "-o", testBin.path,
			"-ldflags", "-X main.version="+testVersion+" -X main.buildTime="+testBuildTime, ".")
		testBin.out, testBin.err = cmd.CombinedOutput()
	})
	if testBin.err != nil {
		t.Fatalf("go build: %v\n%s", testBin.err, testBin.out)
	}
	return testBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBin.dir != "" {
		os.RemoveAll(testBin.dir)
	}
	os.Exit(code)
}
