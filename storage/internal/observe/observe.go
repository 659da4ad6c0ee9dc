// Package observe keeps the functions a store calls after each commit (storage.Instrumented's
// ObserveCommits), for every engine.
package observe

import (
	"sync"
	"sync/atomic"

	"github.com/scimserver/scimserver/storage"
)

// Commits is a store's commit observers. Adding one may happen at any time, also while writes
// run; calling them takes no lock.
type Commits struct {
	mu  sync.Mutex // serialises Add
	fns atomic.Pointer[[]func(storage.Commit)]
}

// Add has fn called after each commit with its figures.
func (c *Commits) Add(fn func(storage.Commit)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fns []func(storage.Commit)
	if old := c.fns.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, fn)
	c.fns.Store(&fns)
}

// Observe calls the observers with a commit's figures.
func (c *Commits) Observe(commit storage.Commit) {
	if fns := c.fns.Load(); fns != nil {
		for _, fn := range *fns {
			fn(commit)
		}
	}
}
