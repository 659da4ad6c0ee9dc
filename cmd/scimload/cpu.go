package main

import "time"

// cpuMeter measures the CPU time a phase costs this process and, given its process id, the
// server: against the phase's operations, what each costs the machine on either side, which
// a rate alone does not tell when client and server share the machine's cores.
type cpuMeter struct {
	pid            int
	self, server   time.Duration
	okSelf, okServ bool
}

// startCPU starts measuring; pid 0 measures this process only.
func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid}
	m.self, m.okSelf = processCPU()
	if pid > 0 {
		m.server, m.okServ = serverCPU(pid)
	}
	return m
}

// finish sets r's CPU time per operation since the start, where it could be measured. A time
// that went backwards (the server's process id taken by another process) is left out.
func (m cpuMeter) finish(r *PhaseResult) {
	if r.Ops == 0 {
		return
	}
	perOp := func(start, now time.Duration) *float64 {
		us := float64((now - start).Microseconds()) / float64(r.Ops)
		return &us
	}
	if now, ok := processCPU(); ok && m.okSelf && now >= m.self {
		r.CPUMicrosPerOp = perOp(m.self, now)
	}
	if !m.okServ {
		return
	}
	if now, ok := serverCPU(m.pid); ok && now >= m.server {
		r.ServerCPUMicrosPerOp = perOp(m.server, now)
	}
}

// measured runs a phase and adds its CPU time per operation to its result.
func measured(pid int, run func() PhaseResult) PhaseResult {
	m := startCPU(pid)
	r := run()
	m.finish(&r)
	return r
}
