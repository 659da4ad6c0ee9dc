package httpapi

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// The operator console (/console): pages and scripts embedded in the binary, served to
// operators signed in with an admin-scope token. The pages hold no data; their scripts read and
// change everything through the admin API (/api/v1/admin) with the session's cookie.

//go:embed console
var consoleFiles embed.FS

// consolePages are the console's page paths under /console: each serves the same document,
// whose script shows the page the path names.
var consolePages = []string{
	"/",
	"/tenants/{tenant}/tokens",
	"/tenants/{tenant}/activity",
	"/tenants/{tenant}/people",
	"/tenants/{tenant}/people/{user}",
}

// consoleCSP allows the console's own scripts, styles and requests, and nothing else: no inline
// script or style, no framing, no form posted elsewhere.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders go on every console page and admin API answer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) consoleRoutes(r chi.Router) {
	r.Use(securityHeaders)
	for _, p := range consolePages {
		r.Get(p, s.consolePage)
	}
	r.Get("/signin", func(w http.ResponseWriter, r *http.Request) { serveConsoleFile(w, r, "signin.html") })
	r.Get("/assets/*", func(w http.ResponseWriter, r *http.Request) {
		serveConsoleFile(w, r, "assets/"+chi.URLParam(r, "*"))
	})
	r.With(s.readBody).Post("/session", s.signIn)
	r.With(s.requireSession).Get("/session", s.sessionInfo)
	r.With(s.requireSession).Post("/signout", s.signOut)
}

// consolePage serves the console's document to a signed-in operator and sends anyone else to
// the sign-in page.
func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/console" {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		return
	}
	if _, ok := s.sessionOf(w, r); !ok {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	serveConsoleFile(w, r, "app.html")
}

func serveConsoleFile(w http.ResponseWriter, r *http.Request, name string) {
	raw, err := fs.ReadFile(consoleFiles, "console/"+name)
	if err != nil || !fs.ValidPath(name) {
		writeError(w, r, errorf(http.StatusNotFound, "", "no such file"))
		return
	}
	ct := mime.TypeByExtension(name[strings.LastIndexByte(name, '.'):])
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	writeRaw(w, http.StatusOK, raw)
}

// sessionView is what the console's script learns of its session: who is signed in, until
// when, and the CSRF token its state-changing requests carry.
type sessionView struct {
	Tenant    string    `json:"tenant"`
	TokenID   string    `json:"tokenId"`
	TokenName string    `json:"tokenName"`
	Expires   time.Time `json:"expires"`
	CSRF      string    `json:"csrf"`
}

func viewOf(tok scimserver.Token, sess *session) sessionView {
	return sessionView{Tenant: tok.Tenant, TokenID: tok.ID, TokenName: tok.Name, Expires: sess.expires.UTC(), CSRF: sess.csrf}
}

// signIn serves POST /console/session {"token": "…"}: an admin-scope token starts a session.
// Only the console's own page can sign in (a JSON body, from this origin), so another site
// cannot sign a browser in to a session of its choosing.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) {
		writeError(w, r, errorf(http.StatusForbidden, "", "sign in from the console's own page"))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, r, errorf(http.StatusUnsupportedMediaType, "", "sign in with an application/json body"))
		return
	}
	f, err := stringFields(body(r), "token")
	if err != nil {
		writeError(w, r, err)
		return
	}
	secret := strings.TrimSpace(f[0])
	tok, err := s.svc.Authenticate(r.Context(), secret)
	if err != nil || !scimserver.HasScope(tok, scimserver.ScopeAdmin) {
		s.refuse(w, r, scimserver.ScopeAdmin, "a valid admin-scope token is required")
		return
	}
	info(r).token = tok
	id, sess := s.sessions.create(secret, tok)
	setSessionCookie(w, id)
	writeJSON(w, http.StatusOK, viewOf(tok, sess))
}

func (s *Server) sessionInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, viewOf(info(r).token, sessionFrom(r)))
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.remove(c.Value)
	}
	clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}
