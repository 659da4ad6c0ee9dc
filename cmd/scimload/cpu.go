package main

import "time"

// measured runs a phase and adds to its result the CPU time per operation that it cost this
// process and, given the server's process id (pid > 0), the server: what each operation costs
// the machine on either side, which a rate alone does not tell when client and server share the
// machine's cores. A figure that could not be measured, or that went backwards (the process id
// taken by another process), is left out.
func measured(pid int, run func() PhaseResult) PhaseResult {
	self, okSelf := processCPU()
	var server time.Duration
	okServ := false
	if pid > 0 {
		server, okServ = serverCPU(pid)
	}
	r := run()
	if r.Ops == 0 {
		return r
	}
	perOp := func(start, now time.Duration) *float64 {
		us := float64((now - start).Microseconds()) / float64(r.Ops)
		return &us
	}
	if now, ok := processCPU(); ok && okSelf && now >= self {
		r.CPUMicrosPerOp = perOp(self, now)
	}
	if !okServ {
		return r
	}
	if now, ok := serverCPU(pid); ok && now >= server {
		r.ServerCPUMicrosPerOp = perOp(server, now)
	}
	return r
}
