package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/scimserver/httpapi"
	"github.com/scimserver/scimserver/scimserver/webhook"
	"github.com/scimserver/scimserver/storage/bolt"
)

type config struct {
	data              string
	addr              string
	baseURL           string
	logLevel          string
	logFormat         string
	maxBody           int64
	maxResults        int
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	shutdownTimeout   time.Duration
	tlsCert, tlsKey   string
	metricsAddr       string
	feedRetention     time.Duration
	feedMaxWait       time.Duration
	feedMaxWaiters    int
	webhookPrivate    bool
	scanTimeout       time.Duration
	maxScans          int
	commitLogBytes    int64
	// bootstrapTokenFile receives the first start's generated token, instead of stderr.
	bootstrapTokenFile string
}

func defaultConfig() *config { return &config{} }

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(env(name, ""), 10, 64); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

func (c *config) bindServe(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", env("SCIMSERVER_ADDR", "127.0.0.1:8080"), "listen address [SCIMSERVER_ADDR]")
	f.StringVar(&c.baseURL, "base-url", env("SCIMSERVER_BASE_URL", ""),
		"public URL of the SCIM root, e.g. https://scim.example.com/scim/v2, for meta.location behind a proxy (default: from each request's Host) [SCIMSERVER_BASE_URL]")
	f.StringVar(&c.logLevel, "log-level", env("SCIMSERVER_LOG_LEVEL", "info"), "debug, info, warn or error [SCIMSERVER_LOG_LEVEL]")
	f.StringVar(&c.logFormat, "log-format", env("SCIMSERVER_LOG_FORMAT", "json"), "json, or console for humans at a terminal [SCIMSERVER_LOG_FORMAT]")
	f.Int64Var(&c.maxBody, "max-body-bytes", envInt("SCIMSERVER_MAX_BODY_BYTES", 1<<20), "largest request body accepted; larger ones get 413 [SCIMSERVER_MAX_BODY_BYTES]")
	f.IntVar(&c.maxResults, "max-results", int(envInt("SCIMSERVER_MAX_RESULTS", 1000)), "largest page a list returns (filter.maxResults) [SCIMSERVER_MAX_RESULTS]")
	f.DurationVar(&c.readHeaderTimeout, "read-header-timeout", envDuration("SCIMSERVER_READ_HEADER_TIMEOUT", 10*time.Second), "time allowed to read request headers [SCIMSERVER_READ_HEADER_TIMEOUT]")
	f.DurationVar(&c.readTimeout, "read-timeout", envDuration("SCIMSERVER_READ_TIMEOUT", 30*time.Second), "time allowed to read a whole request [SCIMSERVER_READ_TIMEOUT]")
	f.DurationVar(&c.writeTimeout, "write-timeout", envDuration("SCIMSERVER_WRITE_TIMEOUT", 60*time.Second), "time allowed to write a response [SCIMSERVER_WRITE_TIMEOUT]")
	f.DurationVar(&c.idleTimeout, "idle-timeout", envDuration("SCIMSERVER_IDLE_TIMEOUT", 120*time.Second), "how long an idle keep-alive connection stays open [SCIMSERVER_IDLE_TIMEOUT]")
	f.Int64Var(&c.commitLogBytes, "commit-log-bytes", envInt("SCIMSERVER_COMMIT_LOG_BYTES", bolt.DefaultCommitLogBytes),
		"bbolt: size at which a commit log file is checkpointed (the data file synced) and the other takes over [SCIMSERVER_COMMIT_LOG_BYTES]")
	f.IntVar(&c.maxHeaderBytes, "max-header-bytes", int(envInt("SCIMSERVER_MAX_HEADER_BYTES", 64<<10)), "largest request header block accepted [SCIMSERVER_MAX_HEADER_BYTES]")
	f.DurationVar(&c.shutdownTimeout, "shutdown-timeout", envDuration("SCIMSERVER_SHUTDOWN_TIMEOUT", 30*time.Second), "how long in-flight requests may finish after SIGINT/SIGTERM [SCIMSERVER_SHUTDOWN_TIMEOUT]")
	f.DurationVar(&c.scanTimeout, "scan-timeout", envDuration("SCIMSERVER_SCAN_TIMEOUT", 5*time.Second),
		"longest a listing that no index serves (a scan or sort) may read, and wait for a scan slot; then 400 tooMany (429 for no slot) [SCIMSERVER_SCAN_TIMEOUT]")
	f.IntVar(&c.maxScans, "max-scans", int(envInt("SCIMSERVER_MAX_SCANS", int64(max(1, runtime.GOMAXPROCS(0)/2)))),
		"listings that no index serves that may run at once [SCIMSERVER_MAX_SCANS]")
	f.StringVar(&c.tlsCert, "tls-cert", env("SCIMSERVER_TLS_CERT", ""), "PEM certificate file: serve HTTPS (with --tls-key) [SCIMSERVER_TLS_CERT]")
	f.StringVar(&c.tlsKey, "tls-key", env("SCIMSERVER_TLS_KEY", ""), "PEM private key file for --tls-cert [SCIMSERVER_TLS_KEY]")
	f.DurationVar(&c.feedRetention, "feed-retention", envDuration("SCIMSERVER_FEED_RETENTION", 0),
		"how far back the change feed serves; an older cursor answers 410 (default: all of the trail) [SCIMSERVER_FEED_RETENTION]")
	f.DurationVar(&c.feedMaxWait, "feed-max-wait", envDuration("SCIMSERVER_FEED_MAX_WAIT", 60*time.Second), "longest wait of a long poll on the change feed [SCIMSERVER_FEED_MAX_WAIT]")
	f.IntVar(&c.feedMaxWaiters, "feed-max-waiters", int(envInt("SCIMSERVER_FEED_MAX_WAITERS", 32)), "long polls and event streams one tenant may hold open at once [SCIMSERVER_FEED_MAX_WAITERS]")
	f.BoolVar(&c.webhookPrivate, "webhook-allow-private", env("SCIMSERVER_WEBHOOK_ALLOW_PRIVATE", "") == "true",
		"deliver webhooks to private, loopback and link-local addresses too (default: public addresses only) [SCIMSERVER_WEBHOOK_ALLOW_PRIVATE]")
	f.StringVar(&c.metricsAddr, "metrics-addr", env("SCIMSERVER_METRICS_ADDR", ""),
		"also serve /metrics, without a token, on this address (keep it private, e.g. 127.0.0.1:9090); on --addr /metrics needs an admin token [SCIMSERVER_METRICS_ADDR]")
	f.StringVar(&c.bootstrapTokenFile, "bootstrap-token-file", env("SCIMSERVER_BOOTSTRAP_TOKEN_FILE", ""),
		"write the first start's generated SCIM token to this file (mode 0600) instead of printing it on stderr, which services and containers ship as logs [SCIMSERVER_BOOTSTRAP_TOKEN_FILE]")
}

func newLogger(level, format string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, usageError{fmt.Errorf("--log-level must be debug, info, warn or error")}
	}
	switch format {
	case "json":
	case "console":
		// Colours only for a terminal: escape codes would litter a file or a log pipeline.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	default:
		return zerolog.Logger{}, usageError{fmt.Errorf("--log-format must be json or console")}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a terminal (and not a file, a pipe or a buffer).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// httpErrorLog routes net/http's own messages (TLS handshake failures, broken connections) into
// the JSON log, instead of plain text in the middle of it.
func httpErrorLog(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log}, "", 0)
}

type httpLogWriter struct{ log zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// GC defaults for the server, each unless its environment variable (GOGC, GOMEMLIMIT) is set.
// Records are read through bbolt's memory map, so the live heap is a few MiB and Go's default
// (collect when the heap doubles) collects after every few MiB of request garbage, a tenth or
// more of a create's CPU. Collecting at five times the live heap instead makes creates about a
// third faster on two cores (BENCHMARKS.md). The soft limit keeps a large live heap from growing
// five-fold: a listing of a million users sorted by an attribute without an index peaks at
// 240 MiB under it and at 766 MiB without it, in the same time.
const (
	gcPercent   = 400
	memoryLimit = 256 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// serve runs the server until SIGINT or SIGTERM, then lets in-flight requests finish and closes
// the data file cleanly. Everything that can stop a start — the command line, the environment's
// tokens, the TLS files, the listen addresses — is checked before the data file is opened, so that
// a start that cannot serve creates nothing and shows no secret.
func serve(ctx context.Context, c *config, stderr io.Writer) error {
	log, err := newLogger(c.logLevel, c.logFormat, stderr)
	if err != nil {
		return err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	if c.feedRetention < 0 || c.feedMaxWait <= 0 || c.feedMaxWaiters < 1 {
		return usageError{errors.New("--feed-retention must not be negative, --feed-max-wait and --feed-max-waiters must be positive")}
	}
	if err := httpapi.CheckBaseURL(c.baseURL); err != nil {
		return usageError{fmt.Errorf("--base-url: %w", err)}
	}
	if c.commitLogBytes < bolt.MinCommitLogBytes {
		return usageError{fmt.Errorf("--commit-log-bytes must be at least %d", bolt.MinCommitLogBytes)}
	}
	env := scimserver.EnvTokens{SCIM: os.Getenv("SCIMSERVER_TOKEN"), Platform: os.Getenv("SCIMSERVER_PLATFORM_TOKEN"),
		Admin: os.Getenv("SCIMSERVER_ADMIN_TOKEN")}
	trimmed, err := env.Clean()
	if err != nil {
		return usageError{err}
	}
	for _, name := range trimmed {
		log.Warn().Str("variable", name).Msg("ignored whitespace around the token (a trailing newline?); clients send it without")
	}
	ln, mln, err := c.listen()
	if err != nil {
		return err
	}
	defer ln.Close()
	if mln != nil {
		defer mln.Close()
	}

	tuneGC()
	store, err := openStore(c, false)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := scimserver.New(store, scimserver.Options{FeedRetention: c.feedRetention, WebhookPrivateTargets: c.webhookPrivate,
		ScanTimeout: c.scanTimeout, MaxScans: c.maxScans, SharedStore: c.onPostgres()})
	if err := svc.Bootstrap(ctx, env, c.firstTokenTo(stderr, log)); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	srv, err := httpapi.New(svc, httpapi.Options{BaseURL: c.baseURL, MaxBodyBytes: c.maxBody,
		MaxResults: c.maxResults, MaxHeaderBytes: c.maxHeaderBytes, Logger: log,
		FeedMaxWait: c.feedMaxWait, FeedMaxWaiters: c.feedMaxWaiters})
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: c.readHeaderTimeout,
		ReadTimeout:       c.readTimeout,
		WriteTimeout:      c.writeTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    2 * c.maxHeaderBytes, // above the SCIM layer's own limit, so that one answers as SCIM
		ErrorLog:          httpErrorLog(log),
	}
	hs.RegisterOnShutdown(srv.Drain) // long polls and event streams answer now rather than hold up the stop
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	log.Info().Str("version", currentBuild().Version).Str("addr", ln.Addr().String()).Str("data", c.dataName()).
		Str("scim", scheme+"://"+ln.Addr().String()+"/scim/v2").Msg("listening")

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: c.readHeaderTimeout, ReadTimeout: c.readTimeout,
			WriteTimeout: c.writeTimeout, IdleTimeout: c.idleTimeout, MaxHeaderBytes: c.maxHeaderBytes, ErrorLog: httpErrorLog(log)}
		go func() {
			if err := ms.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		defer ms.Close()
		log.Info().Str("addr", mln.Addr().String()).Msg("serving /metrics without authentication")
	}
	// Webhooks are delivered until the server stops; the lease names this host and address,
	// unique among the servers sharing the data and the same again after a restart.
	host, _ := os.Hostname()
	hooks, stopHooks := context.WithCancel(context.Background())
	hooksDone := make(chan struct{})
	go func() {
		defer close(hooksDone)
		webhook.New(svc, webhook.Options{Holder: host + " " + ln.Addr().String(), Logger: log}).Run(hooks)
	}()
	defer func() { stopHooks(); <-hooksDone }()
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("shutdown did not finish in time")
	}
	stopHooks()
	<-hooksDone
	if err := store.Close(); err != nil {
		return fmt.Errorf("close data file: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// listen loads the TLS certificate and opens the listeners: the main one (with TLS when
// configured) and, with --metrics-addr, the metrics one (nil otherwise).
func (c *config) listen() (ln, mln net.Listener, err error) {
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("load TLS certificate (--tls-cert, --tls-key): %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if ln, err = net.Listen("tcp", c.addr); err != nil {
		return nil, nil, fmt.Errorf("--addr: %w", err)
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if c.metricsAddr != "" {
		if mln, err = net.Listen("tcp", c.metricsAddr); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	return ln, mln, nil
}

// firstTokenTo says where the secret of a first start's generated SCIM token goes: into
// --bootstrap-token-file (mode 0600) when it is set, so that it never enters the log stream;
// otherwise a banner on stderr, for a start at a terminal.
func (c *config) firstTokenTo(stderr io.Writer, log zerolog.Logger) func(secret string) error {
	if c.bootstrapTokenFile != "" {
		return func(secret string) error {
			if err := writeSecretFile(c.bootstrapTokenFile, secret); err != nil {
				return fmt.Errorf("--bootstrap-token-file: %w", err)
			}
			log.Info().Str("file", c.bootstrapTokenFile).Msg("wrote the default tenant's first SCIM token to the bootstrap token file")
			return nil
		}
	}
	return func(secret string) error {
		if !isTerminal(stderr) {
			log.Warn().Msg("printing the first SCIM token on stderr, which is not a terminal and may be shipped as logs: " +
				"prefer --bootstrap-token-file or SCIMSERVER_TOKEN")
		}
		_, err := fmt.Fprintf(stderr, "\nCreated the default tenant's first SCIM bearer token. It is shown only this once:\n\n    %s\n\n", secret)
		return err
	}
}

// writeSecretFile writes secret to path, readable by its owner only, replacing the file whole:
// a temporary file beside it, synced, renamed over it.
func writeSecretFile(path, secret string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".scimserver-token-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return err
	}
	return bolt.SyncDir(path)
}
