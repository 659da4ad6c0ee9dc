package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

// metrics is the server's Prometheus instrumentation, in a registry of its own (never the
// global one), so that any number of servers can live in one process. Request labels are the
// route pattern, the method and the status class: never an id, a tenant or a query, which would
// make the series unbounded and could carry personal data.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	inFlight         prometheus.Gauge
	authFailures     *prometheus.CounterVec
	commitTime       prometheus.Histogram
	commitWrites     prometheus.Histogram
	commitPageWrites prometheus.Histogram
	feedWaiting      *prometheus.GaugeVec
	feedSent         *prometheus.CounterVec
	handler          http.Handler
}

const metricsNamespace = "scimserver"

// The kinds of change-feed reads the feed metrics tell apart.
const (
	feedKindPoll   = "poll"   // a long poll, waiting
	feedKindPage   = "page"   // a page of changes, waited for or not
	feedKindStream = "stream" // Server-Sent Events
)

func newMetrics(svc *scimserver.Service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: "http",
			Name: "requests_total", Help: "HTTP requests answered, by route pattern, method and status class."},
			[]string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: "http",
			Name: "request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern, method and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"route", "method", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Subsystem: "http",
			Name: "requests_in_flight", Help: "HTTP requests being answered right now."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace,
			Name: "auth_failures_total", Help: "Requests refused for a missing, unknown, revoked or expired bearer token, or one without the scope, by the scope the endpoint requires."},
			[]string{"scope"}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: "store",
			Name: "commit_duration_seconds", Help: "Time to commit one write transaction and make it durable (bbolt: append it to the commit log and fdatasync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: "store",
			Name: "commit_writes", Help: "Writes carried by one commit (group commit shares one fsync among concurrent writers).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		commitPageWrites: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: "store",
			Name: "commit_page_writes", Help: "Pages one commit wrote to the data file besides its meta page: the size of its record in the commit log, and what the next checkpoint syncs. Not observed for PostgreSQL.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		feedWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Subsystem: "feed",
			Name: "waiting", Help: "Change-feed requests holding a connection open: long polls (poll) and event streams (stream)."},
			[]string{"kind"}),
		feedSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: "feed",
			Name: "changes_sent_total", Help: "Changes sent to change-feed readers, in pages (page) and on event streams (stream)."},
			[]string{"kind"}),
	}
	for _, scope := range scimserver.Scopes {
		m.authFailures.WithLabelValues(scope) // show zero before the first failure
	}
	for _, kind := range []string{feedKindPoll, feedKindStream} {
		m.feedWaiting.WithLabelValues(kind)
	}
	for _, kind := range []string{feedKindPage, feedKindStream} {
		m.feedSent.WithLabelValues(kind)
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.authFailures, m.commitTime, m.commitWrites, m.commitPageWrites, m.feedWaiting, m.feedSent,
		newStoreCollector(svc),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if in, ok := svc.Store().(storage.Instrumented); ok {
		in.ObserveCommits(m.observeCommit)
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// observeRequest counts one answered request.
func (m *metrics) observeRequest(route, method string, status int, took time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	class := strconv.Itoa(status/100) + "xx"
	method = metricMethod(method)
	m.requests.WithLabelValues(route, method, class).Inc()
	m.duration.WithLabelValues(route, method, class).Observe(took.Seconds())
}

// metricMethod keeps the method label bounded: a client may send any token as a method.
func metricMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

func (m *metrics) observeCommit(c storage.Commit) {
	m.commitWrites.Observe(float64(c.Writes))
	m.commitTime.Observe(c.Took.Seconds())
	if c.PageWrites > 0 {
		m.commitPageWrites.Observe(float64(c.PageWrites))
	}
}

// MetricsHandler serves the server's metrics in the Prometheus exposition format, without
// authentication: mount it on a listener only the monitoring system can reach (serve's
// --metrics-addr). On the main address the router serves /metrics to admin-scope tokens only.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler }

// storeCollector reads the store's figures when scraped: the data file's size and, per tenant,
// the number of users and groups. These are kept as counters in the store, so a scrape costs
// one small read transaction per tenant whatever the data's size.
type storeCollector struct {
	svc          *scimserver.Service
	size         *prometheus.Desc
	used         *prometheus.Desc
	tenants      *prometheus.Desc
	users        *prometheus.Desc
	groups       *prometheus.Desc
	logBytes     *prometheus.Desc
	checkpoints  *prometheus.Desc
	checkpointS  *prometheus.Desc
	scrubs       *prometheus.Desc
	scrubAge     *prometheus.Desc
	scansRunning *prometheus.Desc
	scansStopped *prometheus.Desc
	hookBacklog  *prometheus.Desc
	hookFailures *prometheus.Desc
	hookSent     *prometheus.Desc
}

func newStoreCollector(svc *scimserver.Service) *storeCollector {
	return &storeCollector{
		svc: svc,
		size: prometheus.NewDesc(metricsNamespace+"_store_size_bytes",
			"Size of the data file on disk in bytes.", nil, nil),
		used: prometheus.NewDesc(metricsNamespace+"_store_used_bytes",
			"Bytes of the data file holding live data; the rest is free pages and room grown ahead of need.", nil, nil),
		tenants: prometheus.NewDesc(metricsNamespace+"_tenants",
			"Tenants, by state (enabled or disabled).", []string{"state"}, nil),
		users: prometheus.NewDesc(metricsNamespace+"_users",
			"Users stored, per tenant.", []string{"tenant"}, nil),
		groups: prometheus.NewDesc(metricsNamespace+"_groups",
			"Groups stored, per tenant.", []string{"tenant"}, nil),
		logBytes: prometheus.NewDesc(metricsNamespace+"_store_commit_log_bytes",
			"Bytes of commits in the commit log that no checkpoint has made redundant yet: what the next open would write back after a crash now (bbolt).", nil, nil),
		checkpoints: prometheus.NewDesc(metricsNamespace+"_store_checkpoints_total",
			"Checkpoints of the commit log completed since the start: each syncs the data file and frees a log file (bbolt).", nil, nil),
		checkpointS: prometheus.NewDesc(metricsNamespace+"_store_checkpoint_seconds_total",
			"Time the checkpoints since the start took, the data file's sync included (bbolt).", nil, nil),
		scrubs: prometheus.NewDesc(metricsNamespace+"_scrub_pending",
			"Anonymizations whose clearing of freed storage (which may still hold the erased values) has not run yet.", nil, nil),
		scrubAge: prometheus.NewDesc(metricsNamespace+"_scrub_pending_age_seconds",
			"Age of the oldest anonymization whose clearing is pending; 0 when none is.", nil, nil),
		scansRunning: prometheus.NewDesc(metricsNamespace+"_query_scans_running",
			"Listings running that no index serves (scans and sorts), at most --max-scans.", nil, nil),
		scansStopped: prometheus.NewDesc(metricsNamespace+"_query_scans_stopped_total",
			"Listings that no index serves, stopped: reason budget (past --scan-timeout: 400 tooMany), busy (no scan slot freed in time: 429) or gone (the client went away).",
			[]string{"reason"}, nil),
		hookBacklog: prometheus.NewDesc(metricsNamespace+"_webhook_backlog_events",
			"How far a webhook's delivered position is behind its tenant's newest cursor, in audit-trail events (the changes it has yet to deliver are among them).",
			[]string{"tenant", "webhook"}, nil),
		hookFailures: prometheus.NewDesc(metricsNamespace+"_webhook_failures",
			"Failed delivery attempts of a webhook since its last success.", []string{"tenant", "webhook"}, nil),
		hookSent: prometheus.NewDesc(metricsNamespace+"_webhook_delivered_total",
			"Changes a webhook's receiver has taken.", []string{"tenant", "webhook"}, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.used
	ch <- c.logBytes
	ch <- c.checkpoints
	ch <- c.checkpointS
	ch <- c.tenants
	ch <- c.users
	ch <- c.groups
	ch <- c.scrubs
	ch <- c.scrubAge
	ch <- c.scansRunning
	ch <- c.scansStopped
	ch <- c.hookBacklog
	ch <- c.hookFailures
	ch <- c.hookSent
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	if in, ok := c.svc.Store().(storage.Instrumented); ok {
		size, used, err := in.Sizes()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.size, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(used))
	}
	if cp, ok := c.svc.Store().(storage.Checkpointed); ok {
		f := cp.LogFigures()
		ch <- prometheus.MustNewConstMetric(c.logBytes, prometheus.GaugeValue, float64(f.Bytes))
		ch <- prometheus.MustNewConstMetric(c.checkpoints, prometheus.CounterValue, float64(f.Checkpoints))
		ch <- prometheus.MustNewConstMetric(c.checkpointS, prometheus.CounterValue, f.CheckpointTime.Seconds())
	}
	if e, ok := c.svc.Store().(storage.Eraser); ok {
		if n, oldest, err := e.PendingErasures(); err != nil {
			ch <- prometheus.NewInvalidMetric(c.scrubs, err)
		} else {
			age := 0.0
			if n > 0 {
				age = time.Since(oldest).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.scrubs, prometheus.GaugeValue, float64(n))
			ch <- prometheus.MustNewConstMetric(c.scrubAge, prometheus.GaugeValue, age)
		}
	}
	scans := c.svc.ScanStats()
	ch <- prometheus.MustNewConstMetric(c.scansRunning, prometheus.GaugeValue, float64(scans.Running))
	for reason, n := range scans.Stopped {
		ch <- prometheus.MustNewConstMetric(c.scansStopped, prometheus.CounterValue, float64(n), reason)
	}
	tenants, err := c.svc.Tenants(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.tenants, err)
		return
	}
	enabled, disabled := 0, 0
	for _, t := range tenants {
		if t.Disabled {
			disabled++
		} else {
			enabled++
		}
		ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(t.Users), t.ID)
		ch <- prometheus.MustNewConstMetric(c.groups, prometheus.GaugeValue, float64(t.Groups), t.ID)
	}
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(enabled), "enabled")
	ch <- prometheus.MustNewConstMetric(c.tenants, prometheus.GaugeValue, float64(disabled), "disabled")
	c.collectWebhooks(ch)
}

// collectWebhooks reports each active webhook's delivery state, from what the deliverers store
// (whichever server delivers it).
func (c *storeCollector) collectWebhooks(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	hooks, err := c.svc.ActiveWebhooks(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.hookBacklog, err)
		return
	}
	heads := map[string]uint64{}
	for _, h := range hooks {
		head, ok := heads[h.Tenant]
		if !ok {
			if head, err = c.svc.Head(ctx, h.Tenant); err != nil {
				ch <- prometheus.NewInvalidMetric(c.hookBacklog, err)
				return
			}
			heads[h.Tenant] = head
		}
		ch <- prometheus.MustNewConstMetric(c.hookBacklog, prometheus.GaugeValue, float64(head-min(head, h.Position)), h.Tenant, h.ID)
		ch <- prometheus.MustNewConstMetric(c.hookFailures, prometheus.GaugeValue, float64(h.Failures), h.Tenant, h.ID)
		ch <- prometheus.MustNewConstMetric(c.hookSent, prometheus.CounterValue, float64(h.Delivered), h.Tenant, h.ID)
	}
}
