package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// reqInfo travels with a request: who it is, and what the log line should say about it.
type reqInfo struct {
	id    string
	token scimserver.Token
	err   error
	body  []byte
	// authFailure says why the bearer token was refused (token is then the one it matched, if
	// any, for the log line only: no handler runs after a refusal).
	authFailure string
}

type ctxKey struct{}

func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(ctxKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func requestID(r *http.Request) string  { return info(r).id }
func setErr(r *http.Request, err error) { info(r).err = err }
func tenantOf(r *http.Request) string   { return info(r).token.Tenant }

func actorOf(r *http.Request) scimserver.Actor {
	t := info(r).token
	return scimserver.Actor{ID: t.ID, Name: t.Name}
}

// validRequestID accepts an incoming X-Request-Id of up to 128 safe characters.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int
	writeErr    error
	undelivered string // why the client did not get the answer, when it did not
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// delivered pushes the answer out and returns the status to log and count: the status sent, or
// statusClientGone when the client did not get it (it went away, or the server's write timeout
// cut the answer), with the reason in w.undelivered. A 200 in the log means a 200 was sent.
func (w *statusWriter) delivered(out http.ResponseWriter, r *http.Request) int {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	// Whether the client is still there is asked before the rest of the answer goes out: a
	// client that reads it whole may close its connection at once, which cancels the context
	// before this function returns although the answer was delivered.
	gone := r.Context().Err() != nil
	err := w.writeErr
	if err == nil {
		err = http.NewResponseController(out).Flush()
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.undelivered = "the write timeout passed before the answer was sent"
	case gone:
		w.undelivered = "the client went away"
	case err != nil:
		w.undelivered = "the connection failed" // its error names the client's address
	default:
		return w.status
	}
	return statusClientGone
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

// requestLog assigns the request id and writes one log line per request: ids, route pattern,
// status, size and duration. Never a token, a body, a query string or a personal value.
func (s *Server) requestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		ri := &reqInfo{id: r.Header.Get("X-Request-Id")}
		if !validRequestID(ri.id) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			ri.id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", ri.id)
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
		next.ServeHTTP(sw, r)
		status := sw.delivered(w, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		took := time.Since(start)
		s.metrics.observeRequest(route, r.Method, status, took)
		s.activity.observe(ri, r.Method, route, status, took)
		ev := s.log.Info()
		switch {
		case sw.status >= 500:
			ev = s.log.Error()
		case status != sw.status:
			ev = s.log.Warn()
		}
		ev = ev.Str("requestId", ri.id).Str("method", metricMethod(r.Method)).Str("route", route).
			Int("status", status).Int("bytes", sw.bytes).Float64("duration_ms", float64(took.Microseconds())/1000)
		if status != sw.status {
			ev = ev.Int("intendedStatus", sw.status).Str("delivery", sw.undelivered)
		}
		if ri.token.Tenant != "" {
			ev = ev.Str("tenant", ri.token.Tenant).Str("tokenId", ri.token.ID)
		}
		if ri.authFailure != "" {
			ev = ev.Str("authFailure", ri.authFailure)
		}
		if ri.err != nil {
			ev = ev.Str("error", ri.err.Error())
		}
		ev.Msg("request")
	})
}

// recoverer turns a panic into a SCIM 500 and a log line with the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error().Str("requestId", requestID(r)).Interface("panic", p).Bytes("stack", debug.Stack()).Msg("panic")
				writeError(w, r, errorf(http.StatusInternalServerError, "", "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate admits requests with a live bearer token of scope. Every refusal answers the
// same 401, so that a client learns nothing about which tokens or tenants exist (nor, with
// 403 insufficient_scope, that a token it holds is valid elsewhere); the log line says why.
func (s *Server) authenticate(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ri := info(r)
			tok, reason, err := s.checkToken(r, scope)
			switch {
			case err != nil:
				// The store could not say whether the token is good: the client is not at fault
				// and should retry (503 with Retry-After), not take its token for a bad one.
				writeError(w, r, err)
			case reason == "":
				ri.token = tok
				next.ServeHTTP(w, r)
			default:
				ri.token, ri.authFailure = tok, reason
				s.refuse(w, r, scope, "a valid bearer token is required")
			}
		})
	}
}

// checkToken finds the live token of scope the request presents, or says why there is none
// (and which token the secret matched, if any); err when the store could not be read.
func (s *Server) checkToken(r *http.Request, scope string) (scimserver.Token, string, error) {
	secret, ok := bearer(r)
	if !ok {
		return scimserver.Token{}, "no bearer token", nil
	}
	tok, err := s.svc.Authenticate(r.Context(), secret)
	var af *scimserver.AuthFailure
	switch {
	case errors.As(err, &af):
		return af.Token, af.Reason, nil
	case err != nil:
		return scimserver.Token{}, "", err
	case !scimserver.HasScope(tok, scope):
		return tok, "wrong scope: has " + strings.Join(tok.Scopes, " and ") + ", needs " + scope, nil
	}
	return tok, "", nil
}

// refuse answers a failed authentication for scope: 401 with detail, or 429 once the client's
// address has failed too often.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, scope, detail string) {
	s.metrics.authFailures.WithLabelValues(scope).Inc()
	if wait := s.limiter.fail(clientAddr(r)); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		writeError(w, r, errorf(http.StatusTooManyRequests, "", "too many failed authentications from this address; retry later"))
		return
	}
	writeError(w, r, errorf(http.StatusUnauthorized, "", detail))
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = scimserver.PresentedSecret(tok)
	return tok, tok != ""
}

// readBody reads a request body once, within the size limit, after checking its media type.
// Handlers get it from body(r); nothing else reads r.Body.
func (s *Server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/scim+json" && mt != "application/json") {
				writeError(w, r, errorf(http.StatusUnsupportedMediaType, "", "request bodies must be application/scim+json or application/json"))
				return
			}
		}
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, r, errorf(http.StatusRequestEntityTooLarge, "", "the request body is larger than the server accepts"))
				return
			}
			writeError(w, r, badRequest("invalidSyntax", "the request body could not be read"))
			return
		}
		info(r).body = raw
		r.Body = io.NopCloser(bytes.NewReader(raw))
		next.ServeHTTP(w, r)
	})
}

func body(r *http.Request) []byte { return info(r).body }
