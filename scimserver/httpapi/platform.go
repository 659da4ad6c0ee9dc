package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// The platform API (/api/v1): how the platform reports the facts that make users audited, and
// reads the audit record. It takes platform-scope tokens; errors use the SCIM error body.

func (s *Server) platformRoutes(r chi.Router) {
	r.Use(s.authenticate(scimserver.ScopePlatform), s.readBody, plainJSON)
	r.Post("/users/{id}/interactions", s.postInteraction)
	r.Put("/campaigns/{campaign}/participants/{id}", s.assignCampaign)
	r.Delete("/campaigns/{campaign}/participants/{id}", s.unassignCampaign)
	r.Get("/users/{id}/audit", s.userAudit)
	r.Get("/audit", s.tenantAudit)
	r.Post("/users/{id}/anonymize", s.anonymizePlatform)
	r.Get("/changes", s.changes)
}

// plainJSON answers the platform API as application/json rather than application/scim+json.
func plainJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) postInteraction(w http.ResponseWriter, r *http.Request) {
	m, err := decodeObject(body(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	kind, _ := m["type"].(string)
	var at time.Time
	if raw, ok := m["at"]; ok {
		str, _ := raw.(string)
		if at, err = time.Parse(time.RFC3339Nano, str); err != nil {
			writeError(w, r, badRequest("invalidValue", `"at" must be an RFC 3339 date and time`))
			return
		}
	}
	if err := s.svc.RecordInteraction(r.Context(), tenantOf(r), actorOf(r), resourceID(r), kind, at); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) assignCampaign(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.AssignCampaign(r.Context(), tenantOf(r), actorOf(r), pathParam(r, "campaign"), resourceID(r)); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unassignCampaign(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.UnassignCampaign(r.Context(), tenantOf(r), actorOf(r), pathParam(r, "campaign"), resourceID(r)); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// anonymizePlatform serves POST /api/v1/users/{id}/anonymize.
func (s *Server) anonymizePlatform(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	done, err := s.svc.Anonymize(r.Context(), tenantOf(r), actorOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": id, "anonymized": true, "changed": done.Changed, "scrubbed": done.Scrubbed})
}

// userAudit answers a user's audit facts and the trail of events about the user.
func (s *Server) userAudit(w http.ResponseWriter, r *http.Request) {
	q, err := trailQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	a, err := s.svc.UserAudit(r.Context(), tenantOf(r), resourceID(r), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		scimserver.UserAudit
		NextCursor any `json:"nextCursor"`
	}{a, cursor(a.Next)})
}

// tenantAudit answers the tenant's audit trail, newest first, paged by cursor.
func (s *Server) tenantAudit(w http.ResponseWriter, r *http.Request) {
	q, err := trailQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q.ResourceID = r.URL.Query().Get("resourceId")
	evs, next, err := s.svc.Trail(r.Context(), tenantOf(r), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "nextCursor": cursor(next)})
}

func cursor(next uint64) any {
	if next == 0 {
		return nil
	}
	return strconv.FormatUint(next, 10)
}

const maxTrailPage = 1000

func trailQuery(r *http.Request) (scimserver.TrailQuery, error) {
	v := r.URL.Query()
	q := scimserver.TrailQuery{Limit: 100}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return q, badRequest("invalidValue", name+" must be an RFC 3339 date and time")
			}
			*dst = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTrailPage {
			return q, badRequest("invalidValue", "limit must be an integer from 1 to "+strconv.Itoa(maxTrailPage))
		}
		q.Limit = n
	}
	if s := strings.TrimSpace(v.Get("cursor")); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return q, badRequest("invalidValue", "cursor must be a value returned as nextCursor")
		}
		q.Before = n
	}
	return q, nil
}
