// Package scimserver is the HTTP side of the service: the chi router, authentication and
// tenancy, the request log, the SCIM 2.0 endpoints (RFC 7643/7644) for Users and Groups, and the
// translation between SCIM JSON and stored records. It never touches bbolt itself: every read and
// write goes through package storage.
package scimserver

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/storage"
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
	// ScanTimeout bounds a listing that no index serves (a scan or a sort), and its wait for a
	// scan slot: past it the answer is 400 tooMany (429 when no slot freed); 0 means 5 seconds.
	ScanTimeout time.Duration
	// MaxScans is how many such listings may run at once; 0 means half the CPUs (at least one).
	MaxScans int
	// ScrubWait bounds how long the answer to an anonymization waits for the data file's free
	// pages to be overwritten before it answers that this is pending; 0 means 2 seconds.
	ScrubWait time.Duration
}

// Server serves the SCIM API over a store.
type Server struct {
	store   *storage.Store
	opts    Options
	log     zerolog.Logger
	router  http.Handler
	users   *resourceType
	groups  *resourceType
	elimity scim.Server
	pages   pageCache
	limiter *failureLimiter
	metrics *metrics
	scans   scanSlots
}

// New builds a Server over store.
func New(store *storage.Store, opts Options) (*Server, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 1000
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if err := CheckBaseURL(opts.BaseURL); err != nil {
		return nil, err
	}
	if opts.ScrubWait <= 0 {
		opts.ScrubWait = 2 * time.Second
	}
	if opts.ScanTimeout <= 0 {
		opts.ScanTimeout = 5 * time.Second
	}
	if opts.MaxScans <= 0 {
		opts.MaxScans = max(1, runtime.GOMAXPROCS(0)/2)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	s := &Server{store: store, opts: opts, log: opts.Logger, users: userType(), groups: groupType(),
		limiter: newFailureLimiter(20, 3*time.Second), metrics: newMetrics(store), scans: make(scanSlots, opts.MaxScans)}
	store.ObserveCommits(s.metrics.observeCommit)
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
	r.With(s.authenticate(storage.ScopeAdmin)).Get("/metrics", s.metrics.handler.ServeHTTP)
	r.Route("/api/v1/admin", s.adminRoutes)
	r.Route("/api/v1", s.platformRoutes)
	r.Route("/scim/v2", func(r chi.Router) {
		r.Use(s.authenticate(storage.ScopeSCIM), s.readBody)
		r.Get("/", s.rootQuery)
		r.Post("/.search", s.rootSearch)
		r.Get("/ServiceProviderConfig", s.serviceProviderConfig)
		r.Get("/Schemas", s.discovery)
		r.Get("/Schemas/*", s.discovery)
		r.Get("/ResourceTypes", s.discovery)
		r.Get("/ResourceTypes/*", s.discovery)
		for _, rt := range []*resourceType{s.users, s.groups} {
			r.Route(rt.endpoint, func(r chi.Router) {
				r.Get("/", s.list(rt))
				r.Post("/", s.create(rt))
				r.Post("/.search", s.search(rt))
				r.Get("/.search", s.methodNotAllowed)
				r.Get("/{id}", s.get(rt))
				r.Put("/{id}", s.replace(rt))
				r.Patch("/{id}", s.patch(rt))
				r.Delete("/{id}", s.delete(rt))
				if rt == s.users {
					r.Post("/{id}/.anonymize", s.anonymizeAction)
				}
			})
		}
	})
	return r
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, errorf(http.StatusMethodNotAllowed, "", "the method is not allowed on this endpoint"))
}
