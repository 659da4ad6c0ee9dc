package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/scimserver/scimserver/scimserver"
)

// The admin API's people endpoints, for the operator console: finding a tenant's users through
// the indexed lookups, a user's page (the SCIM resource, its audit facts and trail), and
// anonymization confirmed by the user's userName.

// searchAttributes are the lookups people search offers, each answered by an index.
var searchAttributes = map[string]string{
	"userName":   "userName",
	"email":      "emails.value",
	"externalId": "externalId",
}

// maxSearchResults bounds a search's answer: a lookup by one of these attributes finds one
// person, or a few sharing an email or externalId.
const maxSearchResults = 50

// adminSearchUsers serves POST /api/v1/admin/tenants/{id}/users/.search
// {"attribute": "userName"|"email"|"externalId", "value": "…"}: the users whose attribute
// equals value (case-insensitively but for externalId). The value travels in the body, not
// the URL, because it is personal data (as RFC 7644 §3.4.3 advises for SCIM's own search).
func (s *Server) adminSearchUsers(w http.ResponseWriter, r *http.Request) {
	f, err := stringFields(body(r), "attribute", "value")
	if err != nil {
		writeError(w, r, err)
		return
	}
	attr, value := f[0], f[1]
	path, ok := searchAttributes[attr]
	if !ok || value == "" {
		writeError(w, r, badRequest("invalidValue", `search needs "attribute" (userName, email or externalId) and a "value"`))
		return
	}
	quoted, _ := json.Marshal(value) // a SCIM filter's string is a JSON string
	found, err := s.svc.Find(r.Context(), pathParam(r, "id"), s.users, path+" eq "+string(quoted), maxSearchResults+1, s.baseURL(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	more := len(found) > maxSearchResults
	writeJSON(w, http.StatusOK, map[string]any{"users": found[:min(len(found), maxSearchResults)], "more": more})
}

// adminUser serves GET /api/v1/admin/tenants/{id}/users/{userId}: the user's SCIM resource
// (attributes, lifecycle extension, groups) and its audit facts with a page of its trail
// (?cursor= for older events).
func (s *Server) adminUser(w http.ResponseWriter, r *http.Request) {
	tenant, id := pathParam(r, "id"), pathParam(r, "userId")
	res, err := s.svc.Get(r.Context(), tenant, s.users, id, scimserver.View{Base: s.baseURL(r)}, scimserver.Conditions{})
	if err != nil {
		writeError(w, r, err)
		return
	}
	q, err := trailQuery(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	audit, err := s.svc.UserAudit(r.Context(), tenant, id, q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": json.RawMessage(res.JSON), "audit": audit, "nextCursor": cursor(audit.Next)})
}

// erasureOf describes what anonymizing the user with id would erase. Only an id names the
// user here (DescribeErasure also accepts a userName).
func (s *Server) erasureOf(r *http.Request) (scimserver.Erasure, error) {
	e, err := s.svc.DescribeErasure(r.Context(), pathParam(r, "id"), pathParam(r, "userId"))
	if err == nil && e.ID != pathParam(r, "userId") {
		err = scimserver.Errorf(scimserver.NotFound, "", "User not found")
	}
	return e, err
}

// erasureView is what anonymization erases, as the admin API shows it: the same list the
// anonymize command shows.
type erasureView struct {
	UserID       string   `json:"userId"`
	UserName     string   `json:"userName"`
	AnonymizedAt any      `json:"anonymizedAt"`
	Attributes   []string `json:"attributes"`
	Groups       int      `json:"groups"`
}

func toErasureView(e scimserver.Erasure) erasureView {
	v := erasureView{UserID: e.ID, UserName: e.UserName, Attributes: e.Attributes, Groups: e.Groups}
	if e.AnonymizedAt != nil {
		v.AnonymizedAt = e.AnonymizedAt
	}
	if v.Attributes == nil {
		v.Attributes = []string{}
	}
	return v
}

// adminErasure serves GET /api/v1/admin/tenants/{id}/users/{userId}/erasure.
func (s *Server) adminErasure(w http.ResponseWriter, r *http.Request) {
	e, err := s.erasureOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toErasureView(e))
}

// adminAnonymize serves POST /api/v1/admin/tenants/{id}/users/{userId}/anonymize
// {"confirm": "<the user's userName>"}: anonymization, refused unless the operator typed the
// userName of the person it erases. It answers what was erased and the audit event.
func (s *Server) adminAnonymize(w http.ResponseWriter, r *http.Request) {
	f, err := stringFields(body(r), "confirm")
	if err != nil {
		writeError(w, r, err)
		return
	}
	confirm := f[0]
	e, err := s.erasureOf(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if e.AnonymizedAt != nil {
		writeError(w, r, errorf(http.StatusConflict, "", "the user is already anonymized"))
		return
	}
	if confirm != e.UserName {
		writeError(w, r, badRequest("invalidValue", `"confirm" must be the user's userName, exactly; nothing was changed`))
		return
	}
	tenant := pathParam(r, "id")
	done, err := s.svc.Anonymize(r.Context(), tenant, actorOf(r), e.ID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// The anonymization's event is among the newest of the user's: the scrub that followed it
	// may have recorded one since.
	evs, _, err := s.svc.Trail(r.Context(), tenant, scimserver.TrailQuery{ResourceID: e.ID, Limit: 10})
	if err != nil {
		writeError(w, r, err)
		return
	}
	var event any
	for _, ev := range evs {
		if ev.Operation == "anonymize" {
			event = ev
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": e.ID, "changed": done.Changed, "scrubbed": done.Scrubbed,
		"erasure": toErasureView(e), "event": event})
}
