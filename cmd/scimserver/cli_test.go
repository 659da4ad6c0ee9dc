package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage/bolt"
)

// TestCommandLineMistakes: every unknown command, subcommand or argument and every invalid flag
// value is a usage error (exit code 2) on one line, with a suggestion where one is close, and
// touches no data file.
func TestCommandLineMistakes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d", "data.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "creat", "acme"}, `unknown command "creat" for "scimserver tenant"; did you mean "create"?`},
		{[]string{"tokn", "list"}, `unknown command "tokn" for "scimserver"; did you mean "token"?`},
		{[]string{"bogus"}, `unknown command "bogus" for "scimserver" (see scimserver --help)`},
		{[]string{"users", "shw", "x"}, `did you mean "show"?`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "scimserver completion"`},
		{[]string{"help", "tenant", "creat"}, `unknown command "creat" for "scimserver tenant"; did you mean "create"?`},
		{[]string{"tenant", "list", "extra"}, "accepts 0 arg(s), received 1"},
		{[]string{"tenant", "create", "Bad Id!"}, "a tenant id is 1 to 64 characters"},
		{[]string{"tenant", "disable"}, "accepts 1 arg(s), received 0"},
		{[]string{"token", "create", "--scope", "root"}, `--scope: unknown scope (use scim, platform or admin)`},
		{[]string{"token", "create", "--scope", "scim,admin"}, "--scope: the admin scope is server-wide and goes alone"},
		{[]string{"token", "create", "--expires-in", "-1h"}, "--expires-in must be a positive duration"},
		{[]string{"token", "create", "--expires-in", "soon"}, `invalid argument "soon" for "--expires-in"`},
		{[]string{"stats", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"--base-url", "scim.example.com"}, "--base-url: the base URL must be an absolute http or https URL"},
		{[]string{"--base-url", "ftp://scim.example.com/scim/v2"}, "--base-url: the base URL must be an absolute http or https URL"},
		{[]string{"--log-format", "xml"}, "--log-format must be json or console"},
		{[]string{"--commit-log-bytes", "4096"}, "--commit-log-bytes must be at least 65536"},
	} {
		_, _, err := run(t, append(c.args, "--data", data)...)
		if !isUsage(err) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line usage error with %q", c.args, err, c.want)
		}
		if _, err := os.Stat(filepath.Dir(data)); !os.IsNotExist(err) {
			t.Fatalf("%v touched the data directory", c.args)
		}
	}
	// A group command alone prints its help.
	out, _, err := run(t, "tenant")
	if err != nil || !strings.Contains(out, "disable") || !strings.Contains(out, "enable") {
		t.Errorf("tenant alone: %v\n%s", err, out)
	}
}

// TestExitCodes runs the real binary: 0 success, 1 failure, 2 a command-line mistake, with the
// error on one line of stderr.
func TestExitCodes(t *testing.T) {
	bin := scimserverBinary(t)
	data := filepath.Join(t.TempDir(), "data.db")
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"tenant", "creat", "acme"}, 2, "error: unknown command \"creat\" for \"scimserver tenant\"; did you mean \"create\"?\n"},
		{[]string{"bogus"}, 2, "error: unknown command \"bogus\" for \"scimserver\" (see scimserver --help)\n"},
		{[]string{"tenant", "list", "extra"}, 2, "error: accepts 0 arg(s), received 1\n"},
		{[]string{"token", "create", "--scope", "root"}, 2, "error: --scope: unknown scope (use scim, platform or admin)\n"},
		{[]string{"tenant", "create", "acme"}, 0, ""},
		{[]string{"tenant", "create", "acme"}, 1, "error: the tenant already exists\n"},
		{[]string{"tenant", "disable", "nope"}, 1, ""},
	} {
		cmd := exec.Command(bin, append(c.args, "--data", data)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || (c.stderr != "" && stderr.String() != c.stderr) || strings.Count(stderr.String(), "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", c.args, code, stderr.String(), c.code, c.stderr)
		}
	}
}

// TestVersion: --version and the version command print the same: the -ldflags version and
// build time, and the VCS revision and commit time Go stamped into the binary.
func TestVersion(t *testing.T) {
	bin := scimserverBinary(t)
	flag, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := exec.Command(bin, "version").Output()
	if err != nil || !bytes.Equal(flag, sub) {
		t.Fatalf("version: %v\n%s\n--version:\n%s", err, sub, flag)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	revision, committed := "unknown", "unknown"
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			committed = s.Value
		}
	}
	for _, want := range []string{"scimserver " + testVersion + "\n", "revision  " + revision, "committed " + committed + "\n",
		"built     " + testBuildTime + "\n", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(string(flag), want) {
			t.Errorf("version output lacks %q:\n%s", want, flag)
		}
	}
	// Built without -ldflags, the module's version stands in.
	if out, _, err := run(t, "version"); err != nil || !strings.HasPrefix(out, "scimserver ") || !strings.Contains(out, "built     unknown") {
		t.Errorf("version of the test binary: %v\n%s", err, out)
	}
}

// TestTenantDisableEnable: the CLI disables and enables a tenant like the admin API does: its
// tokens stop and start working, and the trail records both.
func TestTenantDisableEnable(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data.db")
	if _, _, err := run(t, "tenant", "create", "acme", "--data", data); err != nil {
		t.Fatal(err)
	}
	secret, _, err := run(t, "token", "create", "--tenant", "acme", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	authenticate := func() error {
		t.Helper()
		s, err := bolt.Open(data, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = scimserver.New(s, scimserver.Options{}).Authenticate(context.Background(), secret)
		return err
	}
	if out, _, err := run(t, "tenant", "disable", "acme", "--data", data); err != nil || out != "tenant acme is disabled\n" {
		t.Fatalf("disable: %v %q", err, out)
	}
	var af *scimserver.AuthFailure
	if err := authenticate(); !errors.As(err, &af) || af.Reason != scimserver.AuthTenantDisabled {
		t.Fatalf("a token of a disabled tenant: %v", err)
	}
	if out, _, _ := run(t, "tenant", "list", "--data", data); !strings.Contains(out, "true") {
		t.Fatalf("tenant list after disable:\n%s", out)
	}
	if out, _, err := run(t, "tenant", "enable", "acme", "--data", data); err != nil || out != "tenant acme is enabled\n" {
		t.Fatalf("enable: %v %q", err, out)
	}
	if err := authenticate(); err != nil {
		t.Fatalf("a token of an enabled tenant: %v", err)
	}
	out, _, err := run(t, "audit", "export", "--tenant", "acme", "--data", data)
	if err != nil || !strings.Contains(out, `"operation":"tenant-disable"`) || !strings.Contains(out, `"operation":"tenant-enable"`) {
		t.Fatalf("trail: %v\n%s", err, out)
	}
	if _, _, err := run(t, "tenant", "disable", "nope", "--data", data); err == nil || isUsage(err) {
		t.Fatalf("disable of an unknown tenant: %v", err)
	}
}

// serveProcess is the serve command running in this process.
type serveProcess struct {
	addr   string
	stderr *syncBuffer
	stop   func() error
}

// startServe runs the serve command with args (and --addr, --data) until stop, waiting until it
// answers /healthz.
func startServe(t *testing.T, data string, args ...string) *serveProcess {
	t.Helper()
	p := &serveProcess{addr: testtool.FreeAddr(t), stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRoot()
	cmd.SetArgs(append([]string{"--addr", p.addr, "--data", data}, args...))
	cmd.SetErr(p.stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var stopped bool
	p.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { p.stop() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			res.Body.Close()
			return p
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", p.stderr)
		}
	}
}

// status sends GET path with token and returns the status.
func (p *serveProcess) status(t *testing.T, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestServeChecksBeforeTouchingData: a start that cannot listen, or whose TLS files are wrong,
// fails before it creates the data file or a token; the corrected start then shows the token.
func TestServeChecksBeforeTouchingData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data", "scimserver.db")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"port taken", []string{"--addr", taken.Addr().String()}, "--addr: listen tcp " + taken.Addr().String()},
		{"metrics port taken", []string{"--addr", "127.0.0.1:0", "--metrics-addr", taken.Addr().String()}, "--metrics-addr: listen tcp"},
		{"swapped TLS files", []string{"--addr", "127.0.0.1:0", "--tls-cert", keyFile, "--tls-key", certFile}, "load TLS certificate"},
	} {
		stdout, stderr, err := run(t, append(c.args, "--data", data)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if strings.Contains(stdout+stderr, "scim_") {
			t.Errorf("%s: a token was shown", c.name)
		}
		if _, err := os.Stat(filepath.Dir(data)); !os.IsNotExist(err) {
			t.Fatalf("%s: the data directory was created", c.name)
		}
	}
	p := startServe(t, data)
	if !strings.Contains(p.stderr.String(), "shown only this once") || !strings.Contains(p.stderr.String(), "scim_") {
		t.Fatalf("the corrected first start shows no token:\n%s", p.stderr)
	}
}

// TestServeEnvironmentTokens: SCIMSERVER_ADMIN_TOKEN gives the admin API, /metrics and backups
// without a stop; a value ending in a newline works; equal values refuse to start.
func TestServeEnvironmentTokens(t *testing.T) {
	const (
		scim  = "env-scim-token-0123456789abcdefghijklmnopqrstu"
		admin = "env-admin-token-0123456789abcdefghijklmnopqrs"
	)
	data := filepath.Join(t.TempDir(), "data.db")
	t.Setenv("SCIMSERVER_TOKEN", scim)
	t.Setenv("SCIMSERVER_PLATFORM_TOKEN", scim+"\n")
	_, _, err := run(t, "--addr", "127.0.0.1:0", "--data", data)
	if !isUsage(err) || err.Error() != "SCIMSERVER_TOKEN and SCIMSERVER_PLATFORM_TOKEN have the same value; give each its own" {
		t.Fatalf("equal tokens: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("a refused start created the data file")
	}
	t.Setenv("SCIMSERVER_PLATFORM_TOKEN", "")
	t.Setenv("SCIMSERVER_TOKEN", scim+"\n") // as $(cat file) would not, but a secret file mounted as an env var does
	t.Setenv("SCIMSERVER_ADMIN_TOKEN", admin)
	p := startServe(t, data)
	if strings.Contains(p.stderr.String(), "scim_") {
		t.Fatalf("a token was generated although SCIMSERVER_TOKEN is set:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"variable":"SCIMSERVER_TOKEN"`) || !strings.Contains(p.stderr.String(), "ignored whitespace around the token") {
		t.Errorf("the trimmed value is not reported:\n%s", p.stderr)
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/scim/v2/Users", scim, 200},
		{"/api/v1/admin/tenants", admin, 200},
		{"/metrics", admin, 200},
		{"/api/v1/admin/tenants", scim, 401},
		{"/scim/v2/Users", admin, 401},
	} {
		if got := p.status(t, c.path, c.token); got != c.want {
			t.Errorf("%s with the %s token: %d, want %d", c.path, map[string]string{scim: "SCIM", admin: "admin"}[c.token], got, c.want)
		}
	}
	// The backup command reads the same variable.
	out := filepath.Join(t.TempDir(), "b.db")
	if _, _, err := run(t, "backup", "--url", "http://"+p.addr+"/scim/v2", "--out", out); err != nil {
		t.Fatalf("backup with SCIMSERVER_ADMIN_TOKEN: %v", err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.stderr.String(), scim) || strings.Contains(p.stderr.String(), admin) {
		t.Fatal("a token reached the log")
	}
}

// TestServeBootstrapTokenFile: with --bootstrap-token-file the first token goes to that file,
// readable by its owner only, and never to stderr; a file that cannot be written fails the
// start before any token exists.
func TestServeBootstrapTokenFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.db")
	_, stderr, err := run(t, "--addr", "127.0.0.1:0", "--data", data, "--bootstrap-token-file", filepath.Join(dir, "missing", "token"))
	if err == nil || !strings.Contains(err.Error(), "--bootstrap-token-file") || strings.Contains(stderr, "scim_") {
		t.Fatalf("an unwritable token file: %v\n%s", err, stderr)
	}
	file := filepath.Join(dir, "first-token")
	p := startServe(t, data, "--bootstrap-token-file", file)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(raw))
	if st, _ := os.Stat(file); !strings.HasPrefix(secret, "scim_") || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %q, mode %v", raw, st.Mode())
	}
	if strings.Contains(p.stderr.String(), secret) || strings.Contains(p.stderr.String(), "shown only this once") {
		t.Fatalf("the secret reached stderr:\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), `"file":"`+file+`"`) {
		t.Errorf("the token file is not named in the log:\n%s", p.stderr)
	}
	if code := p.status(t, "/scim/v2/Users", secret); code != 200 {
		t.Fatalf("the token from the file: %d", code)
	}
	p.stop()
	// Every line on stderr was JSON: nothing but the log stream.
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

// TestServeLogStream: net/http's own messages (here a TLS handshake failure) are JSON log lines
// like the rest, and the console format writes no colour codes to what is not a terminal.
func TestServeLogStream(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeSelfSigned(t, dir)
	t.Setenv("SCIMSERVER_TOKEN", opsSCIMToken)
	addr := testtool.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	cmd := newRoot()
	cmd.SetArgs([]string{"--addr", addr, "--data", filepath.Join(dir, "d.db"), "--tls-cert", certFile, "--tls-key", keyFile})
	cmd.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), `"listening"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no start: %s", stderr)
		}
	}
	// Plain HTTP to the TLS port: net/http logs a handshake error.
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "TLS handshake error"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no handshake error logged: %s", stderr)
		}
	}
	// The health check speaks TLS when the server does.
	t.Setenv("SCIMSERVER_ADDR", addr)
	t.Setenv("SCIMSERVER_TLS_CERT", certFile)
	if out, _, err := run(t, "healthz"); err != nil || out != "ok\n" {
		t.Errorf("healthz over TLS: %v %q", err, out)
	}
	cancel()
	<-done
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		} else if strings.Contains(line, "TLS handshake error") && (m["level"] != "warn" || m["source"] != "net/http") {
			t.Errorf("handshake error line: %s", line)
		}
	}

	var console bytes.Buffer
	log, err := newLogger("info", "console", &console)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Str("k", "v").Msg("hello")
	if !strings.Contains(console.String(), "hello") || strings.Contains(console.String(), "\x1b[") {
		t.Fatalf("console output to a buffer: %q", console.String())
	}
}

// TestHealthzCommand: the container health check asks the server the address names, and fails
// when nothing answers.
func TestHealthzCommand(t *testing.T) {
	t.Setenv("SCIMSERVER_TOKEN", opsSCIMToken)
	p := startServe(t, filepath.Join(t.TempDir(), "d.db"))
	_, port, _ := net.SplitHostPort(p.addr)
	t.Setenv("SCIMSERVER_ADDR", "0.0.0.0:"+port) // as in the container: every interface
	if out, _, err := run(t, "healthz"); err != nil || out != "ok\n" {
		t.Fatalf("healthz: %v %q", err, out)
	}
	p.stop()
	if _, _, err := run(t, "healthz"); err == nil || isUsage(err) {
		t.Fatalf("healthz of a stopped server: %v", err)
	}
	t.Setenv("SCIMSERVER_ADDR", "127.0.0.1:0")
	if _, _, err := run(t, "healthz"); !isUsage(err) {
		t.Fatalf("healthz without a port: %v", err)
	}
}
