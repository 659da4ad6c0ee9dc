package scimserver

import (
	"sync"
	"sync/atomic"
	"time"
)

// tokenUses remembers when each token last authenticated. It is kept in memory only: writing a
// timestamp to the data file on every request would add a commit (and an fsync) to every read.
// After a restart, and on each replica of a scaled-out deployment, it starts from nothing.
type tokenUses struct {
	m sync.Map // token id -> *atomic.Int64 (Unix nanoseconds)
}

// useResolution is how finely last use is tracked: a token in steady use updates its time once
// per interval, not on every request.
const useResolution = time.Second

func (u *tokenUses) touch(id string, now time.Time) {
	v, ok := u.m.Load(id)
	if !ok {
		v, _ = u.m.LoadOrStore(id, new(atomic.Int64))
	}
	last := v.(*atomic.Int64)
	n := now.UnixNano()
	if old := last.Load(); n-old >= int64(useResolution) {
		last.CompareAndSwap(old, n)
	}
}

// TokenLastUsed is when the token last authenticated since this process started (to the
// second), or nil when it has not.
func (s *Service) TokenLastUsed(id string) *time.Time {
	v, ok := s.uses.m.Load(id)
	if !ok {
		return nil
	}
	t := time.Unix(0, v.(*atomic.Int64).Load()).UTC().Truncate(useResolution) // no finer than it is kept
	return &t
}
