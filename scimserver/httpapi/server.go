// Package httpapi is the HTTP adapter of the SCIM domain: the chi router, authentication and
// tenancy, body limits, the request log and metrics, and the SCIM 2.0 endpoints (RFC 7643/7644),
// the platform API and the admin API. Each handler reads the request, calls one method of the
// domain's Service and writes its answer; domain errors become SCIM error bodies in one function.
package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/scimserver"
)

// Options configure a Server.
type Options struct {
	// BaseURL is the public URL of the SCIM root (…/scim/v2) used in meta.location and $ref;
	// empty means derive it from each request's Host.
	BaseURL string
	// MaxBodyBytes bounds a request body; 0 means 1 MiB.
	MaxBodyBytes int64
	// MaxResults bounds a page; 0 means 1000.
	MaxResults int
	// MaxHeaderBytes bounds the request line and headers; 0 means 64 KiB. Set net/http's own
	// limit higher, so that this one answers first, with a SCIM error.
	MaxHeaderBytes int
	// Logger receives one line per request; the zero value discards.
	Logger zerolog.Logger
	// FeedMaxWait caps the wait of a long poll on the change feed; 0 means 60s.
	FeedMaxWait time.Duration
	// FeedMaxWaiters caps the long polls and event streams on one tenant's feed at a time; 0
	// means 32.
	FeedMaxWaiters int
	// FeedHeartbeat is how often an idle event stream sends a heartbeat; 0 means 15s.
	FeedHeartbeat time.Duration
	// ActivityPerTenant bounds the SCIM requests the console shows per tenant; 0 means 1000.
	ActivityPerTenant int
}

// Server serves the service over HTTP.
type Server struct {
	svc     *scimserver.Service
	opts    Options
	log     zerolog.Logger
	router  http.Handler
	users   *scimserver.Kind
	groups  *scimserver.Kind
	elimity scim.Server
	limiter *failureLimiter
	metrics *metrics
	waiters *waiters
	drained context.Context // cancelled by Drain
	drain   context.CancelFunc
	// activity and sessions serve the operator console.
	activity *activityLog
	sessions *sessions
}

// New builds a Server over svc.
func New(svc *scimserver.Service, opts Options) (*Server, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 1000
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.FeedMaxWait <= 0 {
		opts.FeedMaxWait = defaultMaxWait
	}
	if opts.FeedMaxWaiters <= 0 {
		opts.FeedMaxWaiters = defaultMaxWaiters
	}
	if opts.FeedHeartbeat <= 0 {
		opts.FeedHeartbeat = defaultHeartbeat
	}
	if err := CheckBaseURL(opts.BaseURL); err != nil {
		return nil, err
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	s := &Server{svc: svc, opts: opts, log: opts.Logger, users: svc.Users(), groups: svc.Groups(),
		limiter: newFailureLimiter(20, 3*time.Second), metrics: newMetrics(svc),
		waiters:  &waiters{max: opts.FeedMaxWaiters, n: map[string]int{}},
		activity: newActivityLog(opts.ActivityPerTenant), sessions: newSessions()}
	s.drained, s.drain = context.WithCancel(context.Background())
	var err error
	if s.elimity, err = s.discoveryServer(); err != nil {
		return nil, err
	}
	s.router = s.routes()
	return s, nil
}

// ServeHTTP canonicalises SCIM paths (endpoint names in any letter case, trailing slashes, as
// Microsoft's test collection sends them) and dispatches to the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if headerBytes(r) > s.opts.MaxHeaderBytes {
		// net/http's own limit answers in plain text; this one answers as SCIM.
		writeError(w, r, errorf(http.StatusRequestHeaderFieldsTooLarge, "", "the request headers are larger than the server accepts"))
		return
	}
	r.URL.Path, r.URL.RawPath = canonicalPath(r.URL.Path), canonicalPath(r.URL.RawPath)
	s.router.ServeHTTP(w, r)
}

// CheckBaseURL accepts "" (locations follow each request's Host) or an absolute http or https
// URL without query or fragment: anything else would put relative or broken URLs into
// meta.location and $ref.
func CheckBaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("the base URL must be an absolute http or https URL such as https://scim.example.com/scim/v2, without query or fragment")
	}
	return nil
}

func headerBytes(r *http.Request) int {
	n := len(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

var endpointNames = []string{"Users", "Groups", "Schemas", "ResourceTypes", "ServiceProviderConfig", "Me", ".search"}

func canonicalPath(p string) string {
	const root = "/scim/v2"
	if p == "" || !strings.HasPrefix(strings.ToLower(p), root) {
		return p
	}
	rest := p[len(root):]
	if rest != "" && rest[0] != '/' {
		return p
	}
	rest = strings.TrimRight(rest, "/")
	if rest == "" {
		return root + "/"
	}
	seg, tail, _ := strings.Cut(rest[1:], "/")
	for _, name := range endpointNames {
		if strings.EqualFold(seg, name) {
			seg = name
			break
		}
	}
	if tail != "" {
		return root + "/" + seg + "/" + tail
	}
	return root + "/" + seg
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestLog, s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errorf(http.StatusNotFound, "", "no such endpoint"))
	})
	r.MethodNotAllowed(s.methodNotAllowed)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.ready)
	r.With(s.authenticate(scimserver.ScopeAdmin)).Get("/metrics", s.metrics.handler.ServeHTTP)
	r.Route("/api/v1/admin", s.adminRoutes)
	r.Route("/console", s.consoleRoutes)
	r.Route("/api/v1", s.platformRoutes)
	r.Route("/scim/v2", func(r chi.Router) {
		r.Use(s.authenticate(scimserver.ScopeSCIM), s.readBody)
		r.Get("/", s.rootQuery)
		r.Post("/.search", s.rootSearch)
		r.Get("/ServiceProviderConfig", s.serviceProviderConfig)
		r.Get("/Schemas", s.discovery)
		r.Get("/Schemas/*", s.discovery)
		r.Get("/ResourceTypes", s.discovery)
		r.Get("/ResourceTypes/*", s.discovery)
		for _, k := range s.svc.Kinds() {
			r.Route(k.Endpoint, func(r chi.Router) {
				r.Get("/", s.list(k))
				r.Post("/", s.create(k))
				r.Post("/.search", s.search(k))
				r.Get("/.search", s.methodNotAllowed)
				r.Get("/{id}", s.get(k))
				r.Put("/{id}", s.replace(k))
				r.Patch("/{id}", s.patch(k))
				r.Delete("/{id}", s.delete(k))
				if k.Audited() {
					r.Post("/{id}/.anonymize", s.anonymizeAction)
				}
			})
		}
	})
	return r
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.Store().Ping(r.Context()); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, errorf(http.StatusMethodNotAllowed, "", "the method is not allowed on this endpoint"))
}
