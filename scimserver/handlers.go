package scimserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/scimserver/scimserver/storage"
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

func (s *Server) get(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.respond(w, r, rt, resourceID(r), http.StatusOK)
	}
}

// etagMatches implements If-Match / If-None-Match lists with weak comparison (RFC 9110 §13.1).
func etagMatches(header string, version uint64) bool {
	if header == "" {
		return false
	}
	cur := strings.TrimPrefix(etag(version), "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == cur {
			return true
		}
	}
	return false
}

// checkIfMatch fails with Precondition when the request's If-Match does not name version.
func checkIfMatch(r *http.Request, version uint64) error {
	h := r.Header.Get("If-Match")
	if h != "" && !etagMatches(h, version) {
		return storage.Errorf(storage.Precondition, "the resource has changed since the version in If-Match")
	}
	return nil
}

// respond renders the resource id in a fresh read, honouring the projection: the answer to GET
// (with If-None-Match: 304 when current) and to every write that returns the resource.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, rt *resourceType, id string, status int) {
	v := r.URL.Query()
	p := rt.parseProjection(v["attributes"], v["excludedAttributes"])
	var raw []byte
	var version uint64
	err := s.store.Read(tenantOf(r), func(tx *storage.Tx) error {
		rec, err := rt.get(tx, id)
		if err != nil {
			return err
		}
		version = rec.version
		if r.Method == http.MethodGet && etagMatches(r.Header.Get("If-None-Match"), version) {
			return nil
		}
		raw, err = s.renderBytes(tx, rt, rec, s.baseURL(r), p)
		return err
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(version))
	switch {
	case raw == nil:
		w.WriteHeader(http.StatusNotModified)
		return
	case status == http.StatusCreated:
		w.Header().Set("Location", rt.location(s.baseURL(r), id))
	}
	writeRaw(w, status, raw)
}

// current reads the record a write is about to change, checks the request's If-Match against
// it, and decodes its document.
func current(tx *storage.Tx, r *http.Request, rt *resourceType, id string) (record, map[string]any, error) {
	rec, err := rt.get(tx, id)
	if err != nil {
		return rec, nil, err
	}
	if err := checkIfMatch(r, rec.version); err != nil {
		return rec, nil, err
	}
	doc, err := decodeDoc(rec.doc)
	return rec, doc, err
}

func (s *Server) create(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := s.createResource(r, rt)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.respond(w, r, rt, id, http.StatusCreated)
	}
}

func (s *Server) createResource(r *http.Request, rt *resourceType) (string, error) {
	m, err := decodeObject(body(r))
	if err != nil {
		return "", err
	}
	members, err := membersFromBody(rt, m)
	if err != nil {
		return "", err
	}
	doc, password, err := rt.docFromBody(m)
	if err != nil {
		return "", err
	}
	var anonymize bool
	if rt.name == "User" {
		anonymize, _ = anonymizeRequest(doc)
		stripLifecycle(doc)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	// The id is drawn inside the write, which runs on the store's single writer: ids then grow
	// in commit order, so a listing in id order never has a new record appear behind a page it
	// already served (a create that waited on a password hash would otherwise commit after a
	// later one with a larger id).
	var id string
	actor := actorOf(r)
	if rt.name == "User" {
		u := storage.User{Doc: raw, Keys: userKeys(doc)}
		if err := checkKeys(u.Keys.UserName, u.Keys.ExternalID); err != nil {
			return "", err
		}
		if password != "" {
			u.Password = hashPassword(password)
		}
		names := attrNames(nil, doc, password != "") // outside the write: the writer is shared
		err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
			id = storage.NewID()
			u.ID = id
			if _, err := tx.CreateUser(u); err != nil {
				return err
			}
			if err := tx.Record(actor, "create", rt.name, id, names); err != nil {
				return err
			}
			if anonymize {
				_, err := anonymizeTx(tx, rt, actor, id, nil) // a user of this transaction: nothing to read ahead
				return err
			}
			return nil
		})
		if err == nil && anonymize {
			s.awaitErasure(r)
		}
		return id, err
	}
	g := storage.Group{Doc: raw, Keys: groupKeys(doc)}
	if err := checkKeys(g.Keys.DisplayName, g.Keys.ExternalID); err != nil {
		return "", err
	}
	names := attrNames(nil, doc, false)
	if len(members) > 0 {
		names = append(names, "members")
		slices.Sort(names)
	}
	err = s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		id = storage.NewID()
		g.ID = id
		if _, err := tx.CreateGroup(g); err != nil {
			return err
		}
		for _, mem := range members {
			if err := tx.AddMember(id, mem); err != nil {
				return err
			}
		}
		return tx.Record(actor, "create", rt.name, id, names)
	})
	return id, err
}

// checkKeys refuses indexed values the store would not take, as a client error.
func checkKeys(vals ...string) error {
	for _, v := range vals {
		if len(v) > storage.MaxKeyLen {
			return badRequest("invalidValue", "an identifying attribute (userName, displayName, externalId) is too long")
		}
	}
	return nil
}

func (s *Server) replace(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := resourceID(r)
		m, err := decodeObject(body(r))
		if err == nil {
			err = s.replaceResource(r, rt, id, m)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.respond(w, r, rt, id, http.StatusOK)
	}
}

func (s *Server) replaceResource(r *http.Request, rt *resourceType, id string, m map[string]any) error {
	members, err := membersFromBody(rt, m)
	if err != nil {
		return err
	}
	doc, password, err := rt.docFromBody(m)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var hash []byte
	if password != "" {
		hash = hashPassword(password)
	}
	actor := actorOf(r)
	if rt.name == "User" {
		keys := userKeys(doc)
		if err := checkKeys(keys.UserName, keys.ExternalID); err != nil {
			return err
		}
		stripped := maps.Clone(doc)
		stripLifecycle(stripped)
		if raw, err = json.Marshal(stripped); err != nil {
			return err
		}
		var pre *erasure
		if want, _ := anonymizeRequest(doc); want {
			pre = prefetchErasure(s.store, tenantOf(r), rt, id)
		}
		anonymized := false
		err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
			_, oldDoc, err := current(tx, r, rt, id)
			if err != nil {
				return err
			}
			was, err := isAnonymized(tx, id)
			if err != nil {
				return err
			}
			names := attrNames(oldDoc, stripped, hash != nil)
			want, stated := anonymizeRequest(doc)
			if anonymized, err = guardAnonymized(was, stated, want, len(names) > 0); err != nil || anonymized {
				if err == nil {
					_, err = anonymizeTx(tx, rt, actor, id, pre)
				}
				return err
			}
			if len(names) == 0 {
				return nil
			}
			u, err := tx.User(id)
			if err != nil {
				return err
			}
			u.Doc, u.Keys = raw, keys
			if hash != nil {
				u.Password = hash
			}
			if _, err := tx.UpdateUser(u); err != nil {
				return err
			}
			return tx.Record(actor, updateOp("replace", oldDoc, stripped), rt.name, id, names)
		})
		if err == nil && anonymized {
			s.awaitErasure(r)
		}
		return err
	}
	keys := groupKeys(doc)
	if err := checkKeys(keys.DisplayName, keys.ExternalID); err != nil {
		return err
	}
	return s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		_, oldDoc, err := current(tx, r, rt, id)
		if err != nil {
			return err
		}
		names := attrNames(oldDoc, doc, false)
		changed, err := replaceMembers(tx, id, members)
		if err != nil {
			return err
		}
		if changed {
			names = append(names, "members")
			slices.Sort(names)
		}
		if len(names) == 0 {
			return nil
		}
		g, err := tx.Group(id)
		if err != nil {
			return err
		}
		g.Doc, g.Keys = raw, keys
		if _, err := tx.UpdateGroup(g); err != nil {
			return err
		}
		return tx.Record(actor, "replace", rt.name, id, names)
	})
}

func (s *Server) delete(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := resourceID(r)
		actor := actorOf(r)
		err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
			if _, _, err := current(tx, r, rt, id); err != nil {
				return err
			}
			if rt.name == "User" {
				return deleteUser(tx, actor, id)
			}
			if err := tx.DeleteGroup(id); err != nil {
				return err
			}
			return tx.Record(actor, "delete", rt.name, id, nil)
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// attrNames lists the top-level attributes (extension attributes URN-qualified) whose values
// differ between two documents: what the audit trail records instead of the values.
func attrNames(old, new map[string]any, password bool) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, pair := range [][2]map[string]any{{old, new}, {new, old}} {
		for k, v := range pair[0] {
			ov, ok := pair[1][k]
			if ok && reflect.DeepEqual(v, ov) {
				continue
			}
			if strings.HasPrefix(k, "urn:") {
				a, _ := v.(map[string]any)
				b, _ := ov.(map[string]any)
				for _, sub := range attrNames(a, b, false) {
					add(k + ":" + sub)
				}
				continue
			}
			add(k)
		}
	}
	if password {
		add("password")
	}
	slices.Sort(names)
	return names
}

func stringAt(doc map[string]any, key string) string {
	s, _ := doc[key].(string)
	return s
}

func userKeys(doc map[string]any) storage.UserKeys {
	k := storage.UserKeys{UserName: stringAt(doc, "userName"), ExternalID: stringAt(doc, "externalId")}
	for _, e := range asList(doc["emails"]) {
		if obj, ok := e.(map[string]any); ok {
			if v := stringAt(obj, "value"); v != "" {
				k.Emails = append(k.Emails, v)
			}
		}
	}
	return k
}

func groupKeys(doc map[string]any) storage.GroupKeys {
	return storage.GroupKeys{DisplayName: stringAt(doc, "displayName"), ExternalID: stringAt(doc, "externalId")}
}
