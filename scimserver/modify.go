package scimserver

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// patch applies a PATCH request (RFC 7644 §3.5.2). Users answer 200 with the resource. Groups
// answer 204 unless the request asks for attributes: a group's member list can be large, and
// rendering it after every membership change would make the cost grow with the group.
func (s *Server) patch(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := resourceID(r)
		ops, err := patch.Parse(body(r), rt.patchSchema())
		anonymized := false
		if err == nil {
			anonymized, err = s.patchResource(r, rt, id, ops)
		}
		if err == nil && anonymized {
			s.awaitErasure(r)
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		v := r.URL.Query()
		if rt.name == "Group" && !v.Has("attributes") && !v.Has("excludedAttributes") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.respond(w, r, rt, id, http.StatusOK)
	}
}

// patchResource applies ops in one transaction; it reports whether the PATCH anonymized the user.
func (s *Server) patchResource(r *http.Request, rt *resourceType, id string, ops []patch.Operation) (bool, error) {
	actor := actorOf(r)
	// Hash new passwords here: the write function runs on the store's single writer, where a
	// deliberately slow hash would hold up every other write.
	hashes := map[string][]byte{}
	for _, pw := range patch.Passwords(ops) {
		hashes[pw] = hashPassword(pw)
	}
	var pre *erasure
	if rt.name == "User" && bytes.Contains(body(r), []byte("anonymized")) { // may be the trigger: read ahead
		pre = prefetchErasure(s.store, tenantOf(r), rt, id)
	}
	anonymized := false
	err := s.store.Write(tenantOf(r), func(tx *storage.Tx) error {
		anonymized = false
		_, doc, err := current(tx, r, rt, id)
		if err != nil {
			return err
		}
		// A user's PATCH applies to what the client reads: the stored document plus the
		// lifecycle's anonymized, so that removing or clearing it means what it says.
		was, input := false, doc
		if rt.name == "User" {
			if was, err = isAnonymized(tx, id); err != nil {
				return err
			}
			input = maps.Clone(doc)
			input[schemas.LifecycleURN] = map[string]any{"anonymized": was}
		}
		newDoc, _, mc, err := patch.Apply(input, ops, rt.patchSchema())
		if err != nil {
			return err
		}
		newDoc = pruneDoc(newDoc)
		if err := checkValues(newDoc); err != nil {
			return err
		}
		if err := checkMembers(mc.Add); err != nil {
			return err
		}
		want, _ := anonymizeRequest(newDoc)
		stripLifecycle(newDoc)
		password, _ := newDoc["password"].(string)
		delete(newDoc, "password")
		names := attrNames(doc, newDoc, password != "")
		if rt.name == "User" {
			trigger, err := guardAnonymized(was, true, want, len(names) > 0)
			if err != nil {
				return err
			}
			if trigger {
				anonymized, err = anonymizeTx(tx, rt, actor, id, pre)
				return err
			}
		}
		if rt.name == "Group" {
			changed, err := s.applyMembers(tx, rt, id, mc)
			if err != nil {
				return err
			}
			if changed {
				names = append(names, "members")
				slices.Sort(names)
			}
		}
		if len(names) == 0 {
			return nil // nothing changes: version and lastModified stay
		}
		raw, err := json.Marshal(newDoc)
		if err != nil {
			return err
		}
		if rt.name == "User" {
			u, err := tx.User(id)
			if err != nil {
				return err
			}
			u.Doc, u.Keys = raw, userKeys(newDoc)
			if err := checkKeys(u.Keys.UserName, u.Keys.ExternalID); err != nil {
				return err
			}
			if password != "" {
				h, ok := hashes[password]
				if !ok {
					return errorf(http.StatusInternalServerError, "", "a password reached the store without its hash")
				}
				u.Password = h
			}
			if _, err := tx.UpdateUser(u); err != nil {
				return err
			}
		} else {
			g, err := tx.Group(id)
			if err != nil {
				return err
			}
			g.Doc, g.Keys = raw, groupKeys(newDoc)
			if err := checkKeys(g.Keys.DisplayName, g.Keys.ExternalID); err != nil {
				return err
			}
			if _, err := tx.UpdateGroup(g); err != nil {
				return err
			}
		}
		return tx.Record(actor, updateOp("patch", doc, newDoc), rt.name, id, names)
	})
	return anonymized, err
}

func pruneDoc(doc map[string]any) map[string]any {
	if p, ok := prune(doc).(map[string]any); ok {
		return p
	}
	return map[string]any{}
}

// applyMembers carries out a PATCH's membership change one key at a time: adding or removing a
// member never reads the rest of the list, unless the change is a whole-list replace or a
// filter on something other than the member id.
func (s *Server) applyMembers(tx *storage.Tx, rt *resourceType, gid string, mc patch.MemberChange) (bool, error) {
	changed := false
	if mc.ReplaceAll {
		want := make([]storage.Member, 0, len(mc.Add))
		for _, m := range mc.Add {
			want = append(want, storage.Member{Value: m.Value, Display: m.Display})
		}
		return replaceMembers(tx, gid, want)
	}
	if mc.RemoveAll {
		var had bool
		if err := tx.Members(gid, func(storage.Member) error { had = true; return nil }); err != nil {
			return false, err
		}
		if err := tx.RemoveAllMembers(gid); err != nil {
			return false, err
		}
		changed = had
	}
	for _, id := range mc.Remove {
		removed, err := tx.RemoveMember(gid, id)
		if err != nil {
			return false, err
		}
		changed = changed || removed
	}
	if len(mc.RemoveWhere) > 0 {
		ref, _ := rt.resolve("", "members", "")
		ev := evaluator{rt: rt}
		var drop []string
		err := tx.Members(gid, func(m storage.Member) error {
			el := map[string]any{"value": m.Value, "type": m.Type, "display": m.Display}
			for _, f := range mc.RemoveWhere {
				if ev.matchIn(f, &ref, el) {
					drop = append(drop, m.Value)
					break
				}
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		for _, id := range drop {
			if _, err := tx.RemoveMember(gid, id); err != nil {
				return false, err
			}
			changed = true
		}
	}
	for _, m := range mc.Add {
		cur, ok, err := tx.Member(gid, m.Value)
		if err != nil {
			return false, err
		}
		if ok && (m.Display == "" || m.Display == cur.Display) {
			continue
		}
		if err := tx.AddMember(gid, storage.Member{Value: m.Value, Display: m.Display}); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}
