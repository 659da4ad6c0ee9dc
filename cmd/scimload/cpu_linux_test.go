package main

import (
	"os/exec"
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	for _, c := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"4242 (scimserver) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 37 0 0 20 0 9 0 100 0 0\n", 2870 * time.Millisecond, true},
		// a command name with spaces and parentheses of its own
		{"7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0", 70 * time.Millisecond, true},
		{"7 (short) R 1 7", 0, false},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 three 4 0 0", 0, false},
		{"no parenthesis", 0, false},
	} {
		got, ok := parseProcStatCPU([]byte(c.line))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestServerCPUReadsThatProcess: the server's CPU time is read from its own process, not this
// one's: a child that sleeps has spent next to none while this process spends some.
func TestServerCPUReadsThatProcess(t *testing.T) {
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	r := measured(child.Process.Pid, func() PhaseResult {
		for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		}
		return PhaseResult{Ops: 1}
	})
	if r.CPUMicrosPerOp == nil || r.ServerCPUMicrosPerOp == nil || *r.CPUMicrosPerOp < 50_000 || *r.ServerCPUMicrosPerOp > 20_000 {
		t.Errorf("this process %v µs, the sleeping child %v µs", deref(r.CPUMicrosPerOp), deref(r.ServerCPUMicrosPerOp))
	}
}
