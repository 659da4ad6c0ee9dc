package scimserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/storage"
)

// The platform API (/api/v1): how the platform reports the facts that make users audited, and
// reads the audit record. It takes platform-scope tokens; errors use the SCIM error body.

// Audit trail operations of the platform API.
const (
	opInteraction      = "interaction"
	opCampaignAssign   = "campaign-assign"
	opCampaignUnassign = "campaign-unassign"
)

func (s *Server) platformRoutes(r chi.Router) {
	r.Use(s.authenticate(storage.ScopePlatform), s.readBody, plainJSON)
	r.Post("/users/{id}/interactions", s.postInteraction)
	r.Put("/campaigns/{campaign}/participants/{id}", s.assignCampaign)
	r.Delete("/campaigns/{campaign}/participants/{id}", s.unassignCampaign)
	r.Get("/users/{id}/audit", s.userAudit)
	r.Get("/audit", s.tenantAudit)
	r.Post("/users/{id}/anonymize", s.anonymizePlatform)
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
	if kind != "password_set" && kind != "login" {
		writeError(w, r, badRequest("invalidValue", `"type" must be "password_set" or "login"`))
		return
	}
	at := time.Now().UTC()
	if raw, ok := m["at"]; ok {
		str, _ := raw.(string)
		if at, err = time.Parse(time.RFC3339Nano, str); err != nil {
			writeError(w, r, badRequest("invalidValue", `"at" must be an RFC 3339 date and time`))
			return
		}
	}
	id, actor := resourceID(r), actorOf(r)
	_, given := m["at"]
	err = s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		if err := s.checkNotAnonymized(tx, id); err != nil {
			return err
		}
		if given {
			if err := checkInteractionTime(tx, at); err != nil {
				return err
			}
		}
		if err := tx.RecordInteraction(id, at); err != nil {
			return err
		}
		return tx.RecordEvent(storage.Event{ActorID: actor.ID, ActorName: actor.Name, Operation: opInteraction,
			ResourceType: "User", ResourceID: id, Attributes: []string{kind}})
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxClockSkew is how far in the future a reported interaction may lie: the platform's clock
// and the server's differ a little.
const maxClockSkew = 5 * time.Minute

// checkInteractionTime refuses interaction times that cannot be true: the platform reports
// interactions as they happen, and a wrong time would stay in the audit record for ever.
func checkInteractionTime(tx *storage.Tx, at time.Time) error {
	if at.After(tx.Now().Add(maxClockSkew)) {
		return badRequest("invalidValue", `"at" is more than 5 minutes in the future; report interactions when they happen`)
	}
	t, err := tx.TenantRecord()
	if err != nil {
		return err
	}
	if at.Before(t.Created) {
		return badRequest("invalidValue", `"at" is before the tenant was created`)
	}
	return nil
}

// checkNotAnonymized refuses changes to an anonymized user: nothing may re-attach to it.
func (s *Server) checkNotAnonymized(tx *storage.Tx, id string) error {
	f, err := tx.Facts(id)
	if err != nil {
		return err
	}
	if f.AnonymizedAt != nil {
		return errorf(http.StatusConflict, "mutability", "the user was anonymized and can no longer change")
	}
	return nil
}

func (s *Server) assignCampaign(w http.ResponseWriter, r *http.Request) {
	cid, id, actor := pathParam(r, "campaign"), resourceID(r), actorOf(r)
	err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		if err := s.checkNotAnonymized(tx, id); err != nil {
			return err
		}
		doc, err := decodeDoc(u.Doc)
		if err != nil {
			return err
		}
		if doc["active"] == false {
			return errorf(http.StatusConflict, "", "an inactive user cannot be assigned to a campaign")
		}
		added, err := tx.AssignCampaign(cid, id)
		if err != nil || !added {
			return err
		}
		return tx.RecordEvent(storage.Event{ActorID: actor.ID, ActorName: actor.Name, Operation: opCampaignAssign,
			ResourceType: "User", ResourceID: id, Related: cid})
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unassignCampaign(w http.ResponseWriter, r *http.Request) {
	cid, id, actor := pathParam(r, "campaign"), resourceID(r), actorOf(r)
	err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		removed, err := tx.UnassignCampaign(cid, id)
		if err != nil || !removed {
			return err
		}
		return tx.RecordEvent(storage.Event{ActorID: actor.ID, ActorName: actor.Name, Operation: opCampaignUnassign,
			ResourceType: "User", ResourceID: id, Related: cid})
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// userAudit answers a user's audit facts and the trail of events about the user.
func (s *Server) userAudit(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	q, err := trailQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q.ResourceID = id
	var out map[string]any
	err = s.store.Read(tenantOf(r), func(tx *storage.Tx) error {
		if !tx.UserExists(id) {
			// A deleted user's history stays readable; an id never seen is unknown.
			if evs, _, err := tx.Trail(storage.TrailQuery{ResourceID: id, Limit: 1}); err != nil || len(evs) == 0 {
				return storage.Errorf(storage.NotFound, "user not found")
			}
		}
		f, err := tx.Facts(id)
		if err != nil {
			return err
		}
		current, err := tx.CurrentCampaigns(id)
		if err != nil {
			return err
		}
		evs, next, err := tx.Trail(q)
		if err != nil {
			return err
		}
		out = map[string]any{"userId": id, "exists": tx.UserExists(id), "audited": f.Audited(), "auditReasons": nonNil(f.Reasons()),
			"interactions": f.Interactions, "firstInteractionAt": f.FirstInteractionAt, "lastInteractionAt": f.LastInteractionAt,
			"campaignCount": f.Campaigns, "currentCampaigns": nonNil(current), "anonymizedAt": f.AnonymizedAt, "scrubbedAt": f.ScrubbedAt,
			"trail": nonNil(evs), "nextCursor": cursor(next)}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// tenantAudit answers the tenant's audit trail, newest first, paged by cursor.
func (s *Server) tenantAudit(w http.ResponseWriter, r *http.Request) {
	q, err := trailQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	q.ResourceID = r.URL.Query().Get("resourceId")
	var evs []storage.Event
	var next uint64
	err = s.store.Read(tenantOf(r), func(tx *storage.Tx) error {
		evs, next, err = tx.Trail(q)
		return err
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(evs), "nextCursor": cursor(next)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func cursor(next uint64) any {
	if next == 0 {
		return nil
	}
	return strconv.FormatUint(next, 10)
}

const maxTrailPage = 1000

func trailQuery(r *http.Request) (storage.TrailQuery, error) {
	v := r.URL.Query()
	q := storage.TrailQuery{Limit: 100}
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
