// Package pgtest gives tests a fresh PostgreSQL schema to open the postgres engine on.
//
// The server is SCIMSERVER_TEST_POSTGRES (a URL), by default the local one at
// postgres://root@127.0.0.1:5432/test?sslmode=disable. When it cannot be reached, a test is
// skipped, or fails when CI=true: continuous integration must not pass without the engine.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tests use when SCIMSERVER_TEST_POSTGRES is not set.
const DefaultURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// ServerURL is the URL of the server tests use.
func ServerURL() string {
	if u := os.Getenv("SCIMSERVER_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Reachable reports whether the test server answers, and why not when it does not.
func Reachable() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// URL creates a schema of its own for t and returns a URL whose connections use it; the schema
// is dropped when t ends. Without a reachable server, t is skipped (failed when CI=true).
func URL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at SCIMSERVER_TEST_POSTGRES (or %s) is unreachable, and CI=true: %v", DefaultURL, err)
		}
		t.Skipf("PostgreSQL is unreachable (set SCIMSERVER_TEST_POSTGRES to a server URL): %v", err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RunTwice runs a package's tests (m.Run), then, when they pass and the server is reachable, sets
// *onPostgres and runs them again, for the package's helpers to open PostgreSQL stores instead.
// An unreachable server skips the second run, or fails it when CI=true. A fuzz run (-fuzz)
// fuzzes once: its time budget is the run's. SCIMSERVER_TEST_ENGINE=bolt or =postgres runs one
// of the two only. It returns the exit code.
func RunTwice(m *testing.M, onPostgres *bool) int {
	if !flag.Parsed() {
		flag.Parse() // m.Run would parse them; the choice below reads them first
	}
	fuzzing := flag.Lookup("test.fuzz")
	engine, profiled := os.Getenv("SCIMSERVER_TEST_ENGINE"), profiling()
	bolt, pg, err := passes(engine, profiled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := 0
	if bolt {
		if code = m.Run(); code != 0 || !pg || fuzzing != nil && fuzzing.Value.String() != "" {
			if profiled && engine == "" {
				fmt.Fprintln(os.Stderr, "profiled over bbolt only (SCIMSERVER_TEST_ENGINE=postgres profiles the PostgreSQL run)")
			}
			return code
		}
	}
	if err := Reachable(); err != nil {
		if os.Getenv("CI") == "true" || !bolt {
			fmt.Fprintln(os.Stderr, "PostgreSQL is unreachable:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "skipped the run over PostgreSQL, unreachable:", err)
		return code
	}
	if bolt {
		fmt.Fprintln(os.Stderr, "--- the same tests over PostgreSQL")
	}
	*onPostgres = true
	return m.Run()
}

// passes decides which of the two runs to make from SCIMSERVER_TEST_ENGINE. The testing package
// writes profiles only after the first m.Run (a CPU profile or trace, started again by the
// second, is left empty): a profiled run makes one, over bbolt unless the engine is named.
func passes(engine string, profiled bool) (bolt, pg bool, err error) {
	switch engine {
	case "bolt":
		return true, false, nil
	case "postgres":
		return false, true, nil
	case "":
		return true, !profiled, nil
	}
	return false, false, fmt.Errorf("SCIMSERVER_TEST_ENGINE=%q: want bolt, postgres or nothing (both)", engine)
}

// profiling reports whether the run writes a profile or an execution trace.
func profiling() bool {
	for _, name := range []string{"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}
