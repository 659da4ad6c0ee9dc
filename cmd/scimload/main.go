// Command scimload measures a running SCIM server under load and checks every answer it gets.
//
//	scimload [flags]                                   load phases against --url
//	scimload baseline [--size B] [--concurrency C] [--duration D]
//	scimload fsync [--dir DIR] [--duration D]
//
// A load run creates --users users (or, with the discover phase, learns those the server holds),
// then reads, looks up, patches, groups and pages through them (see --phases); a wrong answer
// counts as an error, never as a fast response. baseline
// measures a bare net/http server with the same client, fsync the disk's single-writer commit
// rate: the two ceilings the server's numbers are read against.
//
// Exit codes: 0 no errors, 1 errors (or the run was interrupted), 2 command-line mistake.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	// The load shares the machine with the server: collect less often (its live heap is small)
	// so that more of the CPU is left to what is measured. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is a load run's command line.
type config struct {
	url, token                                 string
	concurrency, users, groups, groupSize, ops int
	createConcurrency                          int // 0: as concurrency
	discoverMax                                int // 0: all
	duration                                   time.Duration
	phases                                     []string
	pid                                        int
	dataFile                                   string
	seed                                       uint64
}

// Report is everything a run measured; --json prints it as is.
type Report struct {
	Mode        string `json:"mode"` // load, baseline or fsync
	URL         string `json:"url,omitempty"`
	Dir         string `json:"dir,omitempty"`
	RunID       string `json:"runId,omitempty"`
	Seed        uint64 `json:"seed,omitempty"`
	Concurrency int    `json:"concurrency"`
	// Users and Groups count what the run created and checked.
	Users  int           `json:"users,omitempty"`
	Groups int           `json:"groups,omitempty"`
	Phases []PhaseResult `json:"phases"`
	Errors int           `json:"errors"`
	// Stopped says why phases were skipped, if any were.
	Stopped            string `json:"stopped,omitempty"`
	ServerRSSBytes     int64  `json:"serverRssBytes,omitempty"`
	ServerPeakRSSBytes int64  `json:"serverPeakRssBytes,omitempty"`
	// ServerAnonRSSBytes is the part of the RSS that is the process's own memory (heap, stacks);
	// the rest is the data file's pages mapped by bbolt, which the kernel can drop at will.
	ServerAnonRSSBytes int64 `json:"serverAnonRssBytes,omitempty"`
	DataFileBytes      int64 `json:"dataFileBytes,omitempty"`
}

// usageError is a command-line mistake (exit code 2).
type usageError struct{ error }

// errReported is a mistake the flag package has already printed, with the usage.
var errReported = errors.New("bad flags")

// run is the whole command: main only adds the process around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	mode := "load"
	if len(args) > 0 && (args[0] == "baseline" || args[0] == "fsync") {
		mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("scimload "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: scimload %s[flags]  (modes: scimload, scimload baseline, scimload fsync)\n",
			strings.TrimPrefix(mode+" ", "load "))
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print the report as one JSON document")
	var rep *Report
	var err error
	switch mode {
	case "baseline":
		concurrency := fs.Int("concurrency", 8, "concurrent requests")
		size := fs.Int("size", 1024, "response body size in bytes (a GET /Users/{id} answer is about 1 KiB)")
		duration := fs.Duration("duration", 10*time.Second, "how long to measure")
		post := fs.Bool("post", false, "POST the create phase's user bodies (read to the end, answered 201) instead of GET")
		if err = parse(fs, args); err == nil {
			if *size < 0 || *concurrency < 1 || *duration <= 0 {
				err = usageError{errors.New("--size must be >= 0, --concurrency >= 1, --duration > 0")}
			} else {
				rep, err = runBaseline(ctx, *size, *concurrency, *duration, *post)
			}
		}
	case "fsync":
		dir := fs.String("dir", ".", "directory of the test file: the data file's, to measure its disk")
		duration := fs.Duration("duration", 5*time.Second, "how long to measure")
		if err = parse(fs, args); err == nil {
			rep, err = runFsync(ctx, *dir, *duration)
		}
	default:
		var cfg config
		if cfg, err = loadConfig(fs, args); err == nil {
			if err = cfg.validate(); err == nil {
				rep = runLoad(ctx, cfg)
				addServerStats(rep, cfg, stderr)
			}
		}
	}
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.error != errReported {
			fmt.Fprintln(stderr, "scimload:", err)
		}
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "scimload:", err)
		return 1
	}
	for _, p := range rep.Phases {
		rep.Errors += p.Errors
	}
	if ctx.Err() != nil && rep.Stopped == "" {
		rep.Stopped = "interrupted"
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printText(stdout, rep)
	}
	if rep.Errors > 0 || rep.Stopped != "" {
		return 1
	}
	return 0
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{errReported}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func loadConfig(fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/scim/v2", "SCIM base URL")
	fs.StringVar(&cfg.token, "token", os.Getenv("SCIMLOAD_TOKEN"), "bearer token [SCIMLOAD_TOKEN]")
	fs.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent requests")
	fs.IntVar(&cfg.createConcurrency, "create-concurrency", 0, "concurrent requests of the create phase (default: --concurrency)")
	fs.IntVar(&cfg.users, "users", 10000, "users the create phase makes")
	fs.IntVar(&cfg.groups, "groups", 10, "groups the groups phase makes")
	fs.IntVar(&cfg.groupSize, "group-size", 1000, "members each group gets (at most --users)")
	fs.IntVar(&cfg.ops, "ops", 5000, "requests of each get, lookup and patch phase")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "length of the mix and stall phases")
	fs.IntVar(&cfg.discoverMax, "discover-max", 0, "users the discover phase learns at most, from the first pages (0: all), so that a run can leave most of the data file unread")
	phases := fs.String("phases", "all", "comma-separated phases to run: "+strings.Join(phaseNames(), ","))
	fs.IntVar(&cfg.pid, "pid", 0, "server process id, to report its memory (Linux /proc)")
	fs.StringVar(&cfg.dataFile, "data-file", "", "server data file, to report its size")
	fs.Uint64Var(&cfg.seed, "seed", 0, "random seed for the choice of users and operations; 0 picks one")
	if err := parse(fs, args); err != nil {
		return cfg, err
	}
	if *phases == "all" {
		cfg.phases = allPhases()
	} else {
		for _, p := range strings.Split(*phases, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(phaseNames(), p) {
				return cfg, usageError{fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(phaseNames(), ","))}
			}
			cfg.phases = append(cfg.phases, p)
		}
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	return cfg, nil
}

func phaseNames() []string {
	names := make([]string, len(loadPhases))
	for i, p := range loadPhases {
		names[i] = p.name
	}
	return names
}

// allPhases are the phases of --phases all: every one but discover, which replaces create, and
// stall, which anonymizes a user.
func allPhases() []string {
	return slices.DeleteFunc(phaseNames(), func(p string) bool { return p == "discover" || p == "stall" })
}

func (cfg config) validate() error {
	switch {
	case cfg.token == "":
		return usageError{errors.New("--token (or SCIMLOAD_TOKEN) is required")}
	case cfg.createConcurrency < 0 || cfg.createConcurrency > cfg.users:
		return usageError{errors.New("--create-concurrency must be from 0 to --users")}
	case cfg.concurrency < 1 || cfg.users < 1:
		return usageError{errors.New("--concurrency and --users must be at least 1")}
	case cfg.concurrency > cfg.users:
		return usageError{errors.New("--concurrency must not exceed --users: writers each own a share of the users")}
	case cfg.groups < 0 || cfg.groupSize < 0 || cfg.ops < 0 || cfg.duration <= 0:
		return usageError{errors.New("--groups, --group-size and --ops must be >= 0, --duration > 0")}
	case slices.Contains(cfg.phases, "create") == slices.Contains(cfg.phases, "discover"):
		return usageError{errors.New("every phase works on the users the create phase makes, or the discover phase finds: include one of them")}
	}
	return nil
}

// runLoad runs the selected phases in their fixed order.
func runLoad(ctx context.Context, cfg config) *Report {
	l := &load{cfg: cfg, c: newClient(cfg.url, cfg.token, max(cfg.concurrency, cfg.createConcurrency)), runID: newRunID()}
	rep := &Report{Mode: "load", URL: cfg.url, RunID: l.runID, Seed: cfg.seed, Concurrency: cfg.concurrency}
	for _, p := range loadPhases {
		if !slices.Contains(cfg.phases, p.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		rep.Phases = append(rep.Phases, p.run(l, ctx))
		if len(l.users) == 0 {
			rep.Stopped = "no user was created or found; later phases skipped"
			break
		}
	}
	rep.Users, rep.Groups = len(l.users), len(l.groups)
	return rep
}

// addServerStats adds the server's memory and data file size when asked for. Failing to read
// them is reported but is not an error of the server.
func addServerStats(rep *Report, cfg config, stderr io.Writer) {
	if cfg.pid > 0 {
		var err error
		if rep.ServerRSSBytes, rep.ServerPeakRSSBytes, rep.ServerAnonRSSBytes, err = procMemory(cfg.pid); err != nil {
			fmt.Fprintln(stderr, "scimload: server memory:", err)
		}
	}
	if cfg.dataFile != "" {
		if fi, err := os.Stat(cfg.dataFile); err != nil {
			fmt.Fprintln(stderr, "scimload: data file:", err)
		} else {
			rep.DataFileBytes = fi.Size()
		}
	}
}

// procMemory reads a process's resident set size, its peak and its anonymous part (VmRSS,
// VmHWM, RssAnon) from Linux's /proc/PID/status.
func procMemory(pid int) (rss, peak, anon int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch {
		case err != nil:
		case key == "VmRSS":
			rss = kb << 10
		case key == "VmHWM":
			peak = kb << 10
		case key == "RssAnon":
			anon = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, peak, anon, sc.Err()
}

func printText(w io.Writer, rep *Report) {
	switch rep.Mode {
	case "load":
		fmt.Fprintf(w, "scimload run %s against %s: concurrency %d, seed %d; %d users, %d groups created\n",
			rep.RunID, rep.URL, rep.Concurrency, rep.Seed, rep.Users, rep.Groups)
	case "baseline":
		fmt.Fprintf(w, "scimload baseline: bare net/http at %s, concurrency %d\n", rep.URL, rep.Concurrency)
	case "fsync":
		fmt.Fprintf(w, "scimload fsync: 4 KiB write + fdatasync in %s, one writer\n", rep.Dir)
	}
	type line struct {
		name string
		p    PhaseResult
	}
	var lines []line
	width := len("phase")
	for _, p := range rep.Phases {
		lines = append(lines, line{p.Name, p})
		for _, k := range p.Kinds {
			lines = append(lines, line{"  " + p.Name + "/" + k.Name, k})
		}
	}
	for _, l := range lines {
		width = max(width, len(l.name))
	}
	fmt.Fprintf(w, "%-*s %8s %7s %9s %8s %8s %8s %8s\n", width, "phase", "ops", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
	for _, l := range lines {
		fmt.Fprintf(w, "%-*s %8d %7d %9.1f %8.2f %8.2f %8.2f %8.2f\n", width, l.name,
			l.p.Ops, l.p.Errors, l.p.OpsPerSec, l.p.P50Ms, l.p.P95Ms, l.p.P99Ms, l.p.MaxMs)
	}
	fmt.Fprintln(w, "(ops/s counts correct answers only; latencies are of correct answers)")
	for _, p := range rep.Phases {
		if p.Name == "page" && p.FirstPageMs > 0 {
			fmt.Fprintf(w, "page: first page %.2f ms, last page %.2f ms (last/first %.2f)\n",
				p.FirstPageMs, p.LastPageMs, p.LastPageMs/p.FirstPageMs)
		}
		if p.Name == "stall" && p.AnonymizeMs > 0 {
			fmt.Fprintf(w, "stall: anonymization %.1f ms (scrubbedAt in the answer: %t); longest time without a completed write: %.1f ms while it ran, %.1f ms in the rest of the run (%d over 50 ms); in windows as long elsewhere: median %.1f ms, p90 %.1f ms\n",
				p.AnonymizeMs, p.Scrubbed, p.StallMs, p.BaselineStallMs, p.BaselineStallsOver50, p.WindowStallP50Ms, p.WindowStallP90Ms)
		}
		for _, s := range p.ErrorSamples {
			fmt.Fprintf(w, "error in %s: %s\n", p.Name, s)
		}
	}
	if rep.ServerRSSBytes > 0 {
		fmt.Fprintf(w, "server RSS %s (peak %s), of which its own memory %s, the rest the mapped data file\n", mib(rep.ServerRSSBytes), mib(rep.ServerPeakRSSBytes), mib(rep.ServerAnonRSSBytes))
	}
	if rep.DataFileBytes > 0 {
		fmt.Fprintf(w, "data file %s\n", mib(rep.DataFileBytes))
	}
	if rep.Stopped != "" {
		fmt.Fprintln(w, "stopped:", rep.Stopped)
	}
	fmt.Fprintf(w, "%d errors\n", rep.Errors)
}
