package scimserver

import (
	"context"
	"net/http"
	"time"
)

// A listing that no index serves (a filter on an unindexed attribute, a sort by anything but
// the name) reads every record of the tenant in one read transaction. Such scans run under a
// budget, so that none holds a read transaction for long (a long read keeps freed pages from
// being reused, and so an erasure's scrub from finishing) and none works on for a client that
// has gone: at most MaxScans at a time, each for at most ScanTimeout.

// statusClientGone is what the log and the metrics record for an answer nobody received (the
// client went away, or the write timeout cut it): the convention of common proxies.
const statusClientGone = 499

var (
	errTooMany = badRequest("tooMany", "the query needs more reading than the server allows for one request (no index serves its filter or sort); "+
		"narrow it with an indexed filter (id, userName, externalId, emails or displayName eq) or drop sortBy")
	errScansBusy  = errorf(http.StatusTooManyRequests, "", "too many queries that no index serves are running; retry later, or use an indexed filter")
	errClientGone = errorf(statusClientGone, "", "the client went away before the answer was ready")
)

// scanSlots admits scans, at most cap(slots) at a time.
type scanSlots chan struct{}

// acquire waits up to wait for a slot: errScansBusy when none freed, errClientGone when the
// request ended first. Waiting holds no transaction.
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

// admitScan takes a scan slot for a query that reads records no index selects; release gives
// it back.
func (s *Server) admitScan(r *http.Request) (release func(), err error) {
	free, err := s.scans.acquire(r.Context(), s.opts.ScanTimeout)
	if err != nil {
		s.metrics.scanStopped(err)
		return nil, err
	}
	s.metrics.scansRunning.Inc()
	return func() {
		s.metrics.scansRunning.Dec()
		free()
	}, nil
}

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
