package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/scimserver/httpapi"
	"github.com/scimserver/scimserver/storage/bolt"
)

const (
	testToken         = "scimload-test-token-0123456789abcdef"
	testPlatformToken = "scimload-test-platform-token-0123456789abcdef"
)

// startServer runs the real server over a bbolt file in a temporary directory, behind wrap
// when it is not nil, and returns the SCIM base URL and the data file's path.
func startServer(t *testing.T, wrap func(http.Handler) http.Handler) (base, dataFile string) {
	t.Helper()
	dataFile = filepath.Join(t.TempDir(), "scim.db")
	store, err := bolt.Open(dataFile, bolt.Options{Collections: scimserver.Collections(), ErasureCleared: scimserver.ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := scimserver.New(store, scimserver.Options{})
	if err := svc.Bootstrap(t.Context(), scimserver.EnvTokens{SCIM: testToken, Platform: testPlatformToken}, nil); err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(svc, httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/scim/v2", dataFile
}

// runJSON runs the command as main does, with --json, and decodes its report.
func runJSON(t *testing.T, args ...string) (Report, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append(args, "--json"), &out, &errOut)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, report %q, stderr %q: %v", code, out.String(), errOut.String(), err)
	}
	return rep, code
}

func phaseByName(t *testing.T, rep Report, name string) PhaseResult {
	t.Helper()
	for _, p := range rep.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no phase %s in report", name)
	return PhaseResult{}
}

func kindOps(p PhaseResult) map[string]int {
	m := map[string]int{}
	for _, k := range p.Kinds {
		m[k.Name] = k.Ops
	}
	return m
}

// TestLoadRun runs every phase briefly against the real server and expects no errors and the
// operation counts the flags ask for.
func TestLoadRun(t *testing.T) {
	base, dataFile := startServer(t, nil)
	rep, code := runJSON(t, "--url", base, "--token", testToken, "--users", "200", "--groups", "2",
		"--group-size", "150", "--concurrency", "4", "--ops", "200", "--duration", "1s", "--seed", "7",
		"--pid", strconv.Itoa(os.Getpid()), "--data-file", dataFile)

	for _, p := range rep.Phases {
		if p.Errors > 0 {
			t.Errorf("phase %s: %d errors: %q", p.Name, p.Errors, p.ErrorSamples)
		}
		if p.Ops > 0 && !(0 < p.P50Ms && p.P50Ms <= p.P95Ms && p.P95Ms <= p.P99Ms && p.P99Ms <= p.MaxMs) {
			t.Errorf("phase %s: percentiles out of order: %+v", p.Name, p)
		}
	}
	if code != 0 || rep.Errors != 0 || rep.Stopped != "" {
		t.Fatalf("exit %d, %d errors, stopped %q", code, rep.Errors, rep.Stopped)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, allPhases()) || slices.Contains(names, "discover") {
		t.Errorf("phases %v, want %v", names, allPhases())
	}
	if rep.Users != 200 || rep.Groups != 2 {
		t.Errorf("created %d users and %d groups, want 200 and 2", rep.Users, rep.Groups)
	}
	for name, want := range map[string]int{"create": 200, "get": 200, "lookup-username": 200,
		"lookup-externalid": 200, "patch-entra": 200, "patch-okta": 200, "page": 2} {
		if got := phaseByName(t, rep, name).Ops; got != want {
			t.Errorf("phase %s: %d ops, want %d", name, got, want)
		}
	}
	if k := kindOps(phaseByName(t, rep, "lookup-username")); k["hit"] != 180 || k["miss"] != 20 {
		t.Errorf("lookup-username: %v, want 180 hits and 20 misses", k)
	}
	if k := kindOps(phaseByName(t, rep, "patch-entra")); k["deactivate"] != 100 || k["reactivate"] != 100 {
		t.Errorf("patch-entra: %v, want 100 deactivations and 100 reactivations", k)
	}
	// 2 groups, 2 batches each (100 + 50), a tenth of 150 removed from each, and at least the
	// two GETs of each group and 20 kept members checked.
	g := kindOps(phaseByName(t, rep, "groups"))
	if g["create"] != 2 || g["add-members"] != 4 || g["remove-member"] != 30 || g["verify"] < 24 {
		t.Errorf("groups: %v", g)
	}
	if p := phaseByName(t, rep, "page"); p.FirstPageMs <= 0 || p.LastPageMs <= 0 {
		t.Errorf("page: first page %v ms, last page %v ms", p.FirstPageMs, p.LastPageMs)
	}
	if p := phaseByName(t, rep, "mix"); p.Ops == 0 || p.Seconds < 1 {
		t.Errorf("mix: %d ops in %.2fs", p.Ops, p.Seconds)
	}
	if rep.ServerRSSBytes <= 0 || rep.DataFileBytes <= 0 {
		t.Errorf("server RSS %d, data file %d bytes", rep.ServerRSSBytes, rep.DataFileBytes)
	}
	if runtime.GOOS == "linux" {
		// The server runs in this process: what /proc says it spent is what the process spent,
		// to the hundredth of a second /proc counts in.
		c := phaseByName(t, rep, "create")
		self, server := deref(c.CPUMicrosPerOp)*float64(c.Ops), deref(c.ServerCPUMicrosPerOp)*float64(c.Ops)
		if self <= 0 || server <= 0 || math.Abs(self-server) > 30_000+self/10 {
			t.Errorf("create: %.0f µs of CPU by this process, %.0f µs by the server's count", self, server)
		}
	}
}

// corrupt passes requests to next and spoils every third answer to GET /Users/{id} (another
// userName) and to a userName lookup (nobody found).
func corrupt(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/scim/v2/Users/")
		lookup := r.Method == http.MethodGet && r.URL.Path == "/scim/v2/Users" &&
			strings.HasPrefix(r.URL.Query().Get("filter"), "userName eq")
		if !get && !lookup || n.Add(1)%3 != 0 {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			panic(err)
		}
		if get {
			doc["userName"] = "someone-else@example.com"
		} else {
			doc["totalResults"], doc["itemsPerPage"], doc["Resources"] = 0, 0, []any{}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		json.NewEncoder(w).Encode(doc)
	})
}

// TestDetectsWrongAnswers puts a corrupting proxy before the real server: the phases it spoils
// must report errors (and no more than it spoiled), the others none, and the exit code is 1.
func TestDetectsWrongAnswers(t *testing.T) {
	base, _ := startServer(t, corrupt)
	rep, code := runJSON(t, "--url", base, "--token", testToken, "--users", "60", "--ops", "60",
		"--concurrency", "4", "--phases", "create,get,lookup-username,lookup-externalid")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, p := range rep.Phases {
		spoiled := p.Name == "get" || p.Name == "lookup-username"
		if spoiled != (p.Errors > 0) || p.Errors >= p.Ops/2 {
			t.Errorf("phase %s: %d errors in %d ops (spoiled: %t): %q", p.Name, p.Errors, p.Ops, spoiled, p.ErrorSamples)
		}
	}
	if get := phaseByName(t, rep, "get"); len(get.ErrorSamples) == 0 || !strings.Contains(get.ErrorSamples[0], "someone-else") {
		t.Errorf("get error samples %q do not name the wrong userName", get.ErrorSamples)
	}
	if rep.Errors == 0 {
		t.Error("report counts no errors")
	}
}

// TestDiscover: a second run learns the users the first one created by reading every page, and
// its read phases check answers against what it learned.
func TestDiscover(t *testing.T) {
	base, _ := startServer(t, nil)
	args := []string{"--url", base, "--token", testToken, "--users", "250", "--ops", "100", "--concurrency", "4"}
	if rep, code := runJSON(t, append(args, "--phases", "create")...); code != 0 || rep.Users != 250 {
		t.Fatalf("create: exit %d, %d users", code, rep.Users)
	}
	rep, code := runJSON(t, append(args, "--phases", "discover,get,lookup-username,lookup-externalid,page")...)
	if code != 0 || rep.Users != 250 || rep.Errors != 0 {
		t.Fatalf("discover: exit %d, %d users, %d errors: %+v", code, rep.Users, rep.Errors, rep.Phases)
	}
	if d := phaseByName(t, rep, "discover"); d.Ops != 3 {
		t.Errorf("discover read %d pages of 100 for 250 users, want 3", d.Ops)
	}
	// The same read phases over a server whose answers are spoiled must fail.
	spoiled, _ := startServer(t, corrupt)
	if _, code := runJSON(t, "--url", spoiled, "--token", testToken, "--users", "60", "--concurrency", "4", "--phases", "create"); code != 0 {
		t.Fatalf("create on the spoiling server: exit %d", code)
	}
	rep, code = runJSON(t, "--url", spoiled, "--token", testToken, "--users", "60", "--ops", "60", "--concurrency", "4", "--phases", "discover,get")
	if code != 1 || phaseByName(t, rep, "get").Errors == 0 {
		t.Errorf("spoiled answers after discover: exit %d, %+v", code, rep.Phases)
	}
}

// TestStall runs the stall phase twice over users learned from the first page: each run
// anonymizes one user half-way through its PATCH load and reports the gaps between writes; the
// second run leaves the first one's anonymized user alone.
func TestStall(t *testing.T) {
	base, _ := startServer(t, nil)
	args := []string{"--url", base, "--token", testToken, "--users", "250", "--concurrency", "4"}
	if _, code := runJSON(t, append(args, "--phases", "create")...); code != 0 {
		t.Fatalf("create: exit %d", code)
	}
	for run := 0; run < 2; run++ {
		rep, code := runJSON(t, append(args, "--phases", "discover,stall", "--discover-max", "100", "--duration", "600ms")...)
		if code != 0 || rep.Errors != 0 || rep.Users != 100 {
			t.Fatalf("run %d: exit %d, %d users, %+v", run, code, rep.Users, rep.Phases)
		}
		p := phaseByName(t, rep, "stall")
		if k := kindOps(p); k["anonymize"] != 1 || k["patch"] == 0 {
			t.Errorf("run %d: %v", run, k)
		}
		if p.AnonymizeMs <= 0 || p.StallMs <= 0 || p.BaselineStallMs <= 0 || !p.Scrubbed {
			t.Errorf("run %d: %+v", run, p)
		}
	}
	rep, _ := runJSON(t, append(args, "--phases", "discover", "--discover-max", "100")...)
	if rep.Users != 100 {
		t.Fatalf("discover: %d users", rep.Users)
	}
}

// TestLongestGaps: a gap counts as during the window when it overlaps it; the time before the
// first write is no gap.
func TestLongestGaps(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	during, outside, over := longestGaps([]time.Time{at(10), at(15), at(40), at(45), at(110)}, at(112), at(20), at(30))
	if during != 25 || outside != 65 || over != 1 {
		t.Errorf("during %v, outside %v, %d over 50 ms; want 25, 65 and 1", during, outside, over)
	}
	if during, outside, over := longestGaps(nil, at(52), at(20), at(30)); during != 0 || outside != 0 || over != 0 {
		t.Errorf("no writes: %v %v %d", during, outside, over)
	}
}

// TestWindowStalls: windows as long as the anonymization, away from it, see the run's gaps.
func TestWindowStalls(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var done []time.Time
	for ms := 0; ms <= 10000; ms += 10 { // a write every 10 ms, and a one-second hole at 8 s
		if ms <= 8000 || ms >= 9000 {
			done = append(done, at(ms))
		}
	}
	p50, p90 := windowStalls(done, at(10000), at(2000), at(2050))
	if p50 != 10 || p90 != 1000 {
		t.Errorf("p50 %v, p90 %v; want 10 and 1000", p50, p90)
	}
}

// TestModes runs baseline (GET and POST) and fsync briefly.
func TestModes(t *testing.T) {
	for _, c := range []struct {
		args  []string
		phase string
	}{
		{[]string{"baseline", "--size", "700", "--concurrency", "2", "--duration", "200ms"}, "baseline"},
		{[]string{"baseline", "--post", "--size", "900", "--concurrency", "2", "--duration", "200ms"}, "baseline-post"},
		{[]string{"fsync", "--dir", t.TempDir(), "--duration", "200ms"}, "fsync"},
		{[]string{"fsync", "--dir", t.TempDir(), "--duration", "200ms", "--pages", "8", "--span", "2"}, "commit-8-pages"},
		{[]string{"fsync", "--dir", t.TempDir(), "--duration", "200ms", "--pages", "8", "--span", "2", "--contiguous"}, "commit-8-pages-contiguous"},
		{[]string{"fsync", "--dir", t.TempDir(), "--duration", "200ms", "--pages", "8", "--span", "2", "--log"}, "log-8-pages"},
	} {
		rep, code := runJSON(t, c.args...)
		if code != 0 || len(rep.Phases) != 1 || rep.Phases[0].Ops == 0 || rep.Errors != 0 {
			t.Errorf("%v: exit %d, report %+v", c.args, code, rep)
			continue
		}
		if rep.Phases[0].Name != c.phase {
			t.Errorf("%v: phase %q, want %q", c.args, rep.Phases[0].Name, c.phase)
		}
		if c.args[0] == "baseline" && runtime.GOOS == "linux" && deref(rep.Phases[0].CPUMicrosPerOp) <= 0 {
			t.Errorf("%v: no CPU time per request reported", c.args)
		}
	}
}

// TestCommitPlaces holds the fsync mode's pages to the file, clear of the meta page, each once:
// scattered ones spread over it, contiguous ones side by side.
func TestCommitPlaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const pages = 64
	offs := make([]int64, 16)
	spread := map[int64]bool{}
	for range 100 {
		for _, contiguous := range []bool{false, true} {
			fsyncCommit{pages: len(offs), contiguous: contiguous}.place(offs, rng, pages)
			for i, o := range offs {
				if o%4096 != 0 || o < 4096 || o >= pages*4096 || (i > 0 && o <= offs[i-1]) {
					t.Fatalf("contiguous %v: page at %d in %v", contiguous, o, offs)
				}
				if contiguous && i > 0 && o != offs[i-1]+4096 {
					t.Fatalf("contiguous pages apart: %v", offs)
				}
				if !contiguous {
					spread[o] = true
				}
			}
		}
	}
	if len(spread) < pages-1-4 { // 1,600 draws leave a page of 63 unused with odds of about 1e-11
		t.Errorf("scattered pages fell on %d places of %d", len(spread), pages-1)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("SCIMLOAD_TOKEN", "")
	for _, args := range [][]string{
		{"--token", "x", "--phases", "create,nope"},
		{"--token", "x", "--phases", "get"},
		{"--token", "x", "--phases", "create,discover,get"},
		{"--token", "x", "--users", "2", "--concurrency", "4"},
		{"--users", "10"},
		{"--token", "x", "extra"},
		{"baseline", "--concurrency", "0"},
		{"baseline", "--port", "9999"},
		{"baselin"},
		{"--token", "x", "-concurrency", "8"}, // Go's flag syntax: the main command's does not take it either
		{"fsync", "--dir"},
		{"fsync", "--pages", "-1"},
		{"fsync", "--pages", "512", "--span", "2"}, // a 2 MiB span has 511 pages besides the meta page
		{"fsync", "--contiguous"},
		{"fsync", "--log"},
		{"fsync", "--pages", "4", "--log", "--contiguous"},
		{"fsync", "--span", "4"},
		{"fsync", "--pages", "4", "--span", "0"},
	} {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q, want 2 and a message", args, code, errOut.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	upTo := func(n int) []time.Duration {
		var d []time.Duration
		for i := 1; i <= n; i++ {
			d = append(d, time.Duration(i)*time.Millisecond)
		}
		return d
	}
	for _, c := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{upTo(1), 50, time.Millisecond},
		{upTo(1), 99, time.Millisecond},
		{upTo(100), 50, 50 * time.Millisecond},
		{upTo(100), 95, 95 * time.Millisecond},
		{upTo(100), 99, 99 * time.Millisecond},
		{upTo(100), 100, 100 * time.Millisecond},
		{upTo(10), 50, 5 * time.Millisecond},
		{upTo(10), 95, 10 * time.Millisecond}, // rank ceil(9.5) = 10
		{upTo(10), 0, time.Millisecond},
		{upTo(1000), 99.9, 999 * time.Millisecond},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(c.sorted), c.p, got, c.want)
		}
	}
}

// TestSummarize merges recorders: unsorted latencies, errors kept out of the latencies, a
// per-kind breakdown, and a bounded list of error samples.
func TestSummarize(t *testing.T) {
	var a, b recorder
	for _, ms := range []int{30, 10, 20} {
		a.ok("get", time.Duration(ms)*time.Millisecond)
	}
	b.ok("get", 40*time.Millisecond)
	b.ok("patch", time.Millisecond)
	for range 7 {
		b.fail("patch", errors.New("wrong answer"))
	}
	r := summarize("mix", 2*time.Second, []*recorder{&a, &b})
	if r.Ops != 12 || r.Errors != 7 || r.OpsPerSec != 2.5 || r.P50Ms != 20 || r.MaxMs != 40 {
		t.Errorf("summary %+v", r)
	}
	if len(r.Kinds) != 2 || r.Kinds[0].Name != "get" || r.Kinds[0].Ops != 4 || r.Kinds[0].P50Ms != 20 ||
		r.Kinds[1].Name != "patch" || r.Kinds[1].Errors != 7 {
		t.Errorf("kinds %+v", r.Kinds)
	}
	if len(r.ErrorSamples) != 1 || r.ErrorSamples[0] != "patch: wrong answer" {
		t.Errorf("error samples %q: want the one distinct message", r.ErrorSamples)
	}
}

func TestTextReport(t *testing.T) {
	var out bytes.Buffer
	printText(&out, &Report{Mode: "load", URL: "http://x/scim/v2", RunID: "r1", Errors: 1, ServerRSSBytes: 3 << 20,
		Phases: []PhaseResult{
			{Name: "page", Ops: 2, FirstPageMs: 1, LastPageMs: 3},
			{Name: "get", Ops: 5, Errors: 1, ErrorSamples: []string{"get: GET /Users/1: status 500"}},
		}})
	for _, want := range []string{"scimload run r1 against http://x/scim/v2", "last/first 3.00",
		"error in get: get: GET /Users/1: status 500", "server RSS 3.0 MiB", "1 errors"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ n, k int }{{10, 10}, {1_000_000, 10}, {5, 0}, {100, 99}} {
		got := sample(r, c.n, c.k)
		seen := map[int]bool{}
		for _, v := range got {
			if v < 0 || v >= c.n || seen[v] {
				t.Fatalf("sample(%d, %d) = %v: out of range or repeated", c.n, c.k, got)
			}
			seen[v] = true
		}
		if len(got) != c.k {
			t.Fatalf("sample(%d, %d) has %d values", c.n, c.k, len(got))
		}
	}
}

// TestFeedFollowers: with --feed-token, a long-poll and an event-stream follower see every user
// the create phase makes, once, and the delivery figures are reported.
func TestFeedFollowers(t *testing.T) {
	base, _ := startServer(t, nil)
	rep, code := runJSON(t, "--url", base, "--token", testToken, "--feed-token", testPlatformToken,
		"--users", "300", "--concurrency", "4", "--phases", "create")
	if code != 0 || rep.Errors != 0 || len(rep.Feed) != 2 {
		t.Fatalf("exit %d, %d errors, feed %+v", code, rep.Errors, rep.Feed)
	}
	for _, f := range rep.Feed {
		if f.Changes != 300 || f.Missing != 0 || f.Duplicates != 0 || f.Error != "" || f.ChangesPerSec <= 0 ||
			!(0 < f.FromCommitP50Ms && f.FromCommitP50Ms <= f.FromCommitP99Ms && f.FromCommitP99Ms <= f.FromCommitMaxMs) {
			t.Errorf("follower %+v", f)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"--url", base, "--token", testToken, "--feed-token", "x", "--phases", "discover"}, &out, &errOut); code != 2 {
		t.Errorf("--feed-token without the create phase: exit %d", code)
	}
	// A token that cannot read the feed is an error of the run.
	if rep, code := runJSON(t, "--url", base, "--token", testToken, "--feed-token", testToken, "--users", "10", "--phases", "create"); code != 1 || rep.Errors == 0 {
		t.Errorf("a SCIM token as --feed-token: exit %d, %+v", code, rep.Feed)
	}
}

// TestCommandLineLikeTheMainCommand: the flag syntax, the suggestions and the exit codes are
// those of the scimserver command.
func TestCommandLineLikeTheMainCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"baselin"}, &out, &errOut); code != 2 ||
		errOut.String() != "scimload: unknown command \"baselin\" for \"scimload\"; did you mean \"baseline\"?\n" {
		t.Errorf("a mistyped mode: exit %d, %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(t.Context(), []string{"baseline", "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--addr") {
		t.Errorf("baseline --help: exit %d\n%s", code, out.String())
	}
}

// TestProgressLinePerPhase: each phase leaves one line on stderr as it ends, whatever stdout is,
// and baseline listens where --addr says.
func TestProgressLinePerPhase(t *testing.T) {
	base, _ := startServer(t, nil)
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"--url", base, "--token", testToken, "--users", "40", "--ops", "30", "--concurrency", "2",
		"--phases", "create,get,lookup-username"}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "scimload: create: 40 ops, 0 errors in ") ||
		!strings.HasPrefix(lines[1], "scimload: get: 30 ops, 0 errors") || !strings.HasPrefix(lines[2], "scimload: lookup-username: 30 ops, 0 errors") {
		t.Fatalf("exit %d, progress:\n%s", code, errOut.String())
	}
	addr := testtool.FreeAddr(t)
	errOut.Reset()
	rep, code := runJSON(t, "baseline", "--addr", addr, "--concurrency", "1", "--duration", "100ms")
	if code != 0 || rep.URL != "http://"+addr {
		t.Fatalf("baseline --addr %s: exit %d, url %q", addr, code, rep.URL)
	}
}

// deref reads a figure a report may leave out, as -1 when it does.
func deref(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}
