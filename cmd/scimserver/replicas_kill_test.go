package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// TestReplicaKilledUnderLoad SIGKILLs one of two replicas while clients create and PATCH users
// through both; a client whose request fails on the killed replica retries it on the other, as
// a load balancer's client would. Every write that was acknowledged must be there afterwards,
// and the database must check clean.
func TestReplicaKilledUnderLoad(t *testing.T) {
	data := pgtest.URL(t)
	rs := startReplicas(t, data, 2, "SCIMSERVER_TOKEN="+replicaSCIM)
	hc := &http.Client{Timeout: 10 * time.Second}
	send := func(r *replica, method, path string, body any) (int, map[string]any, error) {
		raw, _ := json.Marshal(body)
		req, err := http.NewRequest(method, r.url+path, bytes.NewReader(raw))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+replicaSCIM)
		req.Header.Set("Content-Type", "application/scim+json")
		res, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out, nil
	}

	type acked struct {
		id, userName, displayName string // displayName: the last PATCH acknowledged, if any
	}
	var mu sync.Mutex
	var acks []acked
	var retried int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				first, other := rs[(w+n)%2], rs[(w+n+1)%2]
				name := fmt.Sprintf("w%d-u%d@example.com", w, n)
				status, body, err := send(first, "POST", "/scim/v2/Users", replicaUser(name))
				if err != nil || status >= 500 {
					mu.Lock()
					retried++
					mu.Unlock()
					// The first attempt may have committed: a retry then finds the userName taken.
					status, body, err = send(other, "POST", "/scim/v2/Users", replicaUser(name))
				}
				if err != nil || status != http.StatusCreated {
					continue // not acknowledged: either way is right
				}
				a := acked{id: body["id"].(string), userName: name}
				patch := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "patched " + name}}}
				status, _, err = send(first, "PATCH", "/scim/v2/Users/"+a.id, patch)
				if err != nil || status >= 500 {
					status, _, err = send(other, "PATCH", "/scim/v2/Users/"+a.id, patch)
				}
				if err == nil && status == http.StatusOK {
					a.displayName = "patched " + name
				}
				mu.Lock()
				acks = append(acks, a)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := rs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-rs[0].done
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(acks) < 20 {
		t.Fatalf("only %d acknowledged creates: the load did not run", len(acks))
	}
	for _, a := range acks {
		status, body, err := send(rs[1], "GET", "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+a.userName+`"`), nil)
		res, _ := body["Resources"].([]any)
		if err != nil || status != 200 || len(res) != 1 {
			t.Errorf("an acknowledged create is missing after the kill: %d %v %v", status, body, err)
			continue
		}
		u := res[0].(map[string]any)
		if u["id"] != a.id || (a.displayName != "" && u["displayName"] != a.displayName) {
			t.Errorf("an acknowledged write is not as acknowledged: %v, want id %s displayName %q", u, a.id, a.displayName)
		}
	}
	if out, _, err := run(t, "check", "--data", data); err != nil || !strings.Contains(out, "is consistent") {
		t.Errorf("check after the kill: %v %s", err, out)
	}
	t.Logf("%d acknowledged creates verified, %d requests retried on the other replica", len(acks), retried)
}
