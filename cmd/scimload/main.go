// Command scimload measures a running SCIM server under load and checks every answer it gets.
//
//	scimload [--url URL --token T --users N --phases P ...]   load phases against --url
//	scimload baseline [--addr A] [--size B] [--concurrency C] [--duration D] [--post]
//	scimload fsync [--dir DIR] [--duration D] [--pages N [--contiguous | --log] [--span MiB]]
//
// A load run creates --users users (or, with the discover phase, learns those the server holds),
// then reads, looks up, patches, groups and pages through them (see --phases); a wrong answer
// counts as an error, never as a fast response. baseline measures a bare net/http server with
// the same client, fsync the disk's single-writer commit rate: the two ceilings the server's
// numbers are read against. Each phase prints a line on stderr as it ends; the report follows
// on stdout (--json for one JSON document).
//
// Exit codes: 0 no errors, 1 errors (or the run was interrupted), 2 command-line mistake.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/spf13/cobra"
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
	feedToken                                  string
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
	// Feed is how the change feed's followers kept up with the create phase (--feed-token).
	Feed   []FeedResult `json:"feed,omitempty"`
	Errors int          `json:"errors"`
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

// run is the whole command: main only adds the process around it. Its flags are the main
// command's kind (GNU style, --concurrency 8), and so are its exit codes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var rep *Report
	root := newRoot(&rep, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "scimload:", err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "scimload:", err)
		return 1
	case rep == nil: // --help
		return 0
	}
	for _, p := range rep.Phases {
		rep.Errors += p.Errors
	}
	rep.Errors += feedErrors(rep.Feed)
	if ctx.Err() != nil && rep.Stopped == "" {
		rep.Stopped = "interrupted"
	}
	if asJSON, _ := root.PersistentFlags().GetBool("json"); asJSON {
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

// newRoot builds the command tree; a run's report lands in *rep. Each phase prints one line on
// progress as it ends, so that a long run shows where it is wherever its output goes.
func newRoot(rep **Report, progress io.Writer) *cobra.Command {
	var cfg config
	var phases string
	root := &cobra.Command{
		Use:   "scimload",
		Short: "Drive a running SCIM server with an identity provider's workload and check every answer",
		Long: `scimload creates --users users (or, with the discover phase, learns those the server holds),
then reads, looks up, patches, groups and pages through them (see --phases); a wrong answer
counts as an error, never as a fast response. "scimload baseline" measures a bare net/http server
with the same client and "scimload fsync" the disk's single-writer commit rate: the two ceilings
the server's numbers are read against.

Exit codes: 0 no errors, 1 errors (or the run was interrupted), 2 command-line mistake.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.setPhases(phases); err != nil {
				return err
			}
			if err := cfg.validate(); err != nil {
				return err
			}
			*rep = runLoad(cmd.Context(), cfg, progress)
			addServerStats(*rep, cfg, progress)
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().Bool("json", false, "print the report as one JSON document")
	f := root.Flags()
	f.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/scim/v2", "SCIM base URL")
	f.StringVar(&cfg.token, "token", os.Getenv("SCIMLOAD_TOKEN"), "bearer token [SCIMLOAD_TOKEN]")
	f.IntVar(&cfg.concurrency, "concurrency", 8, "concurrent requests")
	f.IntVar(&cfg.createConcurrency, "create-concurrency", 0, "concurrent requests of the create phase (default: --concurrency)")
	f.IntVar(&cfg.users, "users", 10000, "users the create phase makes")
	f.IntVar(&cfg.groups, "groups", 10, "groups the groups phase makes")
	f.IntVar(&cfg.groupSize, "group-size", 1000, "members each group gets (at most --users)")
	f.IntVar(&cfg.ops, "ops", 5000, "requests of each get, lookup and patch phase")
	f.DurationVar(&cfg.duration, "duration", 30*time.Second, "length of the mix and stall phases")
	f.IntVar(&cfg.discoverMax, "discover-max", 0, "users the discover phase learns at most, from the first pages (0: all), so that a run can leave most of the data file unread")
	f.StringVar(&phases, "phases", "all", "comma-separated phases to run: "+strings.Join(phaseNames(), ","))
	f.IntVar(&cfg.pid, "pid", 0, "server process id, to report its memory and CPU time (Linux /proc)")
	f.StringVar(&cfg.dataFile, "data-file", "", "server data file, to report its size")
	f.Uint64Var(&cfg.seed, "seed", 0, "random seed for the choice of users and operations; 0 picks one")
	f.StringVar(&cfg.feedToken, "feed-token", os.Getenv("SCIMLOAD_FEED_TOKEN"),
		"platform token: follow the change feed (long poll and event stream) during the create phase and measure delivery [SCIMLOAD_FEED_TOKEN]")

	var concurrency, size int
	var duration time.Duration
	var post bool
	var addr string
	baseline := &cobra.Command{
		Use:   "baseline",
		Short: "Measure a bare net/http server with the load's own client: the HTTP ceiling",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if size < 0 || concurrency < 1 || duration <= 0 {
				return usageError{errors.New("--size must be >= 0, --concurrency >= 1, --duration > 0")}
			}
			var err error
			*rep, err = runBaseline(cmd.Context(), addr, size, concurrency, duration, post)
			if err == nil {
				printProgress(progress, (*rep).Phases[0])
			}
			return err
		},
	}
	bf := baseline.Flags()
	bf.StringVar(&addr, "addr", "127.0.0.1:0", "address the bare server listens on (port 0: any free port)")
	bf.IntVar(&concurrency, "concurrency", 8, "concurrent requests")
	bf.IntVar(&size, "size", 1024, "response body size in bytes (a GET /Users/{id} answer is about 1 KiB)")
	bf.DurationVar(&duration, "duration", 10*time.Second, "how long to measure")
	bf.BoolVar(&post, "post", false, "POST the create phase's user bodies (read to the end, answered 201) instead of GET")

	var dir string
	var fsyncDuration time.Duration
	var commit fsyncCommit
	var spanMiB int64
	fsync := &cobra.Command{
		Use:   "fsync",
		Short: "Measure the disk's commit rate for one writer (write + fdatasync): the durability ceiling",
		Long: `Measure the disk's commit rate for one writer. By default a commit is one 4 KiB write and an
fdatasync: the ceiling of a single-writer store. With --pages N a commit is what bbolt writes
for one: N pages at random places of a --span already written (or side by side with
--contiguous), an fdatasync, the meta page and an fdatasync again. Set N to a run's pages per
commit (scimserver_store_commit_page_writes) to see what its commits cost the disk alone. With
--log a commit is what the server's commit log writes for one: the N pages in one write after
the previous commit's, and one fdatasync.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if commit.pages < 0 || spanMiB < 1 || int64(commit.pages) >= spanMiB<<20/4096 {
				return usageError{fmt.Errorf("--pages must be 0 or more and fit in --span (%d MiB)", spanMiB)}
			}
			if (commit.contiguous || commit.log || cmd.Flags().Changed("span")) && commit.pages == 0 {
				return usageError{errors.New("--contiguous, --log and --span need --pages")}
			}
			if commit.contiguous && commit.log {
				return usageError{errors.New("--contiguous and --log are two kinds of commit: choose one")}
			}
			commit.span = spanMiB << 20
			if commit.pages == 0 {
				commit.span = 1 << 20 // one page at a time, over the same MiB
			}
			var err error
			*rep, err = runFsync(cmd.Context(), dir, fsyncDuration, commit)
			if err == nil {
				printProgress(progress, (*rep).Phases[0])
			}
			return err
		},
	}
	fsync.Flags().StringVar(&dir, "dir", ".", "directory of the test file: the data file's, to measure its disk")
	fsync.Flags().DurationVar(&fsyncDuration, "duration", 5*time.Second, "how long to measure")
	fsync.Flags().IntVar(&commit.pages, "pages", 0, "pages per commit, written as bbolt writes them (0: one write and one fdatasync)")
	fsync.Flags().BoolVar(&commit.contiguous, "contiguous", false, "write a commit's pages side by side instead of at random places")
	fsync.Flags().BoolVar(&commit.log, "log", false, "write a commit's pages as the commit log does: appended in one write, one fdatasync")
	fsync.Flags().Int64Var(&spanMiB, "span", 256, "with --pages: MiB of test file the pages are spread over (written first)")

	root.AddCommand(baseline, fsync)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SuggestionsMinimumDistance = 2
	return root
}

// noArgs refuses arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// unknownCommand is the usage error for an argument of the load command, which takes none: most
// likely a mistyped mode.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError{errors.New(msg)}
}

// printProgress writes the one line a phase leaves when it ends.
func printProgress(w io.Writer, p PhaseResult) {
	fmt.Fprintf(w, "scimload: %s: %d ops, %d errors in %.1fs (%.1f ops/s)\n", p.Name, p.Ops, p.Errors, p.Seconds, p.OpsPerSec)
}

// setPhases reads --phases.
func (cfg *config) setPhases(list string) error {
	if list == "all" {
		cfg.phases = allPhases()
		return nil
	}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(phaseNames(), p) {
			return usageError{fmt.Errorf("unknown phase %q (phases: %s)", p, strings.Join(phaseNames(), ","))}
		}
		cfg.phases = append(cfg.phases, p)
	}
	return nil
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
	case cfg.feedToken != "" && !slices.Contains(cfg.phases, "create"):
		return usageError{errNoFeed}
	}
	return nil
}

// runLoad runs the selected phases in their fixed order, with a line on progress as each ends.
func runLoad(ctx context.Context, cfg config, progress io.Writer) *Report {
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	l := &load{cfg: cfg, c: newClient(cfg.url, cfg.token, max(cfg.concurrency, cfg.createConcurrency)), runID: newRunID()}
	rep := &Report{Mode: "load", URL: cfg.url, RunID: l.runID, Seed: cfg.seed, Concurrency: cfg.concurrency}
	for _, p := range loadPhases {
		if !slices.Contains(cfg.phases, p.name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if p.name == "create" && cfg.feedToken != "" {
			fr, err := startFeed(ctx, cfg)
			if err != nil {
				rep.Feed = []FeedResult{{Mode: "start", Error: err.Error()}}
				rep.Stopped = "the change feed cannot be followed; phases skipped"
				break
			}
			l.feed = fr
			rep.Phases = append(rep.Phases, measured(cfg.pid, func() PhaseResult { return p.run(l, ctx) }))
			rep.Feed = fr.finish(l.created, rep.Phases[len(rep.Phases)-1])
			l.feed = nil
		} else {
			rep.Phases = append(rep.Phases, measured(cfg.pid, func() PhaseResult { return p.run(l, ctx) }))
		}
		printProgress(progress, rep.Phases[len(rep.Phases)-1])
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
		fmt.Fprintf(w, "scimload fsync: one writer's commits in %s (fsync: a 4 KiB write and an fdatasync each)\n", rep.Dir)
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
	for _, f := range rep.Feed {
		fmt.Fprintf(w, "feed %-9s %d of the creates delivered (%d missing, %d twice) at %.1f/s while creating at %.1f/s; "+
			"delivery after the transaction began p50 %.2f ms p99 %.2f ms max %.2f ms, after the 201 p50 %.2f ms p99 %.2f ms\n",
			f.Mode, f.Changes, f.Missing, f.Duplicates, f.ChangesPerSec, f.CreatesPerSec,
			f.FromCommitP50Ms, f.FromCommitP99Ms, f.FromCommitMaxMs, f.FromAckP50Ms, f.FromAckP99Ms)
		if f.Error != "" {
			fmt.Fprintf(w, "feed %s: %s\n", f.Mode, f.Error)
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
