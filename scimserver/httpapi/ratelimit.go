package httpapi

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// failureLimiter slows down guessing: each client address has a bucket of failed
// authentications that refills over time. A client whose bucket is empty gets 429 with
// Retry-After for every further bad token. A valid token is always served, so one misbehaving
// client cannot lock out others that share its address (an identity provider's egress).
type failureLimiter struct {
	mu      sync.Mutex
	burst   float64
	refill  time.Duration // time to regain one failure
	clients map[string]*failureBucket
	now     func() time.Time
}

type failureBucket struct {
	left float64
	last time.Time
}

const maxTrackedClients = 100_000

func newFailureLimiter(burst int, refill time.Duration) *failureLimiter {
	return &failureLimiter{burst: float64(burst), refill: refill, clients: map[string]*failureBucket{}, now: time.Now}
}

// fail records a failed authentication from addr; it returns how long the client must wait,
// or 0 while it still has failures left.
func (l *failureLimiter) fail(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[addr]
	if b == nil {
		if len(l.clients) >= maxTrackedClients {
			l.clients = map[string]*failureBucket{} // bounded memory; forgetting only forgives
		}
		b = &failureBucket{left: l.burst, last: now}
		l.clients[addr] = b
	}
	b.left = math.Min(l.burst, b.left+float64(now.Sub(b.last))/float64(l.refill))
	b.last = now
	if b.left >= 1 {
		b.left--
		return 0
	}
	return time.Duration((1 - b.left) * float64(l.refill))
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
