package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// maxErrorSamples bounds the error messages a phase keeps: enough to diagnose, never a flood.
const maxErrorSamples = 5

// recorder collects one worker's outcomes. Each worker owns its recorder, so recording takes no
// lock; the recorders are merged when the phase ends.
type recorder struct {
	kinds   map[string]*series
	samples []string
}

// series is the outcome of one kind of operation. Latencies are kept exactly (8 bytes per
// operation) so percentiles need no approximation. first and last bound the time its correct
// answers span: the kinds of a phase may run one after the other (groups) or side by side
// (mix), and a kind's rate is over its own span.
type series struct {
	latencies   []time.Duration
	errors      int
	first, last time.Time
}

func (r *recorder) series(kind string) *series {
	if r.kinds == nil {
		r.kinds = map[string]*series{}
	}
	s := r.kinds[kind]
	if s == nil {
		s = &series{}
		r.kinds[kind] = s
	}
	return s
}

// ok records a correct answer and its latency.
func (r *recorder) ok(kind string, d time.Duration) {
	s := r.series(kind)
	s.latencies = append(s.latencies, d)
	end := time.Now()
	s.span(end.Add(-d), end)
}

func (s *series) span(first, last time.Time) {
	if s.first.IsZero() || first.Before(s.first) {
		s.first = first
	}
	if last.After(s.last) {
		s.last = last
	}
}

// fail records a wrong answer or a failed request. Its latency is dropped on purpose: a fast
// wrong answer must not make the phase look faster.
func (r *recorder) fail(kind string, err error) {
	r.series(kind).errors++
	if len(r.samples) < maxErrorSamples {
		r.samples = append(r.samples, kind+": "+err.Error())
	}
}

// PhaseResult is one measured phase (or, inside Kinds, one kind of operation of a phase).
type PhaseResult struct {
	Name    string  `json:"name"`
	Ops     int     `json:"ops"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	// OpsPerSec counts only correct answers.
	OpsPerSec float64 `json:"opsPerSec"`
	P50Ms     float64 `json:"p50Ms"`
	P95Ms     float64 `json:"p95Ms"`
	P99Ms     float64 `json:"p99Ms"`
	MaxMs     float64 `json:"maxMs"`
	// FirstPageMs and LastPageMs are set by the page phase: their ratio shows whether deep
	// pages cost more than the first one.
	FirstPageMs float64 `json:"firstPageMs,omitempty"`
	LastPageMs  float64 `json:"lastPageMs,omitempty"`
	// Set by the stall phase: how long the anonymization took, whether its answer said the
	// free pages were overwritten, and the longest time no PATCH completed while it ran
	// (StallMs) and during the rest of the run (BaselineStallMs: the machine's own hiccups,
	// BaselineStallsOver50 of them longer than 50 ms).
	AnonymizeMs          float64 `json:"anonymizeMs,omitempty"`
	Scrubbed             bool    `json:"scrubbed,omitempty"`
	StallMs              float64 `json:"stallMs,omitempty"`
	BaselineStallMs      float64 `json:"baselineStallMs,omitempty"`
	BaselineStallsOver50 int     `json:"baselineStallsOver50,omitempty"`
	// WindowStallP50Ms and WindowStallP90Ms: the longest gap in windows as long as the
	// anonymization placed through the rest of the run, median and 90th percentile.
	WindowStallP50Ms float64 `json:"windowStallP50Ms,omitempty"`
	WindowStallP90Ms float64 `json:"windowStallP90Ms,omitempty"`
	// CPUMicrosPerOp is the CPU time this process spent per operation of the phase: the
	// client's, and in baseline mode the bare server's too, which runs in the same process.
	// ServerCPUMicrosPerOp is the server's, when its process id was given (--pid), counted in
	// hundredths of a second: 0 for a phase shorter than that. Both are measured on Linux only,
	// and left out (nil) where not measured.
	CPUMicrosPerOp       *float64 `json:"cpuMicrosPerOp,omitempty"`
	ServerCPUMicrosPerOp *float64 `json:"serverCpuMicrosPerOp,omitempty"`
	// Kinds breaks a phase down by kind of operation; a kind's Seconds is the time from its
	// first correct answer's request to its last one's answer.
	Kinds        []PhaseResult `json:"kinds,omitempty"`
	ErrorSamples []string      `json:"errorSamples,omitempty"`
}

// summarize merges the workers' recorders of a phase that ran for elapsed. A phase with more
// than one kind of operation also gets a per-kind breakdown, since their latencies differ.
func summarize(name string, elapsed time.Duration, recs []*recorder) PhaseResult {
	all := &series{}
	byKind := map[string]*series{}
	var samples []string
	for _, r := range recs {
		for kind, s := range r.kinds {
			k := byKind[kind]
			if k == nil {
				k = &series{}
				byKind[kind] = k
			}
			k.latencies = append(k.latencies, s.latencies...)
			k.errors += s.errors
			if !s.first.IsZero() {
				k.span(s.first, s.last)
			}
			all.latencies = append(all.latencies, s.latencies...)
			all.errors += s.errors
		}
		for _, m := range r.samples {
			if len(samples) < maxErrorSamples && !slices.Contains(samples, m) {
				samples = append(samples, m)
			}
		}
	}
	res := all.result(name, elapsed)
	res.ErrorSamples = samples
	if len(byKind) > 1 {
		for _, kind := range slices.Sorted(maps.Keys(byKind)) {
			k := byKind[kind]
			res.Kinds = append(res.Kinds, k.result(kind, k.last.Sub(k.first)))
		}
	}
	return res
}

func (s *series) result(name string, elapsed time.Duration) PhaseResult {
	slices.Sort(s.latencies)
	res := PhaseResult{
		Name:    name,
		Ops:     len(s.latencies) + s.errors,
		Errors:  s.errors,
		Seconds: elapsed.Seconds(),
		P50Ms:   ms(percentile(s.latencies, 50)),
		P95Ms:   ms(percentile(s.latencies, 95)),
		P99Ms:   ms(percentile(s.latencies, 99)),
		MaxMs:   ms(percentile(s.latencies, 100)),
	}
	if elapsed > 0 {
		res.OpsPerSec = float64(len(s.latencies)) / elapsed.Seconds()
	}
	return res
}

// percentile returns the nearest-rank p-th percentile of sorted: the smallest latency that at
// least p percent of the operations did not exceed. It is 0 for no operations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float noise (99.9/100*1000 = 999.0000000000001) from skipping a rank.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib formats a byte count for the text report.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
