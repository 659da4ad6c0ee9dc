package httpapi

import (
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

// The admin API (/api/v1/admin): tenants, their tokens, and online backups, for operators
// holding an admin-scope token. Answers are application/json; errors are SCIM error bodies.
// Tenant and token changes are recorded in the affected tenant's audit trail.

func (s *Server) adminRoutes(r chi.Router) {
	r.Use(securityHeaders, s.adminAuth, s.readBody, plainJSON)
	r.Get("/tenants", s.adminListTenants)
	r.Post("/tenants", s.adminCreateTenant)
	r.Get("/tenants/{id}", s.adminGetTenant)
	r.Post("/tenants/{id}/disable", s.adminSetDisabled(true))
	r.Post("/tenants/{id}/enable", s.adminSetDisabled(false))
	r.Get("/tenants/{id}/tokens", s.adminListTokens)
	r.Post("/tenants/{id}/tokens", s.adminCreateToken)
	r.Delete("/tenants/{id}/tokens/{tokenId}", s.adminRevokeToken)
	r.Route("/tenants/{id}/webhooks", s.webhookRoutes)
	r.Get("/tenants/{id}/activity", s.adminActivity)
	r.Post("/tenants/{id}/users/.search", s.adminSearchUsers)
	r.Get("/tenants/{id}/users/{userId}", s.adminUser)
	r.Get("/tenants/{id}/users/{userId}/erasure", s.adminErasure)
	r.Post("/tenants/{id}/users/{userId}/anonymize", s.adminAnonymize)
	r.Get("/backup", s.adminBackup)
}

// adminTenant is a tenant as the admin API shows it.
type adminTenant struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Disabled bool      `json:"disabled"`
	Users    int       `json:"users"`
	Groups   int       `json:"groups"`
}

func toAdminTenant(t scimserver.TenantInfo) adminTenant {
	return adminTenant{ID: t.ID, Name: t.Name, Created: t.Created, Disabled: t.Disabled, Users: t.Users, Groups: t.Groups}
}

func (s *Server) adminListTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := s.svc.Tenants(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]adminTenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, toAdminTenant(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}

func (s *Server) adminGetTenant(w http.ResponseWriter, r *http.Request) {
	s.answerTenant(w, r, pathParam(r, "id"), nil)
}

// answerTenant answers with a tenant as the admin API shows it, or with the error that came
// instead.
func (s *Server) answerTenant(w http.ResponseWriter, r *http.Request, id string, err error) {
	var t scimserver.TenantInfo
	if err == nil {
		t, err = s.svc.Tenant(r.Context(), id)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAdminTenant(t))
}

// stringField reads an optional string member of a request object. Control characters are
// refused: ids and names are shown in listings and terminals, where they would mislead.
func stringField(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	str, ok := v.(string)
	if !ok {
		return "", badRequest("invalidValue", `"`+name+`" must be a string`)
	}
	if strings.ContainsFunc(str, unicode.IsControl) {
		return "", badRequest("invalidValue", `"`+name+`" cannot contain control characters`)
	}
	return str, nil
}

// stringFields reads optional string members of a request object, in the order named.
func stringFields(raw []byte, names ...string) ([]string, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, name := range names {
		if out[i], err = stringField(m, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Server) adminCreateTenant(w http.ResponseWriter, r *http.Request) {
	f, err := stringFields(body(r), "id", "name")
	if err != nil {
		writeError(w, r, err)
		return
	}
	id, name := f[0], f[1]
	if id == "" {
		writeError(w, r, badRequest("invalidValue", `"id" is required`))
		return
	}
	t, err := s.svc.CreateTenant(r.Context(), actorOf(r), id, name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, adminTenant{ID: t.ID, Name: t.Name, Created: t.Created, Disabled: t.Disabled})
}

func (s *Server) adminSetDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := pathParam(r, "id")
		if disabled && id == tenantOf(r) {
			// The admin token making the request would stop working with its tenant.
			writeError(w, r, errorf(http.StatusConflict, "", "a tenant cannot be disabled with one of its own tokens; use an admin token of another tenant, or \"scimserver tenant disable\" with the server stopped"))
			return
		}
		_, err := s.svc.SetTenantDisabled(r.Context(), actorOf(r), id, disabled)
		s.answerTenant(w, r, id, err)
	}
}

// adminToken is a token as the admin API shows it: never its secret, nor the secret's hash.
type adminToken struct {
	ID      string     `json:"id"`
	Tenant  string     `json:"tenant"`
	Name    string     `json:"name"`
	Scopes  []string   `json:"scopes"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
	State   string     `json:"state"`
	// LastUsed is when the token last authenticated since the server started.
	LastUsed *time.Time `json:"lastUsed,omitempty"`
	// Secret is set once, in the answer to the request that created the token.
	Secret string `json:"secret,omitempty"`
}

func toAdminToken(t scimserver.Token, now time.Time) adminToken {
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return adminToken{ID: t.ID, Tenant: t.Tenant, Name: t.Name, Scopes: scopes, Created: t.Created,
		Expires: t.Expires, Revoked: t.Revoked, State: scimserver.TokenState(t, now)}
}

func (s *Server) adminListTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.svc.Tokens(r.Context(), pathParam(r, "id"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]adminToken, 0, len(ts))
	for _, t := range ts {
		at := toAdminToken(t, now)
		at.LastUsed = s.svc.TokenLastUsed(t.ID)
		out = append(out, at)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) adminCreateToken(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(body(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	spec := scimserver.TokenSpec{Tenant: pathParam(r, "id")}
	if spec.Name, err = stringField(m, "name"); err != nil {
		writeError(w, r, err)
		return
	}
	if raw, ok := m["scopes"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			writeError(w, r, badRequest("invalidValue", `"scopes" must be an array of strings`))
			return
		}
		for _, v := range list {
			sc, ok := v.(string)
			if !ok {
				writeError(w, r, badRequest("invalidValue", `"scopes" must be an array of strings`))
				return
			}
			spec.Scopes = append(spec.Scopes, sc)
		}
	}
	ttl, err := stringField(m, "expiresIn")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			writeError(w, r, badRequest("invalidValue", `"expiresIn" must be a positive duration such as "720h"`))
			return
		}
		exp := time.Now().Add(d).UTC()
		spec.Expires = &exp
	}
	t, secret, err := s.svc.CreateToken(r.Context(), actorOf(r), spec)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := toAdminToken(t, time.Now())
	out.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) adminRevokeToken(w http.ResponseWriter, r *http.Request) {
	if _, err := s.svc.RevokeToken(r.Context(), actorOf(r), pathParam(r, "id"), pathParam(r, "tokenId")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminBackup streams a consistent snapshot of the data. The engine stages the snapshot first
// (from one read transaction that lasts as long as a local disk copy, not as long as a slow
// client's download); the answer carries Content-Length and X-Backup-SHA256.
func (s *Server) adminBackup(w http.ResponseWriter, r *http.Request) {
	snap, ok := s.svc.Store().(storage.Snapshotter)
	if !ok {
		writeError(w, r, errorf(http.StatusNotImplemented, "", "this storage engine takes no online backups; use its own backup tools"))
		return
	}
	f, err := snap.Snapshot(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer f.Close()
	size := f.Size
	// The download may take longer than the server's write timeout allows for one answer: allow
	// an hour plus a second per MiB, so that a stalled client cannot hold the backup forever.
	if sw, ok := w.(*statusWriter); ok {
		deadline := time.Now().Add(time.Hour + time.Duration(size>>20)*time.Second)
		_ = http.NewResponseController(sw.ResponseWriter).SetWriteDeadline(deadline)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Content-Length", strconv.FormatInt(size, 10))
	hdr.Set("Content-Disposition", `attachment; filename="scimserver-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	hdr.Set("X-Backup-SHA256", hex.EncodeToString(f.SHA256))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyN(w, f, size); err != nil {
		setErr(r, errors.New("backup download interrupted: "+err.Error()))
	}
}
