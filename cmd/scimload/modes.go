package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
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
	res := measured(0, func() PhaseResult {
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
		return p.result()
	})
	return &Report{Mode: "baseline", URL: c.base, Concurrency: concurrency, Phases: []PhaseResult{res}}, nil
}

// fsyncCommit is what one commit of the fsync mode writes.
type fsyncCommit struct {
	pages      int  // 0: one 4 KiB write and one fdatasync, the least a durable commit pays
	contiguous bool // the pages side by side instead of at random places
	log        bool // the pages appended in one write after the last commit's, one fdatasync
	span       int64
}

// place puts a commit's pages in a file of pages pages, in file order: page 0 stands for the
// meta page, the others go where bbolt's freelist would put them, anywhere (each page once, as
// in a bbolt commit) or side by side.
func (c fsyncCommit) place(offs []int64, rng *rand.Rand, pages int64) {
	const block = 4096
	k := int64(len(offs))
	if c.contiguous {
		first := 1 + rng.Int64N(pages-k)
		for i := range offs {
			offs[i] = (first + int64(i)) * block
		}
		return
	}
	// Floyd's sampling: k distinct pages of 1..pages-1 in O(k).
	taken := make(map[int64]bool, k)
	i := 0
	for j := pages - 1 - k; j < pages-1; j++ {
		p := rng.Int64N(j + 1)
		if taken[p] {
			p = j
		}
		taken[p] = true
		offs[i] = (1 + p) * block
		i++
	}
	slices.Sort(offs)
}

// runFsync measures the commit rate of one writer in dir. With pages 0 a commit is a 4 KiB
// write and an fdatasync: the ceiling of a single-writer store (bbolt). With pages n it is a
// commit as bbolt makes one: n pages at random places of a span already written (a data file's
// free pages; in file order, as bbolt writes them), an fdatasync, the meta page, an fdatasync;
// with log, as the server's commit log makes one: n pages in one write after the last
// commit's, an fdatasync.
func runFsync(ctx context.Context, dir string, duration time.Duration, c fsyncCommit) (*Report, error) {
	f, err := os.CreateTemp(dir, "scimload-fsync-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Writes go over a preallocated span, as bbolt rewrites pages of a file that has already
	// grown: the file size never changes, so fdatasync flushes data only.
	const block = 4096
	span := c.span / block * block
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < span; off += int64(len(chunk)) {
		if _, err := f.WriteAt(chunk[:min(int64(len(chunk)), span-off)], off); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	name := "fsync"
	if c.pages > 0 {
		name = fmt.Sprintf("commit-%d-pages", c.pages)
		if c.contiguous {
			name += "-contiguous"
		}
		if c.log {
			name = fmt.Sprintf("log-%d-pages", c.pages)
		}
	}
	p := newPhase(name, 1, 1)
	w := p.workers[0]
	buf := make([]byte, block)
	rng := rand.New(rand.NewPCG(1, 2))
	offs := make([]int64, c.pages)
	record, end := make([]byte, c.pages*block), int64(0)
	commit := func(off int64) error {
		if c.pages == 0 {
			if _, err := f.WriteAt(buf, off); err != nil {
				return err
			}
			return fdatasync(f)
		}
		if c.log {
			if end+int64(len(record)) > span {
				end = 0
			}
			if _, err := f.WriteAt(record, end); err != nil {
				return err
			}
			end += int64(len(record))
			return fdatasync(f)
		}
		c.place(offs, rng, span/block)
		for _, o := range offs {
			if _, err := f.WriteAt(buf, o); err != nil {
				return err
			}
		}
		if err := fdatasync(f); err != nil {
			return err
		}
		if _, err := f.WriteAt(buf, 0); err != nil {
			return err
		}
		return fdatasync(f)
	}
	deadline := time.Now().Add(duration)
	for off := int64(0); time.Now().Before(deadline) && ctx.Err() == nil; off = (off + block) % span {
		buf[0]++
		start := time.Now()
		if err := commit(off); err != nil {
			w.rec.fail("commit", err)
			break
		}
		w.rec.ok("commit", time.Since(start))
	}
	return &Report{Mode: "fsync", Dir: dir, Concurrency: 1, Phases: []PhaseResult{p.result()}}, nil
}
