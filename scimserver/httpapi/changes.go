package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// GET /api/v1/changes: the tenant's change feed (scimserver/feed.go) for platform-scope tokens,
// as pages of JSON (with an optional long poll), or as a stream of Server-Sent Events when the
// client accepts text/event-stream. Requests that wait — long polls and streams — are capped per
// tenant, end when the server shuts down, and extend their connection's write deadline, so that
// the server's write timeout does not cut them short (net/http lifts the read deadline itself
// once a request without a body is read).

const (
	defaultChangesLimit = 100
	defaultMaxWait      = 60 * time.Second
	defaultMaxWaiters   = 32
	defaultHeartbeat    = 15 * time.Second
	// writeGrace is how long past the wait a response may take to write.
	writeGrace = 10 * time.Second
)

// changePage is the JSON answer of the feed.
type changePage struct {
	Changes    []scimserver.Change `json:"changes"`
	NextCursor string              `json:"nextCursor"`
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stream := acceptsEventStream(r)
	limit := defaultChangesLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > scimserver.MaxChanges {
			writeError(w, r, badRequest("invalidValue", "limit must be an integer from 1 to "+strconv.Itoa(scimserver.MaxChanges)))
			return
		}
		limit = n
	}
	wait, err := s.waitParam(q.Get("wait"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	raw, given := q.Get("after"), q.Has("after")
	if id := r.Header.Get("Last-Event-ID"); stream && id != "" {
		raw, given = id, true // a reconnecting stream resumes where it was
	}
	tenant := tenantOf(r)
	var after uint64
	if given {
		if after, err = scimserver.ParseCursor(strings.TrimSpace(raw)); err != nil {
			writeError(w, r, err)
			return
		}
	} else if after, err = s.svc.Head(r.Context(), tenant); err != nil {
		writeError(w, r, err)
		return
	}
	if !stream && wait == 0 && !given {
		writeJSON(w, http.StatusOK, changePage{Changes: []scimserver.Change{}, NextCursor: scimserver.FormatCursor(after)})
		return
	}
	if stream || wait > 0 {
		if !s.waiters.acquire(tenant) {
			w.Header().Set("Retry-After", "1")
			writeError(w, r, errorf(http.StatusTooManyRequests, "", "too many requests are waiting on this tenant's change feed; retry later"))
			return
		}
		defer s.waiters.release(tenant)
		kind := feedKindPoll
		if stream {
			kind = feedKindStream
		}
		waiting := s.metrics.feedWaiting.WithLabelValues(kind)
		waiting.Inc()
		defer waiting.Dec()
	}
	ctx, cancel := s.untilDrained(r.Context())
	defer cancel()
	if stream {
		s.streamChanges(ctx, w, r, after, limit)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + writeGrace))
	page, err := s.svc.WaitChanges(ctx, tenant, after, limit, wait)
	if err != nil {
		writeFeedError(w, r, err)
		return
	}
	if page.Changes == nil {
		page.Changes = []scimserver.Change{}
	}
	s.metrics.feedSent.WithLabelValues(feedKindPage).Add(float64(len(page.Changes)))
	writeJSON(w, http.StatusOK, changePage{Changes: page.Changes, NextCursor: scimserver.FormatCursor(page.Next)})
}

// waitParam reads wait: a duration ("30s") or a number of seconds, capped at the maximum.
func (s *Server) waitParam(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		if nerr != nil || !(n >= 0 && n <= 1e6) { // NaN too
			return 0, badRequest("invalidValue", `wait must be a duration such as "30s" or a non-negative number of seconds`)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 {
		return 0, badRequest("invalidValue", "wait must not be negative")
	}
	return min(d, s.opts.FeedMaxWait), nil
}

// acceptsEventStream reports whether the client asks for Server-Sent Events.
func acceptsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// writeFeedError answers a feed error; a cursor the feed cannot resume from (410) also names the
// oldest cursor it can.
func writeFeedError(w http.ResponseWriter, r *http.Request, err error) {
	var gone *scimserver.CursorGoneError
	if errors.As(err, &gone) {
		writeErrorWith(w, r, err, map[string]any{"oldestCursor": scimserver.FormatCursor(gone.Oldest)})
		return
	}
	writeError(w, r, err)
}

// streamChanges serves the feed as Server-Sent Events from after: each change is an event
// "change" whose id is its cursor, so a client that reconnects with Last-Event-ID resumes
// after the last change it received. While nothing happens, a heartbeat every FeedHeartbeat
// carries the current cursor as an id-only message (past changes the feed leaves out) and keeps
// proxies from closing the connection. The stream ends when the token stops being valid, when
// the server shuts down, or when the client goes. Each read of the feed takes up to limit
// changes, which are written and flushed together.
func (s *Server) streamChanges(ctx context.Context, w http.ResponseWriter, r *http.Request, after uint64, limit int) {
	tenant := tenantOf(r)
	// The first read happens before the answer starts, so that a cursor the feed cannot resume
	// from is still answered with a status and an error body.
	page, err := s.svc.Changes(ctx, tenant, after, limit)
	if err != nil {
		writeFeedError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	secret, _ := bearer(r)
	var buf []byte
	for {
		buf = buf[:0]
		for _, c := range page.Changes {
			data, err := json.Marshal(c)
			if err != nil {
				setErr(r, err)
				return
			}
			buf = fmt.Appendf(buf, "id: %s\nevent: change\ndata: %s\n\n", c.Cursor, data)
		}
		if len(page.Changes) == 0 {
			buf = fmt.Appendf(buf, ": heartbeat\nid: %s\n\n", scimserver.FormatCursor(page.Next))
		}
		after = page.Next
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.FeedHeartbeat + writeGrace))
		if _, err := w.Write(buf); err != nil {
			return // the client went
		}
		s.metrics.feedSent.WithLabelValues(feedKindStream).Add(float64(len(page.Changes)))
		if err := rc.Flush(); err != nil || ctx.Err() != nil {
			return
		}
		// A revoked token or a disabled tenant ends the stream, as it would refuse a request.
		if tok, err := s.svc.Authenticate(ctx, secret); err != nil || !scimserver.HasScope(tok, scimserver.ScopePlatform) {
			_, _ = w.Write([]byte("event: error\ndata: {\"status\":\"401\",\"detail\":\"the token is no longer valid\"}\n\n"))
			_ = rc.Flush()
			return
		}
		if page, err = s.svc.WaitChanges(ctx, tenant, after, limit, s.opts.FeedHeartbeat); err != nil {
			setErr(r, err)
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// untilDrained is ctx, also cancelled when the server drains (Drain).
func (s *Server) untilDrained(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.drained, cancel)
	return ctx, func() { stop(); cancel() }
}

// Drain ends every long poll and event stream: they answer with what they have. Call it when
// the HTTP server shuts down (http.Server.RegisterOnShutdown), which otherwise waits for them.
func (s *Server) Drain() { s.drain() }

// waiters counts, per tenant, the requests waiting on the feed.
type waiters struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

func (w *waiters) acquire(tenant string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[tenant] >= w.max {
		return false
	}
	w.n[tenant]++
	return true
}

func (w *waiters) release(tenant string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[tenant]--; w.n[tenant] <= 0 {
		delete(w.n, tenant)
	}
}
