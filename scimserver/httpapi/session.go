package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// Console sessions. An operator signs in once with an admin-scope token; the server keeps the
// token in memory behind a random session id, which the browser holds in an HttpOnly, Secure,
// SameSite=Strict cookie. Every request of a session authenticates the token again, so revoking
// it, its expiry or disabling its tenant ends the session on the next request. Every
// state-changing request of a session must carry the session's CSRF token in a header and come
// from the console's own origin. Sessions live in this process only: a restart signs everyone
// out.

const (
	// sessionCookie is the cookie's name; the __Host- prefix makes browsers accept it only
	// when Secure, with Path=/ and no Domain, so no other host or path can plant one.
	sessionCookie   = "__Host-scimserver-console"
	csrfHeader      = "X-CSRF-Token"
	sessionLifetime = 8 * time.Hour    // from sign-in, whatever the activity
	sessionIdle     = 30 * time.Minute // without a request
	maxSessions     = 1000
)

// session is one signed-in operator.
type session struct {
	secret  string // the admin token, never written anywhere
	csrf    string
	tokenID string
	expires time.Time
	seen    time.Time
}

// sessions holds live sessions by the SHA-256 of their id, so that nothing stored can be
// presented as a cookie.
type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	now func() time.Time
}

func newSessions() *sessions {
	return &sessions{m: map[[32]byte]*session{}, now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for the token with secret and returns its id (the cookie's value).
func (ss *sessions) create(secret string, tok scimserver.Token) (string, *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.m) >= maxSessions {
		ss.evict(now)
	}
	id := randomToken()
	s := &session{secret: secret, csrf: randomToken(), tokenID: tok.ID, expires: now.Add(sessionLifetime), seen: now}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

// evict drops expired sessions and, if none was, the least recently seen one.
func (ss *sessions) evict(now time.Time) {
	var oldest [32]byte
	var seen time.Time
	dropped := false
	for k, s := range ss.m {
		if !s.live(now) {
			delete(ss.m, k)
			dropped = true
		} else if seen.IsZero() || s.seen.Before(seen) {
			oldest, seen = k, s.seen
		}
	}
	if !dropped {
		delete(ss.m, oldest)
	}
}

func (s *session) live(now time.Time) bool {
	return now.Before(s.expires) && now.Sub(s.seen) < sessionIdle
}

// get returns the live session with id, marking it seen.
func (ss *sessions) get(id string) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := sha256.Sum256([]byte(id))
	s, ok := ss.m[k]
	if !ok {
		return nil, false
	}
	now := ss.now()
	if !s.live(now) {
		delete(ss.m, k)
		return nil, false
	}
	s.seen = now
	return s, true
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// sessionOf returns the request's live session after authenticating its token again, with
// the token recorded as the request's (its actor and log fields). ok is false when the request
// has no session cookie or its session ended; a cookie of an ended session is cleared.
func (s *Server) sessionOf(w http.ResponseWriter, r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	sess, ok := s.sessions.get(c.Value)
	if ok {
		tok, err := s.svc.Authenticate(r.Context(), sess.secret)
		if err == nil && scimserver.HasScope(tok, scimserver.ScopeAdmin) {
			info(r).token = tok
			return sess, true
		}
		s.sessions.remove(c.Value)
	}
	clearSessionCookie(w)
	return nil, false
}

func setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionLifetime / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// safeMethod reports whether a request changes nothing, and so needs no CSRF token.
func safeMethod(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead
}

// sameOrigin reports whether a browser says the request comes from a page of this server. A
// client that is not a browser sends neither header.
func (s *Server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if u.Host == r.Host {
		return true
	}
	pub, err := url.Parse(s.opts.BaseURL)
	return err == nil && pub.Host != "" && u.Host == pub.Host
}

// checkCSRF admits a state-changing request of a session only with the session's CSRF token,
// from the console's origin.
func (s *Server) checkCSRF(r *http.Request, sess *session) error {
	if safeMethod(r) {
		return nil
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 || !s.sameOrigin(r) {
		return errorf(http.StatusForbidden, "", "the request lacks the console session's CSRF token or comes from another origin")
	}
	return nil
}

// adminAuth admits admin API requests with an admin-scope bearer token, or from a console
// session (state-changing ones with its CSRF token). A request with an Authorization header is
// judged by it alone.
func (s *Server) adminAuth(next http.Handler) http.Handler {
	byBearer := s.authenticate(scimserver.ScopeAdmin)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			byBearer.ServeHTTP(w, r)
			return
		}
		sess, ok := s.sessionOf(w, r)
		if !ok {
			byBearer.ServeHTTP(w, r) // answers as for a missing token
			return
		}
		if err := s.checkCSRF(r, sess); err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireSession admits console requests of a live session (state-changing ones with its
// CSRF token); others get 401.
func (s *Server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.sessionOf(w, r)
		if !ok {
			writeError(w, r, errorf(http.StatusUnauthorized, "", "sign in to the console first"))
			return
		}
		if err := s.checkCSRF(r, sess); err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withSession(r.Context(), sess)))
	})
}

type sessionKey struct{}

func withSession(ctx context.Context, sess *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, sess)
}

// sessionFrom is the session requireSession admitted the request with.
func sessionFrom(r *http.Request) *session {
	sess, _ := r.Context().Value(sessionKey{}).(*session)
	return sess
}
