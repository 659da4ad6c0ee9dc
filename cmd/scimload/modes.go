package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// runBaseline serves a fixed body of size bytes from a bare net/http server and measures it with
// the same client and workers as a load run: the ceiling of the HTTP stack on this machine, to
// set GET /Users/{id} against.
func runBaseline(ctx context.Context, size, concurrency int, duration time.Duration) (*Report, error) {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'x'
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c := newClient("http://"+ln.Addr().String(), "", concurrency)
	p := newPhase("baseline", concurrency, 1)
	deadline := time.Now().Add(duration)
	p.spread(func(w *worker) {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			w.call(ctx, c, "get", http.MethodGet, "/", nil, http.StatusOK, func(b []byte) error {
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
