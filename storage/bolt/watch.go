package bolt

import "sync"

// watchers hand out, per tenant, a channel that the next commit appending to the tenant's trail
// closes. A waiter holds no lock and costs nothing while it waits; a commit closes one channel
// whoever and however many wait on it.
type watchers struct {
	mu     sync.Mutex
	m      map[string]chan struct{}
	closed bool
}

func newWatchers() *watchers { return &watchers{m: map[string]chan struct{}{}} }

// Watch returns a channel closed after the next commit that appends to tenant's trail, or when
// the store closes.
func (s *Store) Watch(tenant string) <-chan struct{} { return s.watchers.watch(tenant) }

func (w *watchers) watch(tenant string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return closedChan
	}
	ch := w.m[tenant]
	if ch == nil {
		ch = make(chan struct{})
		w.m[tenant] = ch
	}
	return ch
}

// notify wakes tenant's watchers; runs after a commit, on the writer goroutine.
func (w *watchers) notify(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch := w.m[tenant]; ch != nil {
		close(ch)
		delete(w.m, tenant)
	}
}

// close wakes every watcher for good: the store is closing.
func (w *watchers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for t, ch := range w.m {
		close(ch)
		delete(w.m, t)
	}
	w.closed = true
}

var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()
