package httpapi

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/scimserver"
)

// resourceID returns the {id} route parameter, unescaped (chi hands over the raw segment when
// the path had escapes).
func resourceID(r *http.Request) string { return pathParam(r, "id") }

func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// baseURL is the SCIM root as clients reach it: --base-url, or this request's scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/scim/v2"
}

// view is how the request wants resources rendered.
func (s *Server) view(r *http.Request) scimserver.View {
	v := r.URL.Query()
	return scimserver.View{Base: s.baseURL(r), Attributes: v["attributes"], Excluded: v["excludedAttributes"]}
}

func conditions(r *http.Request) scimserver.Conditions {
	return scimserver.Conditions{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")}
}

func (s *Server) get(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.respond(w, r, k, resourceID(r), http.StatusOK, conditions(r))
	}
}

// respond renders the resource id, honouring the projection: the answer to GET (with
// If-None-Match: 304 when current) and to every write that returns the resource.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, k *scimserver.Kind, id string, status int, cond scimserver.Conditions) {
	res, err := s.svc.Get(r.Context(), tenantOf(r), k, id, s.view(r), cond)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.send(w, r, k, res, status)
}

// send writes a rendered resource.
func (s *Server) send(w http.ResponseWriter, r *http.Request, k *scimserver.Kind, res scimserver.Resource, status int) {
	id := res.ID
	w.Header().Set("ETag", res.ETag())
	switch {
	case res.JSON == nil:
		w.WriteHeader(http.StatusNotModified)
		return
	case status == http.StatusCreated:
		w.Header().Set("Location", s.view(r).Base+k.Endpoint+"/"+url.PathEscape(id))
	}
	writeRaw(w, status, res.JSON)
}

func (s *Server) create(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := s.svc.CreateRendered(r.Context(), tenantOf(r), actorOf(r), k, body(r), s.view(r))
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.send(w, r, k, res, http.StatusCreated)
	}
}

func (s *Server) replace(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		view := s.view(r)
		res, err := s.svc.Replace(r.Context(), tenantOf(r), actorOf(r), k, resourceID(r), body(r), conditions(r), &view)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.send(w, r, k, res, http.StatusOK)
	}
}

// patch applies a PATCH request (RFC 7644 §3.5.2). Records without a member list answer 200
// with the resource. A group answers 204 unless the request asks for attributes: its member
// list can be large, and rendering it after every membership change would make the cost grow
// with the group.
func (s *Server) patch(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var view *scimserver.View
		if v := r.URL.Query(); !k.HasMembers() || v.Has("attributes") || v.Has("excludedAttributes") {
			rendered := s.view(r)
			view = &rendered
		}
		res, err := s.svc.Patch(r.Context(), tenantOf(r), actorOf(r), k, resourceID(r), body(r), conditions(r), s.baseURL(r), view)
		switch {
		case err != nil:
			writeError(w, r, err)
		case view == nil:
			if res.Version != 0 {
				w.Header().Set("ETag", res.ETag())
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			s.send(w, r, k, res, http.StatusOK)
		}
	}
}

func (s *Server) delete(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.svc.Delete(r.Context(), tenantOf(r), actorOf(r), k, resourceID(r), conditions(r)); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// anonymizeAction serves POST /Users/{id}/.anonymize: 200 with the anonymized user, also when
// it already was (the action is idempotent).
func (s *Server) anonymizeAction(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	if _, err := s.svc.Anonymize(r.Context(), tenantOf(r), actorOf(r), id); err != nil {
		writeError(w, r, err)
		return
	}
	s.respond(w, r, s.users, id, http.StatusOK, scimserver.Conditions{})
}
