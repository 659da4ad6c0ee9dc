package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
)

// readmeBlock is a shell block of README.md and the mark above it.
type readmeBlock struct {
	line int    // of the opening fence
	mark string // "server running", "server stopped", or "not run (...)"
	text string
}

// readmeBlocks returns README.md's sh blocks. Each must follow a line
// <!-- doctest: server running|server stopped|not run (reason) -->.
func readmeBlocks(readme string) ([]readmeBlock, error) {
	var blocks []readmeBlock
	var prev string
	var cur *readmeBlock
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case line == "```sh":
			mark, ok := strings.CutPrefix(prev, "<!-- doctest: ")
			mark, closed := strings.CutSuffix(mark, " -->")
			switch {
			case !ok || !closed:
				return nil, fmt.Errorf("README.md:%d: a sh block without a <!-- doctest: ... --> line above it", n)
			case mark != "server running" && mark != "server stopped" && !(strings.HasPrefix(mark, "not run (") && len(mark) > len("not run ()")):
				return nil, fmt.Errorf("README.md:%d: unknown doctest mark %q", n, mark)
			}
			cur = &readmeBlock{line: n, mark: mark}
		}
		prev = line
	}
	return blocks, sc.Err()
}

// readmePrelude starts and stops the server the blocks run against, in the current directory
// (./data/scimserver.db, the default), with the three tokens of the environment.
const readmePrelude = `set -euo pipefail
doctest_pid=
doctest_server() {
  case "$1" in
  running)
    [ -n "$doctest_pid" ] && return 0
    SCIMSERVER_TOKEN=$TOKEN SCIMSERVER_PLATFORM_TOKEN=$PLATFORM_TOKEN \
      scimserver --addr "$DOCTEST_ADDR" --log-level warn >>"$DOCTEST_LOG" 2>&1 &
    doctest_pid=$!
    for _ in $(seq 1 500); do
      curl -sf "http://$DOCTEST_ADDR/readyz" >/dev/null && return 0
      kill -0 "$doctest_pid" 2>/dev/null || break
      sleep 0.02
    done
    echo "doctest: the server did not start" >&2
    exit 1 ;;
  stopped)
    [ -z "$doctest_pid" ] && return 0
    kill -TERM "$doctest_pid"
    wait "$doctest_pid" || { echo "doctest: the server did not stop cleanly" >&2; exit 1; }
    doctest_pid= ;;
  esac
}
trap 'doctest_server stopped' EXIT
`

// TestREADME runs README.md's shell examples, in order, as one bash script against the real
// binary and a real server in a temporary directory, so that the README cannot drift from what
// the commands do. A block runs with the server running or stopped, as its mark says; curl's
// --fail-with-body and set -e make any error answer or failed command fail the test. The
// examples' 127.0.0.1:8080 becomes a free port. TOKEN, PLATFORM_TOKEN and ADMIN_TOKEN hold the
// default tenant's tokens, as the README expects them to.
func TestREADME(t *testing.T) {
	bash := testtool.Path(t, "bash", "to run README.md's examples")
	testtool.Path(t, "curl", "by README.md's examples")
	testtool.Path(t, "jq", "by README.md's examples")
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := testtool.FreeAddr(t)
	var script strings.Builder
	script.WriteString(readmePrelude)
	ran := 0
	for _, b := range blocks {
		state, ok := strings.CutPrefix(b.mark, "server ")
		if !ok {
			continue
		}
		ran++
		fmt.Fprintf(&script, "doctest_server %s\necho '== README.md:%d (server %s)' >&2\n%s", state, b.line, state,
			strings.ReplaceAll(b.text, "127.0.0.1:8080", addr))
	}
	if ran < 12 {
		t.Fatalf("only %d of README.md's %d shell blocks run", ran, len(blocks))
	}
	script.WriteString("doctest_server stopped\necho '== done' >&2\n")

	bin := scimserverBinary(t)
	env := []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dir, "DOCTEST_ADDR=" + addr, "DOCTEST_LOG=" + filepath.Join(dir, "server.log"),
		"TOKEN=readme-scim-token-0123456789abcdefghijklmnop",
		"PLATFORM_TOKEN=readme-platform-token-0123456789abcdefghij",
		"ADMIN_TOKEN=readme-admin-token-0123456789abcdefghijklm",
		"SCIMSERVER_ADMIN_TOKEN=readme-admin-token-0123456789abcdefghijklm"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCIMSERVER_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "== done\n") {
		serverLog, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		t.Fatalf("README.md's examples failed: %v\n%s\nserver log:\n%s", err, out, serverLog)
	}
	t.Logf("%d of README.md's %d shell blocks ran", ran, len(blocks))
}

// TestREADMEBlocksAreMarked: a shell block without a mark, or with an unknown one, is refused, so
// that a new example cannot go untested unnoticed.
func TestREADMEBlocksAreMarked(t *testing.T) {
	for text, ok := range map[string]bool{
		"<!-- doctest: server running -->\n```sh\necho\n```\n":       true,
		"<!-- doctest: not run (it takes an hour) -->\n```sh\n```\n": true,
		"```yaml\nx: 1\n```\n": true,
		"```sh\necho\n```\n":   false,
		"<!-- doctest: server runing -->\n```sh\necho\n```\n":    false,
		"<!-- doctest: not run -->\n```sh\necho\n```\n":          false,
		"<!-- doctest: server running -->\n\n```sh\necho\n```\n": false,
	} {
		if _, err := readmeBlocks(text); (err == nil) != ok {
			t.Errorf("%q: %v", text, err)
		}
	}
}
