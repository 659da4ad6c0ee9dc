package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/internal/testtool"
)

// TestBenchScript runs scripts/bench.sh at its smallest: every phase takes the size its variable
// gives, and a missing tool is named before anything runs.
func TestBenchScript(t *testing.T) {
	script, err := filepath.Abs("../../scripts/bench.sh")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, tool := range []string{"bash", "dirname", "go", "curl", "jq", "bc"} {
		paths = append(paths, testtool.Path(t, tool, "by scripts/bench.sh"))
	}

	// Without jq on PATH: a clear message, exit 1, nothing built.
	bin := t.TempDir()
	for _, p := range paths {
		if filepath.Base(p) != "jq" {
			if err := os.Symlink(p, filepath.Join(bin, filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "bash"), script)
	cmd.Env = append(os.Environ(), "PATH="+bin, "OUT="+out)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "scripts/bench.sh needs jq on PATH") {
		t.Fatalf("without jq: %v\n%s", err, msg)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("without jq the script still wrote %d entries", len(entries))
	}

	cmd = exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "OUT="+out, "PORT="+strings.Split(testtool.FreeAddr(t), ":")[1], "USERS=300", "SMALL_USERS=200",
		"CREATE_USERS=100", "CREATE_CONCURRENCY=4", "OPS=100", "GROUP_COUNT=5", "GROUP_SIZE=20", "MIX_SECONDS=0.5",
		"FSYNC_SECONDS=0.2", "BASELINE_SECONDS=0.2")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench.sh: %v\n%s", err, msg)
	}
	for file, want := range map[string]map[string]int{
		"users10k.json":  {"create": 200, "get": 100},
		"create32.json":  {"create": 100},
		"users-big.json": {"create": 300, "lookup-username": 100},
	} {
		raw, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(raw, &rep); err != nil || rep.Errors != 0 {
			t.Fatalf("%s: %v, %d errors", file, err, rep.Errors)
		}
		for phase, ops := range want {
			if got := phaseByName(t, rep, phase).Ops; got != ops {
				t.Errorf("%s: phase %s ran %d ops, want %d", file, phase, got, ops)
			}
		}
		if file == "users-big.json" && rep.Groups != 5 {
			t.Errorf("%s: %d groups, want 5", file, rep.Groups)
		}
	}

	// The stall rounds and the GETs behind abandoned listings, on a small file.
	// The writes rounds' metrics listener gets a port of its own: PORT+1 may be any socket's.
	env := append(os.Environ(), "OUT="+out, "PORT="+strings.Split(testtool.FreeAddr(t), ":")[1],
		"WRITES_METRICS_PORT="+strings.Split(testtool.FreeAddr(t), ":")[1], "STALL_USERS=300",
		"REPEAT=1", "DURATION=1s", "WRITE_USERS=300", "OPS=100", "WRITE_GROUPS=2", "WRITE_GROUP_SIZE=200",
		"FSYNC_SECONDS=0.2", "BASELINE_SECONDS=0.2", "SERVER_BIN_BEFORE="+filepath.Join(out, "bin", "scimserver"))
	for _, c := range []struct {
		mode string
		want []string
	}{
		{"stall", []string{"round 1: anonymization ", ", 0 errors\n"}},
		{"abandon", []string{"round 1: GET by id behind 40 abandoned sorted listings: median "}},
		// The write rounds, with the same build standing in for the one compared against, and
		// what a create and a bare POST cost in CPU.
		{"writes", []string{" ms; after: create ", " µs client), patch-entra ", " µs client), add-members ", " µs of CPU per request, client and server); before: "}},
	} {
		cmd = exec.Command("bash", script, c.mode)
		cmd.Env = env
		msg, err := cmd.CombinedOutput()
		for _, want := range c.want {
			if err != nil || !strings.Contains(string(msg), want) {
				t.Fatalf("bench.sh %s: %v, want %q in\n%s", c.mode, err, want, msg)
			}
		}
		if c.mode == "writes" && runtime.GOOS == "linux" && strings.Contains(string(msg), "? µs") {
			t.Errorf("bench.sh writes: a CPU time not measured:\n%s", msg)
		}
	}
}
