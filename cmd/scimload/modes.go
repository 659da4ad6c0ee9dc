package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// runBaseline serves a fixed body of size bytes from a bare net/http server on addr and measures it with
// the same client and workers as a load run: the ceiling of the HTTP stack on this machine, to
// set GET /Users/{id} against. With post, the client sends the create phase's user bodies, which
// the handler reads to the end before it answers 201: the ceiling to set POST /Users against.
func runBaseline(ctx context.Context, addr string, size, concurrency int, duration time.Duration, post bool) (*Report, error) {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'x'
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	status := http.StatusOK
	if post {
		status = http.StatusCreated
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/scim+json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(status)
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c := newClient("http://"+ln.Addr().String(), "", concurrency)
	name := "baseline"
	if post {
		name = "baseline-post"
	}
	p := newPhase(name, concurrency, 1)
	deadline := time.Now().Add(duration)
	var sent atomic.Int64
	p.spread(func(w *worker) {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			kind, method, req := "get", http.MethodGet, []byte(nil)
			if post {
				i := int(sent.Add(1))
				u := user{userName: fmt.Sprintf("scimload-baseline-%07d@example.com", i), externalID: newGUID()}
				kind, method, req = "post", http.MethodPost, mustJSON(userBody(u, i))
			}
			w.call(ctx, c, kind, method, "/", req, status, func(b []byte) error {
				if len(b) != size {
					return fmt.Errorf("%d bytes, want %d", len(b), size)
				}
				return nil
			})
		}
	})
	return &Report{Mode: "baseline", URL: c.base, Concurrency: concurrency, Phases: []PhaseResult{p.result()}}, nil
}

// runFsync measures the commit ceiling of one writer in dir: a 4 KiB write and an fdatasync
// per commit, the least a durable single-writer store (bbolt) pays for each acknowledged write.
func runFsync(ctx context.Context, dir string, duration time.Duration) (*Report, error) {
	f, err := os.CreateTemp(dir, "scimload-fsync-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Writes go over a preallocated span, as bbolt rewrites pages of a file that has already
	// grown: the file size never changes, so fdatasync flushes data only.
	const block, span = 4096, 1 << 20
	if _, err := f.Write(make([]byte, span)); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	p := newPhase("fsync", 1, 1)
	w := p.workers[0]
	buf := make([]byte, block)
	deadline := time.Now().Add(duration)
	for off := int64(0); time.Now().Before(deadline) && ctx.Err() == nil; off = (off + block) % span {
		buf[0]++
		start := time.Now()
		_, err := f.WriteAt(buf, off)
		if err == nil {
			err = fdatasync(f)
		}
		if err != nil {
			w.rec.fail("commit", err)
			break
		}
		w.rec.ok("commit", time.Since(start))
	}
	return &Report{Mode: "fsync", Dir: dir, Concurrency: 1, Phases: []PhaseResult{p.result()}}, nil
}
