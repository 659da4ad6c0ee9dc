package scimserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/storage"
)

// The admin API (/api/v1/admin): tenants, their tokens, and online backups, for operators
// holding an admin-scope token. Answers are application/json; errors are SCIM error bodies.
// Tenant and token changes are recorded in the affected tenant's audit trail.

func (s *Server) adminRoutes(r chi.Router) {
	r.Use(s.authenticate(storage.ScopeAdmin), s.readBody, plainJSON)
	r.Get("/tenants", s.adminListTenants)
	r.Post("/tenants", s.adminCreateTenant)
	r.Get("/tenants/{id}", s.adminGetTenant)
	r.Post("/tenants/{id}/disable", s.adminSetDisabled(true))
	r.Post("/tenants/{id}/enable", s.adminSetDisabled(false))
	r.Get("/tenants/{id}/tokens", s.adminListTokens)
	r.Post("/tenants/{id}/tokens", s.adminCreateToken)
	r.Delete("/tenants/{id}/tokens/{tokenId}", s.adminRevokeToken)
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

func (s *Server) describeTenant(t storage.Tenant) (adminTenant, error) {
	out := adminTenant{ID: t.ID, Name: t.Name, Created: t.Created, Disabled: t.Disabled}
	err := s.store.Read(t.ID, func(tx *storage.Tx) error {
		out.Users, out.Groups = tx.CountUsers(), tx.CountGroups()
		return nil
	})
	return out, err
}

func (s *Server) adminListTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := s.store.Tenants()
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]adminTenant, 0, len(ts))
	for _, t := range ts {
		at, err := s.describeTenant(t)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out = append(out, at)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
}

func (s *Server) adminGetTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.store.Tenant(pathParam(r, "id"))
	s.answerTenant(w, r, t, err)
}

// answerTenant answers with a tenant as the admin API shows it, or with the error that came
// instead.
func (s *Server) answerTenant(w http.ResponseWriter, r *http.Request, t storage.Tenant, err error) {
	var at any
	if err == nil {
		at, err = s.describeTenant(t)
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, at)
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

func (s *Server) adminCreateTenant(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(body(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	id, err := stringField(m, "id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	name, err := stringField(m, "name")
	if err != nil {
		writeError(w, r, err)
		return
	}
	if id == "" {
		writeError(w, r, badRequest("invalidValue", `"id" is required`))
		return
	}
	t, err := s.store.CreateTenant(actorOf(r), id, name)
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
		t, err := s.store.SetTenantDisabled(actorOf(r), id, disabled)
		s.answerTenant(w, r, t, err)
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
	// Secret is set once, in the answer to the request that created the token.
	Secret string `json:"secret,omitempty"`
}

func toAdminToken(t storage.Token, now time.Time) adminToken {
	state := "active"
	switch {
	case t.Revoked != nil:
		state = "revoked"
	case t.Expires != nil && !now.Before(*t.Expires):
		state = "expired"
	}
	return adminToken{ID: t.ID, Tenant: t.Tenant, Name: t.Name, Scopes: nonNil(t.Scopes), Created: t.Created,
		Expires: t.Expires, Revoked: t.Revoked, State: state}
}

func (s *Server) adminListTokens(w http.ResponseWriter, r *http.Request) {
	id := pathParam(r, "id")
	if _, err := s.store.Tenant(id); err != nil {
		writeError(w, r, err)
		return
	}
	ts, err := s.store.Tokens(id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]adminToken, 0, len(ts))
	for _, t := range ts {
		out = append(out, toAdminToken(t, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) adminCreateToken(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(body(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	spec := storage.TokenSpec{Tenant: pathParam(r, "id")}
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
	t, secret, err := s.store.CreateToken(actorOf(r), spec)
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
	if _, err := s.store.RevokeToken(actorOf(r), pathParam(r, "id"), pathParam(r, "tokenId")); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// backupsRunning holds the data files being backed up: one online backup at a time per file,
// since each stages a copy of the whole file.
var backupsRunning sync.Map

// adminBackup streams a consistent snapshot of the data file. The snapshot is first written to
// a temporary file beside the data file, from one read transaction: that transaction lasts as
// long as a local disk copy, not as long as a slow client's download (a long bbolt read
// transaction holds back the reuse of freed pages, the growth of the file's memory map, and the
// scrub after an anonymization). The answer carries Content-Length and X-Backup-SHA256.
func (s *Server) adminBackup(w http.ResponseWriter, r *http.Request) {
	if _, busy := backupsRunning.LoadOrStore(s.store.Path(), true); busy {
		writeError(w, r, errorf(http.StatusConflict, "", "another backup is running; retry when it has finished"))
		return
	}
	defer backupsRunning.Delete(s.store.Path())
	f, err := os.CreateTemp(filepath.Dir(s.store.Path()), ".scimserver-backup-*.tmp")
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	size, err := s.store.Backup(io.MultiWriter(f, h))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		writeError(w, r, err)
		return
	}
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
	hdr.Set("X-Backup-SHA256", hex.EncodeToString(h.Sum(nil)))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyN(w, f, size); err != nil {
		setErr(r, errors.New("backup download interrupted: "+err.Error()))
	}
}

// QueryUsers returns the users of tenant that match filter (SCIM filter syntax, RFC 7644
// §3.4.2.2; empty for all), in the order GET /Users would find them, at most limit of them (0
// for no limit). It runs the server's own filter parsing, index planning and evaluation, and
// renders each user as GET /Users/{id} would, with meta.location relative to /scim/v2.
func QueryUsers(store *storage.Store, tenant, filter string, limit int) ([]map[string]any, error) {
	s := offlineServer(store)
	return s.query(s.users, tenant, filter, limit)
}

// QueryGroups is QueryUsers for groups; each group is rendered with its members.
func QueryGroups(store *storage.Store, tenant, filter string, limit int) ([]map[string]any, error) {
	s := offlineServer(store)
	return s.query(s.groups, tenant, filter, limit)
}

// FilterError is a filter QueryUsers or QueryGroups cannot use: not SCIM filter syntax, or not
// fitting the resource type's schemas.
type FilterError struct{ Detail string }

func (e *FilterError) Error() string { return "invalid filter: " + e.Detail }

// offlineBase is the SCIM root that resources rendered outside a request are located under.
const offlineBase = "/scim/v2"

// offlineServer is a Server for rendering and querying outside HTTP (operator commands).
func offlineServer(store *storage.Store) *Server {
	return &Server{store: store, users: userType(), groups: groupType()}
}

// errEnough stops a scan once a query has its limit.
var errEnough = errors.New("enough")

func (s *Server) query(rt *resourceType, tenant, filterText string, limit int) ([]map[string]any, error) {
	var expr filter.Expression
	if f := strings.TrimSpace(filterText); f != "" {
		var err error
		if expr, err = rt.parseFilter(f); err != nil {
			return nil, &FilterError{Detail: toSCIM(err).Detail}
		}
	}
	proj := rt.parseProjection(nil, nil)
	var out []map[string]any
	err := s.store.Read(tenant, func(tx *storage.Tx) error {
		out = []map[string]any{}
		take := func(rec record) error {
			m, err := s.render(tx, rt, rec, offlineBase, proj)
			if err != nil {
				return err
			}
			out = append(out, m)
			if limit > 0 && len(out) >= limit {
				return errEnough
			}
			return nil
		}
		if expr == nil {
			return rt.scan(tx, "", 0, func(rec record) (bool, error) {
				err := take(rec)
				return err == nil, err
			})
		}
		var ids []string
		if err := s.matches(tx, rt, expr, rt.plan(expr), false, offlineBase, nil, func(rec record, _ map[string]any) {
			ids = append(ids, rec.id)
		}); err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := rt.get(tx, id)
			if err != nil {
				return err
			}
			if err := take(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
