package httpapi

import (
	"bytes"
	"context"
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

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// testEnv is a real server over a real store (a bbolt file, or a PostgreSQL schema on the
// package's second pass), reached through real HTTP.
type testEnv struct {
	t      *testing.T
	store  storage.Store
	svc    *scimserver.Service
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
	return newEnvWith(t, path, Options{})
}

// newEnvWith is newEnvAt with server options (the logger is the test's).
func newEnvWith(t *testing.T, path string, opts Options) *testEnv {
	t.Helper()
	return newEnvService(t, path, scimserver.Options{}, opts)
}

// newEnvService is newEnvWith with the service's options too and, when serve is given, a
// chance to configure the HTTP server before it starts.
func newEnvService(t *testing.T, path string, svcOpts scimserver.Options, opts Options, serve ...func(*http.Server)) *testEnv {
	t.Helper()
	store, svc := openServiceWith(t, path, svcOpts)
	logs := &lockedWriter{w: &bytes.Buffer{}}
	opts.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	s, err := New(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s)
	for _, fn := range serve {
		fn(hs.Config)
	}
	hs.Start()
	e := &testEnv{t: t, store: store, svc: svc, srv: hs, token: testToken, logs: logs, server: s}
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

// testActor is who the trail names for changes the tests make through the service directly.
var testActor = scimserver.Actor{ID: "test", Name: "test"}

// bg is the context of changes the tests make through the service directly.
var bg = context.Background()

// openService opens (creating) a data file with the test tokens bootstrapped; the caller
// closes the store.
func openService(t testing.TB, path string) (storage.Store, *scimserver.Service) {
	t.Helper()
	return openServiceWith(t, path, scimserver.Options{})
}

// onPostgres is set for the package's second pass (TestMain): every store is then a PostgreSQL
// schema, one per data file path, so that opening a path again opens what it held.
var onPostgres bool

var pgSchemas = struct {
	sync.Mutex
	m map[string]string // data file path -> URL of its schema
}{m: map[string]string{}}

func openStore(t testing.TB, path string) (storage.Store, error) {
	t.Helper()
	if !onPostgres {
		return bolt.Open(path, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	}
	pgSchemas.Lock()
	url := pgSchemas.m[path]
	if url == "" {
		url = pgtest.URL(t)
		pgSchemas.m[path] = url
	}
	pgSchemas.Unlock()
	return postgres.Open(bg, url, postgres.Options{Collections: scimserver.Collections()})
}

// boltOnly skips t on the PostgreSQL pass: what it checks is a property of the bbolt file.
func boltOnly(t testing.TB, what string) {
	t.Helper()
	if onPostgres {
		t.Skip("bbolt only: " + what)
	}
}

// bolt is the test's bbolt store; the test is skipped on the PostgreSQL pass.
func (e *testEnv) bolt(what string) *bolt.Store {
	e.t.Helper()
	boltOnly(e.t, what)
	return e.store.(*bolt.Store)
}

// checkStore runs the engine's consistency check.
func checkStore(t testing.TB, s storage.Store) []string {
	t.Helper()
	var problems []string
	var err error
	switch s := s.(type) {
	case *bolt.Store:
		problems, err = s.Check()
	case *postgres.Store:
		problems, err = s.Check(bg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

func openServiceWith(t testing.TB, path string, opts scimserver.Options) (storage.Store, *scimserver.Service) {
	t.Helper()
	store, err := openStore(t, path)
	if err != nil {
		t.Fatal(err)
	}
	opts.SharedStore = opts.SharedStore || onPostgres // as the server runs on PostgreSQL
	svc := scimserver.New(store, opts)
	if err := svc.Bootstrap(bg, scimserver.EnvTokens{SCIM: testToken, Platform: testPlatformToken}, nil); err != nil {
		store.Close()
		t.Fatal(err)
	}
	return store, svc
}

// The collections of the service's kinds, for tests that read the store directly.
var (
	users  = scimserver.Users().Collection
	groups = scimserver.Groups().Collection
)

// trailOf reads a tenant's whole audit trail, oldest first.
func trailOf(t testing.TB, s storage.Store, tenant string) []storage.Event {
	t.Helper()
	var out []storage.Event
	err := s.Read(bg, tenant, func(tx storage.Tx) error {
		return tx.Events(0, func(ev storage.Event) (bool, error) { out = append(out, ev); return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// putRecord stores a document directly, as the service would store it, and returns its id.
func putRecord(tx storage.Tx, c *storage.Collection, doc map[string]any) (string, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	r, err := tx.Insert(c, storage.Record{ID: storage.NewID(), Doc: raw, Keys: c.KeysOf(doc)})
	return r.ID, err
}

// putGroup stores a group with user members directly and returns its id.
func putGroup(tx storage.Tx, name string, members []string) (string, error) {
	gid, err := putRecord(tx, groups, map[string]any{"displayName": name})
	if err != nil {
		return "", err
	}
	for _, id := range members {
		if err := tx.AddMember(gid, storage.Member{Value: id, Type: "User"}); err != nil {
			return "", err
		}
	}
	return gid, nil
}

// asList reads a decoded JSON value as a list: nil as none, a single value as one.
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}
