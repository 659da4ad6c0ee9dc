package httpapi

import (
	"net/http"
	"strings"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"

	"github.com/scimserver/scimserver/schemas"
)

// discoveryServer is elimity's SCIM server, used for what it does well: serving /Schemas and
// /ResourceTypes from the schemas declared as data. Resource requests never reach it.
func (s *Server) discoveryServer() (scim.Server, error) {
	types := []scim.ResourceType{}
	for _, k := range s.svc.Kinds() {
		t := scim.ResourceType{ID: optional.NewString(k.Name), Name: k.Name, Endpoint: k.Endpoint,
			Description: optional.NewString(k.Name), Schema: k.Schema()}
		for _, e := range k.Extensions() {
			t.SchemaExtensions = append(t.SchemaExtensions, scim.SchemaExtension{Schema: e})
		}
		types = append(types, t)
	}
	return scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{MaxResults: s.opts.MaxResults, SupportFiltering: true, SupportPatch: true},
		ResourceTypes:         types,
	})
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/scim/v2")
	if kind, id, one := strings.Cut(strings.TrimPrefix(path, "/"), "/"); one && !s.describes(kind, id) {
		// Answered here rather than by elimity, whose 404 quotes the id asked for.
		writeError(w, r, errorf(http.StatusNotFound, "", "no such "+strings.ToLower(strings.TrimSuffix(kind, "s"))))
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = path
	r2.URL.RawPath = ""
	s.elimity.ServeHTTP(w, r2)
}

// describes reports whether /Schemas/id or /ResourceTypes/id (kind) names what the server serves.
func (s *Server) describes(kind, id string) bool {
	for _, k := range s.svc.Kinds() {
		if kind == "ResourceTypes" && id == k.Name || kind == "Schemas" && id == k.Schema().ID {
			return true
		}
		for _, e := range k.Extensions() {
			if kind == "Schemas" && id == e.ID {
				return true
			}
		}
	}
	return false
}

// serviceProviderConfig states exactly what the server supports (RFC 7643 §5).
func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{schemas.SPConfigURN},
		"documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": s.opts.MaxResults},
		"changePassword":   map[string]any{"supported": true},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "A bearer token issued by the operator (scimserver token create), sent as Authorization: Bearer <token>.",
			"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig",
			"location": s.baseURL(r) + "/ServiceProviderConfig"},
	})
}
