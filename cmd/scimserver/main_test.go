package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/bolt"
)

// run executes the real command tree with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRoot()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestTenantAndTokenCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d.db")
	if _, _, err := run(t, "tenant", "create", "acme", "--name", "Acme Corp", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "tenant", "list", "--data", data)
	if err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "Acme Corp") {
		t.Fatalf("tenant list: %q %v", out, err)
	}
	if _, _, err := run(t, "tenant", "create", "Bad Id!", "--data", data); err == nil {
		t.Fatal("invalid tenant id accepted")
	}
	secret, stderr, err := run(t, "token", "create", "--tenant", "acme", "--name", "okta", "--data", data)
	secret = strings.TrimSpace(secret)
	if err != nil || !strings.HasPrefix(secret, "scim_") || !strings.Contains(stderr, "shown only this once") {
		t.Fatalf("token create: %q %q %v", secret, stderr, err)
	}
	out, _, err = run(t, "token", "list", "--tenant", "acme", "--data", data)
	if err != nil || !strings.Contains(out, "okta") || strings.Contains(out, secret) || !strings.Contains(out, "active") {
		t.Fatalf("token list: %q %v", out, err)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if _, _, err := run(t, "token", "revoke", id, "--data", data); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = run(t, "token", "list", "--data", data); !strings.Contains(out, "revoked") {
		t.Fatalf("after revoke: %q", out)
	}
	if _, _, err := run(t, "token", "create", "--tenant", "acme", "--scope", "root", "--data", data); err == nil {
		t.Fatal("unknown scope accepted")
	}
	if _, _, err := run(t, "tenant", "create", "--data", data); err == nil {
		t.Fatal("missing argument accepted")
	} else if _, ok := err.(usageError); !ok {
		t.Fatalf("missing argument is not a usage error: %T", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeBootstrapsAndShutsDown starts the real serve command: it prints a token once,
// answers with it, and stops cleanly when its context ends; a second start prints no token and
// the first token still works.
func TestServeBootstrapsAndShutsDown(t *testing.T) {
	data := filepath.Join(t.TempDir(), "sub", "d.db")
	p := startServe(t, data)
	var token string
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "scim_") {
			token = s
		}
	}
	if token == "" {
		t.Fatalf("no token printed: %s", p.stderr)
	}
	if code := p.status(t, "/scim/v2/Users", token); code != 200 {
		t.Fatalf("with the printed token: %d", code)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(p.stderr.String(), `"stopped"`) {
		t.Fatalf("no clean stop logged: %s", p.stderr)
	}
	p = startServe(t, data)
	if strings.Contains(p.stderr.String(), "scim_") {
		t.Fatal("a second start printed a token again")
	}
	if code := p.status(t, "/scim/v2/Users", token); code != 200 {
		t.Fatalf("token after restart: %d", code)
	}
}

func TestCheckCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d.db")
	if _, _, err := run(t, "tenant", "create", "acme", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "check", "--data", data)
	if err != nil || !strings.Contains(out, "is consistent") {
		t.Fatalf("check: %q %v", out, err)
	}
	if _, _, err := run(t, "check", "--data", filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Fatal("check of a missing file succeeded")
	}
}

// seedUser stores one user with personal values directly in the data file.
func seedUser(t *testing.T, data string) string {
	t.Helper()
	s, err := bolt.Open(data, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc := scimserver.New(s, scimserver.Options{})
	if err := svc.Bootstrap(context.Background(), scimserver.EnvTokens{}, nil); err != nil {
		t.Fatal(err)
	}
	id, err := svc.Create(context.Background(), scimserver.DefaultTenant, scimserver.Actor{ID: "seed"}, svc.Users(),
		[]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cli.person@example.com","name":{"givenName":"Clio"},"externalId":"x-77"}`))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAnonymizeCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d.db")
	id := seedUser(t, data)
	cmd := newRoot()
	var out bytes.Buffer
	cmd.SetArgs([]string{"anonymize", "--user", id, "--data", data})
	cmd.SetIn(strings.NewReader("no\n"))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); err == nil || !strings.Contains(out.String(), "will erase: externalId, name, userName") {
		t.Fatalf("unconfirmed anonymize: %v %q", err, out.String())
	}
	// By userName (as users show takes it): the prompt names the id to type.
	cmd = newRoot()
	out.Reset()
	cmd.SetArgs([]string{"anonymize", "--user", "CLI.person@example.com", "--data", data})
	cmd.SetIn(strings.NewReader(id + "\n"))
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "Type the user's id ("+id+") to confirm") ||
		!strings.Contains(out.String(), "user "+id+" anonymized at") {
		t.Fatalf("confirmed anonymize: %v %q", err, out.String())
	}
	if out, _, err := run(t, "anonymize", "--user", id, "--yes", "--data", data); err != nil || !strings.Contains(out, "already anonymized") {
		t.Fatalf("repeat: %v %q", err, out)
	}
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"cli.person@example.com", "Clio", "x-77"} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the data file still holds %q", v)
		}
	}
	if _, _, err := run(t, "anonymize", "--data", data); err == nil {
		t.Fatal("anonymize without --user succeeded")
	}
}

func TestAuditExportAndCompact(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d.db")
	seedUser(t, data)
	out, _, err := run(t, "audit", "export", "--data", data)
	// The first start's tenant-create and token-create, then the user's create.
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"operation":"create"`) || strings.Contains(out, "cli.person") {
		t.Fatalf("ndjson export: %v %q", err, out)
	}
	file := filepath.Join(t.TempDir(), "trail.csv")
	if _, _, err := run(t, "audit", "export", "--format", "csv", "--out", file, "--data", data); err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(file)
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "seq,time,tenant") ||
		!strings.HasSuffix(lines[0], ",relatedType,version") || !strings.HasSuffix(lines[3], ",1") {
		t.Fatalf("csv export: %q", csv)
	}
	if _, _, err := run(t, "audit", "export", "--format", "xml", "--data", data); err == nil {
		t.Fatal("unknown format accepted")
	}
	if out, _, err := run(t, "compact", "--data", data); err != nil || !strings.Contains(out, "compacted") {
		t.Fatalf("compact: %v %q", err, out)
	}
	if out, _, err := run(t, "check", "--data", data); err != nil || !strings.Contains(out, "is consistent") {
		t.Fatalf("check after compact: %v %q", err, out)
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and returns a pool trusting it.
func writeSelfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scimserver test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS serves HTTPS with a certificate made in the test: the SCIM API answers over
// TLS 1.2+ and plain HTTP is not served on that port.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	addr := testtool.FreeAddr(t)
	t.Setenv("SCIMSERVER_TOKEN", "tls-token-0123456789abcdefghijklmnopqrstuvwxyz")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRoot()
	cmd.SetArgs([]string{"--addr", addr, "--data", filepath.Join(dir, "d.db"), "--tls-cert", certFile, "--tls-key", keyFile})
	cmd.SetErr(&syncBuffer{})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "https://"+addr+"/scim/v2/ServiceProviderConfig", nil)
		req.Header.Set("Authorization", "Bearer tls-token-0123456789abcdefghijklmnopqrstuvwxyz")
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 200 || res.TLS == nil {
				t.Fatalf("over TLS: %d", res.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
	if _, _, err := run(t, "--tls-cert", certFile, "--data", filepath.Join(dir, "x.db")); err == nil {
		t.Fatal("--tls-cert without --tls-key accepted")
	}
}

// testActor is who the trail names for changes the tests make directly in the store.
var testActor = scimserver.Actor{ID: "test", Name: "test"}

// TestGCDefaults: the server's GC settings apply unless GOGC and GOMEMLIMIT say otherwise.
func TestGCDefaults(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != memoryLimit {
		t.Errorf("memory limit %d, want %d", got, memoryLimit)
	}
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: memory limit %d, want it left alone", got)
	}
}

// TestServeEndsFeedWaitersOnStop: a stop does not wait for long polls and event streams: they
// answer (the poll with an empty page, the stream by ending) and the server stops well within
// its shutdown timeout.
func TestServeEndsFeedWaitersOnStop(t *testing.T) {
	const platform = "serve-test-platform-token-0123456789abcdef"
	t.Setenv("SCIMSERVER_PLATFORM_TOKEN", platform)
	p := startServe(t, filepath.Join(t.TempDir(), "d.db"), "--feed-max-wait", "1h", "--shutdown-timeout", "20s")
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/changes", nil)
	req.Header.Set("Authorization", "Bearer "+platform)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("stream: %v %v", stream, err)
	}
	defer stream.Body.Close()
	poll := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/changes?wait=1h", nil)
		req.Header.Set("Authorization", "Bearer "+platform)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			poll <- err.Error()
			return
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		poll <- fmt.Sprint(res.StatusCode, " ", string(raw))
	}()
	time.Sleep(200 * time.Millisecond) // the poll is waiting
	if err := p.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if got := <-poll; !strings.HasPrefix(got, `200 {"changes":[],"nextCursor":"`) {
		t.Fatalf("the long poll at the stop: %s", got)
	}
	if _, err := io.ReadAll(stream.Body); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
	if log := p.stderr.String(); strings.Contains(log, "did not finish in time") || !strings.Contains(log, `"stopped"`) {
		t.Fatalf("stop: %s", log)
	}
}
