package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// hookReceiver takes every delivery, and notes the order changes first arrive in and how many
// deliveries were ever in flight at once.
type hookReceiver struct {
	mu        sync.Mutex
	inFlight  int
	maxFlight int
	bodies    map[string][]byte // webhook-id -> body
	order     []string          // webhook-ids, first receipt
	changed   []string          // a redelivery with another body
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.inFlight++
	h.maxFlight = max(h.maxFlight, h.inFlight)
	h.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	time.Sleep(2 * time.Millisecond) // long enough for a second deliverer to overlap
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	id := r.Header.Get("webhook-id")
	switch {
	case h.bodies[id] == nil:
		h.bodies[id] = body
		h.order = append(h.order, id)
	case !bytes.Equal(h.bodies[id], body):
		h.changed = append(h.changed, id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// cursors returns the cursors of the changes taken, in the order first taken.
func (h *hookReceiver) cursors(t *testing.T) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.order))
	for i, id := range h.order {
		var c struct{ Cursor string }
		if err := json.Unmarshal(h.bodies[id], &c); err != nil {
			t.Fatal(err)
		}
		out[i] = c.Cursor
	}
	return out
}

// TestReplicasWebhook: with two servers on one database, a webhook is delivered by one of them at
// a time (never two deliveries in flight), every change once in the feed's order; when the
// server delivering it stops, the other takes the lease over and goes on from where it stopped.
func TestReplicasWebhook(t *testing.T) {
	rcv := &hookReceiver{bodies: map[string][]byte{}}
	ts := httptest.NewServer(rcv)
	t.Cleanup(ts.Close)
	rs := startReplicas(t, pgtest.URL(t), 2, "SCIMSERVER_TOKEN="+replicaSCIM, "SCIMSERVER_PLATFORM_TOKEN="+replicaPlatform,
		"SCIMSERVER_ADMIN_TOKEN="+replicaAdmin, "SCIMSERVER_WEBHOOK_ALLOW_PRIVATE=true")
	code, hook := rs[0].do(replicaAdmin, "POST", "/api/v1/admin/tenants/default/webhooks", map[string]any{"url": ts.URL})
	if code != 201 {
		t.Fatalf("create the webhook: %d %v", code, hook)
	}
	start := hook["position"].(string)
	path := "/api/v1/admin/tenants/default/webhooks/" + hook["id"].(string)

	// feed reads the whole feed after start, through r.
	feed := func(r *replica) []string {
		var out []string
		for after := start; ; {
			code, page := r.do(replicaPlatform, "GET", "/api/v1/changes?limit=1000&after="+after, nil)
			if code != 200 {
				t.Fatalf("feed: %d %v", code, page)
			}
			changes := page["changes"].([]any)
			if len(changes) == 0 {
				return out
			}
			for _, c := range changes {
				out = append(out, c.(map[string]any)["cursor"].(string))
			}
			after = page["nextCursor"].(string)
		}
	}
	// delivered waits until the receiver holds the whole feed, and compares the two.
	delivered := func(r *replica, what string) {
		t.Helper()
		want := feed(r)
		for deadline := time.Now().Add(90 * time.Second); len(rcv.cursors(t)) < len(want); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d changes delivered within 90 s", what, len(rcv.cursors(t)), len(want))
			}
		}
		if got := rcv.cursors(t); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: delivered %v, the feed is %v", what, got, want)
		}
	}
	// holder asks r which server holds the webhook's lease.
	holder := func(r *replica) *replica {
		t.Helper()
		code, st := r.do(replicaAdmin, "GET", path, nil)
		if code != 200 {
			t.Fatalf("webhook state: %d %v", code, st)
		}
		for _, r := range rs {
			if strings.HasSuffix(fmt.Sprint(st["deliverer"]), strings.TrimPrefix(r.url, "http://")) {
				return r
			}
		}
		return nil
	}

	for i := range 20 {
		if code, body := rs[i%2].do(replicaSCIM, "POST", "/scim/v2/Users", replicaUser(fmt.Sprintf("hook%d@example.com", i))); code != 201 {
			t.Fatalf("create: %d %v", code, body)
		}
	}
	delivered(rs[0], "with both servers up")
	first := holder(rs[0])
	if first == nil {
		t.Fatal("no server holds the webhook's lease while delivering it")
	}
	other := rs[0]
	if first == rs[0] {
		other = rs[1]
	}
	first.stop()
	for i := range 20 {
		if code, body := other.do(replicaSCIM, "POST", "/scim/v2/Users", replicaUser(fmt.Sprintf("after%d@example.com", i))); code != 201 {
			t.Fatalf("create: %d %v", code, body)
		}
	}
	delivered(other, "after the delivering server stopped")
	if holder(other) != other {
		t.Error("the remaining server does not hold the lease")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.maxFlight != 1 {
		t.Errorf("%d deliveries were in flight at once: two servers delivered the webhook together", rcv.maxFlight)
	}
	if len(rcv.changed) > 0 {
		t.Errorf("changes redelivered with another body: %v", rcv.changed)
	}
}
