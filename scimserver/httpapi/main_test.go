package httpapi

import (
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
	code := pgtest.RunTwice(m, &onPostgres)
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
