package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// client is the one HTTP client every worker of a run shares.
type client struct {
	base  string // SCIM base URL without a trailing slash
	token string
	http  *http.Client
}

// newClient tunes the transport for concurrency workers: with fewer idle connections than
// workers, Go closes and redials connections between requests and the run measures TCP
// handshakes instead of the server.
func newClient(base, token string, concurrency int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency
	tr.MaxIdleConnsPerHost = concurrency
	return &client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		http:  &http.Client{Transport: tr, Timeout: time.Minute},
	}
}

// response is one answer, read to its end: its latency covers the whole body.
type response struct {
	status  int
	body    []byte
	latency time.Duration
}

// do sends one request. body is marshalled by the caller so that encoding stays outside the
// measured time.
func (c *client) do(ctx context.Context, method, path string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: b, latency: time.Since(start)}, nil
}

// worker is one concurrent request loop of a phase: its own random source (so a seed gives the
// same choices whatever the scheduling) and its own recorder.
type worker struct {
	id  int
	rng *rand.Rand
	rec recorder
}

// call sends one request, checks its status and then its body with check (which may be nil),
// and records the outcome under kind. It reports whether the answer was correct. A request cut
// short by the run's cancellation is not recorded at all: it is neither an error nor a latency.
func (w *worker) call(ctx context.Context, c *client, kind, method, path string, body []byte, want int, check func([]byte) error) (response, bool) {
	r, err := c.do(ctx, method, path, body)
	if err == nil && r.status != want {
		err = fmt.Errorf("status %d, want %d: %s", r.status, want, snippet(r.body))
	}
	if err == nil && check != nil {
		err = check(r.body)
	}
	if err != nil {
		if ctx.Err() != nil {
			return r, false
		}
		w.rec.fail(kind, fmt.Errorf("%s %s: %w", method, path, err))
		return r, false
	}
	w.rec.ok(kind, r.latency)
	return r, true
}

// snippet shortens a body for an error message.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// SCIM shapes the checks read; only the attributes the tool sends or verifies.
type scimUser struct {
	ID          string `json:"id"`
	UserName    string `json:"userName"`
	ExternalID  string `json:"externalId"`
	DisplayName string `json:"displayName"`
	Active      *bool  `json:"active"`
	Name        struct {
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Lifecycle struct {
		ScrubbedAt string `json:"scrubbedAt"`
	} `json:"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User"`
}

type scimGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

// listResponse is a ListResponse. Resources is a pointer so a missing or null list is told
// apart from an empty one.
type listResponse[T any] struct {
	TotalResults *int `json:"totalResults"`
	StartIndex   int  `json:"startIndex"`
	ItemsPerPage int  `json:"itemsPerPage"`
	Resources    *[]T `json:"Resources"`
}

func decode[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode answer: %w: %s", err, snippet(b))
	}
	return v, nil
}

const (
	userURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	groupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchURN      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

func patchBody(ops ...patchOp) []byte {
	return mustJSON(map[string]any{"schemas": []string{patchURN}, "Operations": ops})
}

// mustJSON marshals values built by the tool itself, which always encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
