package httpapi

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/scimserver/scimserver/storage/postgres/pgtest"
)

// TestMain runs the package's tests over bbolt files, then again over PostgreSQL schemas when a
// server is reachable (pgtest; with CI=true an unreachable one fails the run). It fails the
// package when a test leaves goroutines behind (after closing the test client's idle keep-alive
// connections, which are the client's, not the server's).
func TestMain(m *testing.M) {
	code := m.Run()
	// A fuzz run (-fuzz) fuzzes over bbolt only: its time budget is the run's, not twice that.
	if fuzzing := flag.Lookup("test.fuzz"); code == 0 && (fuzzing == nil || fuzzing.Value.String() == "") {
		if err := pgtest.Reachable(); err == nil {
			fmt.Fprintln(os.Stderr, "--- the same tests over PostgreSQL")
			onPostgres = true
			code = m.Run()
		} else if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "PostgreSQL is unreachable and CI=true:", err)
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "skipped the pass over PostgreSQL, unreachable:", err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
