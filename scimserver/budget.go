package scimserver

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// A listing that no index serves (a filter on an unindexed attribute, a sort by anything but
// the name) reads every record of the tenant in one read transaction. Such scans run under a
// budget, so that none holds a read transaction for long (a long read keeps freed storage from
// being reused, and so an erasure's clearing from finishing) and none works on for a client that
// has gone: at most Options.MaxScans at a time, each for at most Options.ScanTimeout.

var (
	errTooMany = invalid("tooMany", "the query needs more reading than the server allows for one request (no index serves its filter or sort); "+
		"narrow it with an indexed filter (id, userName, externalId, emails or displayName eq) or drop sortBy")
	errScansBusy  = &Error{Code: Busy, Message: "too many queries that no index serves are running; retry later, or use an indexed filter"}
	errClientGone = &Error{Code: Canceled, Message: "the client went away before the answer was ready"}
)

// scanSlots admits scans, at most cap(slots) at a time.
type scanSlots chan struct{}

// acquire waits up to wait for a slot: errScansBusy when none freed, errClientGone when ctx
// ended first. Waiting holds no transaction.
func (s scanSlots) acquire(ctx context.Context, wait time.Duration) (release func(), err error) {
	release = func() { <-s }
	select {
	case s <- struct{}{}:
		return release, nil
	default:
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case s <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, errClientGone
	case <-timer.C:
		return nil, errScansBusy
	}
}

// ScanStats are the figures of bounded listings, for metrics.
type ScanStats struct {
	Running int64
	// Stopped counts listings stopped, by reason: "budget" (past the time allowed: 400
	// tooMany), "busy" (no slot freed in time: 429) and "gone" (the client went away).
	Stopped map[string]uint64
}

type scanCounters struct {
	running                 atomic.Int64
	budget, busy, cancelled atomic.Uint64
}

// ScanStats reads the figures of bounded listings.
func (s *Service) ScanStats() ScanStats {
	c := &s.scanCount
	return ScanStats{Running: c.running.Load(),
		Stopped: map[string]uint64{"budget": c.budget.Load(), "busy": c.busy.Load(), "gone": c.cancelled.Load()}}
}

// scanStopped counts a listing stopped by errTooMany, errScansBusy or errClientGone.
func (s *Service) scanStopped(err error) {
	switch err {
	case errTooMany:
		s.scanCount.budget.Add(1)
	case errScansBusy:
		s.scanCount.busy.Add(1)
	case errClientGone:
		s.scanCount.cancelled.Add(1)
	}
}

// admitScan takes a scan slot for a query that reads records no index selects; release gives
// it back.
func (s *Service) admitScan(ctx context.Context) (release func(), err error) {
	free, err := s.scans.acquire(ctx, s.opts.ScanTimeout)
	if err != nil {
		s.scanStopped(err)
		return nil, err
	}
	s.scanCount.running.Add(1)
	return func() {
		s.scanCount.running.Add(-1)
		free()
	}, nil
}

// defaultMaxScans is half the CPUs, at least one: scans never take every core from cheap
// requests.
func defaultMaxScans() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// budget bounds one scan: spend is called for every record read, and fails once the time
// allowed has passed or the client has gone.
type budget struct {
	ctx      context.Context
	deadline time.Time
	n        int
}

func newBudget(ctx context.Context, d time.Duration) *budget {
	return &budget{ctx: ctx, deadline: time.Now().Add(d)}
}

// spend counts one record; it looks at the clock and the request every 64, which costs
// nothing next to rendering them.
func (b *budget) spend() error {
	if b == nil {
		return nil
	}
	if b.n++; b.n%64 != 0 {
		return nil
	}
	if b.ctx.Err() != nil {
		return errClientGone
	}
	if time.Now().After(b.deadline) {
		return errTooMany
	}
	return nil
}
