package postgres_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// proxy forwards loopback connections to the database until it is cut: then it drops every
// connection it carries and refuses new ones, as a database that went away would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestOutage: while the database is unreachable, Ping and writes fail as Unavailable within the
// connect timeout rather than hang, and watchers are woken (a commit meanwhile could not be
// heard); once it is back, the store recovers by itself.
func TestOutage(t *testing.T) {
	raw := pgtest.URL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	ctx := context.Background()
	s := postgres.OpenTenant(t, u.String(), postgres.Options{Collections: []*storage.Collection{storagetest.People},
		ConnectTimeout: time.Second})
	write := func() error {
		return s.Write(ctx, "t", func(tx storage.Tx) error {
			return tx.Append(storage.Event{Operation: "op", Outcome: "success"})
		})
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	w := s.Watch("t")

	p.cut()
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("losing the listening connection did not wake the watcher")
	}
	for name, op := range map[string]func() error{"Ping": func() error { return s.Ping(ctx) }, "Write": write} {
		began := time.Now()
		err := op()
		if storage.ErrorCode(err) != storage.Unavailable {
			t.Errorf("%s while the database is away: %v, want Unavailable", name, err)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("%s took %v to fail", name, took)
		}
		if err != nil && strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%s: the error names the connection: %q", name, err)
		}
	}

	p.restore()
	deadline := time.Now().Add(30 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not recover after the database came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := write(); err != nil {
		t.Fatalf("a write after recovery: %v", err)
	}
	// The listener is back too (it reconnects within about a second): a commit wakes a watcher.
	time.Sleep(3 * time.Second)
	w = s.Watch("t")
	if err := write(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("commits no longer wake watchers after the outage")
	}
}
