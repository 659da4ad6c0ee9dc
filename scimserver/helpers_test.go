package scimserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/storage"
)

// testEnv is a real server over a real bbolt file, reached through real HTTP.
type testEnv struct {
	t      *testing.T
	store  *storage.Store
	srv    *httptest.Server
	token  string
	logs   *lockedWriter
	server *Server
	sent   atomic.Int64 // requests answered through doAs
}

const (
	testToken         = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"
	testPlatformToken = "platform-token-0123456789abcdefghijklmnopqrstuvwxyz"
)

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "data.db"))
}

func newEnvAt(t *testing.T, path string) *testEnv {
	t.Helper()
	return newEnvWith(t, path, Options{}, nil)
}

// newEnvWith is newEnvAt with server options (the logger is the test's own) and, when serve is
// not nil, a chance to configure the HTTP server before it starts.
func newEnvWith(t *testing.T, path string, opts Options, serve func(*http.Server)) *testEnv {
	t.Helper()
	store, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Bootstrap(storage.EnvTokens{SCIM: testToken, Platform: testPlatformToken}, nil); err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	opts.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	s, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s)
	if serve != nil {
		serve(hs.Config)
	}
	hs.Start()
	e := &testEnv{t: t, store: store, srv: hs, token: testToken, logs: logs, server: s}
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) close() {
	if e.srv != nil {
		e.srv.Close()
		e.store.Close()
		e.srv = nil
	}
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// do sends a request; body may be nil, a string (sent as is) or anything JSON-encodable.
func (e *testEnv) do(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	return e.doAs(e.token, method, path, body, headers...)
}

func (e *testEnv) doAs(token, method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	e.sent.Add(1)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, raw)
		}
	}
	if res.StatusCode >= 400 {
		e.t.Helper()
		checkErrorBody(e.t, method+" "+path, out)
	}
	return out
}

// checkErrorBody asserts that a non-2xx answer is a SCIM error with a matching status.
func checkErrorBody(t *testing.T, what string, r resp) {
	t.Helper()
	schemas, _ := r.body["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
		t.Errorf("%s: error body without the Error schema: %s", what, r.raw)
	}
	if r.body["status"] != strconv.Itoa(r.status) {
		t.Errorf("%s: error body status %v, HTTP status %d", what, r.body["status"], r.status)
	}
	if d, _ := r.body["detail"].(string); d == "" {
		t.Errorf("%s: error body without detail", what)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error Content-Type %q", what, ct)
	}
}

// must asserts the status and returns the body.
func (r resp) must(t *testing.T, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r.body
}

// path walks a decoded JSON value by keys and indexes: get(m, "name", "givenName").
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

// lockedWriter serialises writes to the captured log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// logText is everything the server logged so far. The server logs a request once the answer
// is out (so that the line can say whether it was delivered), a moment after the client has
// it: this waits for a line per request sent through doAs.
func (e *testEnv) logText() string {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		e.logs.mu.Lock()
		text := e.logs.w.(*bytes.Buffer).String()
		e.logs.mu.Unlock()
		if int64(strings.Count(text, `"message":"request"`)) >= e.sent.Load() || time.Now().After(deadline) {
			return text
		}
	}
}

// api calls the platform API with the platform token.
func (e *testEnv) api(method, path string, body any) resp {
	e.t.Helper()
	return e.doAs(testPlatformToken, method, path, body)
}

// testActor is who the trail names for changes the tests make directly in the store.
var testActor = storage.Actor{ID: "test", Name: "test"}
