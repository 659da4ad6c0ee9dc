// Package watch hands out, per tenant, a channel that the next commit appending to the tenant's
// trail closes: Store.Watch of every engine. A waiter holds no lock and costs nothing while it
// waits; a commit closes one channel whoever and however many wait on it.
package watch

import "sync"

// Set is the watches of one store.
type Set struct {
	mu     sync.Mutex
	m      map[string]chan struct{}
	closed bool
}

// Watch returns a channel closed by the next Notify of tenant, WakeAll or Close.
func (w *Set) Watch(tenant string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return closedChan
	}
	if w.m == nil {
		w.m = map[string]chan struct{}{}
	}
	ch := w.m[tenant]
	if ch == nil {
		ch = make(chan struct{})
		w.m[tenant] = ch
	}
	return ch
}

// Notify wakes tenant's watchers: a commit appended to its trail.
func (w *Set) Notify(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch := w.m[tenant]; ch != nil {
		close(ch)
		delete(w.m, tenant)
	}
}

// WakeAll wakes every watcher (spuriously for some: they read the trail again).
func (w *Set) WakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for t, ch := range w.m {
		close(ch)
		delete(w.m, t)
	}
}

// Close wakes every watcher for good: the store is closing, and later watches end at once.
func (w *Set) Close() {
	w.WakeAll()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()
