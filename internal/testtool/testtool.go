// Package testtool helps the commands' tests: those that drive an outside program (bash, curl,
// jq, systemd-analyze) skip where it is missing, except in CI, which must run them all; and
// servers under test get a free loopback port.
package testtool

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns a missing tool from a skip into a failure;
// .ci/run sets it.
const RequireEnv = "SCIMSERVER_TEST_REQUIRE_TOOLS"

// Path returns the path of tool, or skips the test (fails it when RequireEnv is set) with a
// message that names the tool and why the test needs it.
func Path(t testing.TB, tool, purpose string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s is not on PATH (needed %s), and %s asks for every test to run", tool, purpose, RequireEnv)
	}
	t.Skipf("%s is not on PATH (needed %s): skipped; %s=1 makes this a failure", tool, purpose, RequireEnv)
	return ""
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
