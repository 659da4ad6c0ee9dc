package scimserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

const opAnonymize = "anonymize"

// Anonymize irreversibly erases a user's personal data, the same way for every trigger (the SCIM
// action, the lifecycle attribute, the platform API and the operator command): one transaction
// deactivates the user, replaces every personal attribute with random characters (or removes
// it), drops the externalId and password, removes the user from every group and records one
// audit event; then the file's free pages are overwritten so no old value stays on disk. It
// reports whether the user was anonymized now (false: it already was).
func Anonymize(store *storage.Store, tenant string, actor storage.Actor, id string) (bool, error) {
	users := userType()
	var changed bool
	err := store.Write(tenant, func(tx *storage.Tx) error {
		var err error
		changed, err = anonymizeTx(tx, users, actor, id)
		return err
	})
	if err != nil {
		return false, err
	}
	return changed, finishErasure(store, changed)
}

// finishErasure overwrites the free pages after an anonymization, and also after a repeat of
// one while a scrub is still owed (an earlier attempt timed out behind a long read).
func finishErasure(store *storage.Store, anonymized bool) error {
	if !anonymized && !store.ScrubOwed() {
		return nil
	}
	_, err := store.Scrub()
	return err
}

func anonymizeTx(tx *storage.Tx, rt *resourceType, actor storage.Actor, id string) (bool, error) {
	u, err := tx.User(id)
	if err != nil {
		return false, err
	}
	if f, err := tx.Facts(id); err != nil || f.AnonymizedAt != nil {
		return false, err
	}
	doc, err := decodeDoc(u.Doc)
	if err != nil {
		return false, err
	}
	erased := scrubDoc(rt, doc)
	for {
		doc["userName"] = "anonymized-" + randomString(alphabet, 24)
		if ids, err := tx.LookupUsers(storage.ByUserName, doc["userName"].(string)); err != nil || len(ids) == 0 {
			if err != nil {
				return false, err
			}
			break
		}
	}
	doc["active"] = false
	if u.Doc, err = json.Marshal(doc); err != nil {
		return false, err
	}
	u.Keys, u.Password = userKeys(doc), nil
	if _, err := tx.UpdateUser(u); err != nil {
		return false, err
	}
	if err := tx.RemoveFromAllGroups(id); err != nil {
		return false, err
	}
	if err := tx.MarkAnonymized(id); err != nil {
		return false, err
	}
	if err := tx.OweScrub(); err != nil {
		return false, err
	}
	return true, tx.Record(actor, opAnonymize, "User", id, erased)
}

// scrubDoc applies schemas' personal-data handling to a user document in place and returns the
// names of the attributes it erased. An attribute nobody classified is removed: when in doubt,
// erase.
func scrubDoc(rt *resourceType, doc map[string]any) []string {
	var erased []string
	scrubAttrs(schemas.UserURN, rt.core.Attributes, doc, "", &erased)
	for _, ext := range rt.extensions {
		if obj, ok := doc[ext.ID].(map[string]any); ok {
			scrubAttrs(ext.ID, ext.Attributes, obj, ext.ID+":", &erased)
			if len(obj) == 0 {
				delete(doc, ext.ID)
			}
		}
	}
	slices.Sort(erased)
	return erased
}

func scrubAttrs(urn string, attrs schema.Attributes, m map[string]any, prefix string, erased *[]string) {
	for k, v := range m {
		if urn == schemas.UserURN && strings.HasPrefix(k, "urn:") {
			continue
		}
		name := k
		a, ok := attrs.ContainsAttribute(k)
		if ok {
			name = a.Name()
		}
		h, classified := schemas.UserHandling(urn, name)
		if !classified {
			h = schemas.Remove
		}
		switch h {
		case schemas.Keep:
			continue
		case schemas.Remove:
			delete(m, k)
		default:
			if r := randomize(urn, a, h, v); r == nil {
				delete(m, k)
			} else {
				m[k] = r
			}
		}
		*erased = append(*erased, prefix+k)
	}
}

// randomize replaces the string values of an attribute handled h with random values of the
// form h asks for, keeping the sub-attributes classified as not personal (an email's type, a
// primary flag) and dropping those to remove.
func randomize(urn string, a schema.CoreAttribute, h schemas.Handling, v any) any {
	switch x := v.(type) {
	case string:
		return randomFor(h, a.AttributeType())
	case map[string]any:
		out := map[string]any{}
		for k, sv := range x {
			sub, ok := a.SubAttributes().ContainsAttribute(k)
			if !ok {
				continue
			}
			switch sh, _ := schemas.UserHandling(urn, a.Name()+"."+sub.Name()); sh {
			case schemas.Keep:
				out[sub.Name()] = sv
			case schemas.Randomize, schemas.RandomEmail, schemas.RandomPhone:
				if _, isString := sv.(string); isString {
					out[sub.Name()] = randomFor(sh, sub.AttributeType())
				}
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, el := range x {
			if r := randomize(urn, a, h, el); r != nil {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
}

// randomFor draws a value of the form h asks for: an address in .invalid (RFC 2606), a number
// under +999 (reserved in ITU-T E.164, assigned to no country), random bytes for binary, random
// characters otherwise.
func randomFor(h schemas.Handling, typ string) string {
	switch {
	case h == schemas.RandomEmail:
		return randomString(alphabet, 20) + "@anonymized.invalid"
	case h == schemas.RandomPhone:
		return "+999" + randomString(digits, 12)
	case typ == "binary":
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	return randomString(alphabet, 20)
}

const (
	alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	digits   = "0123456789"
)

// randomString draws n characters of chars from crypto/rand: never derived from the original
// value.
func randomString(chars string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// anonymizeAction serves POST /Users/{id}/.anonymize: 200 with the anonymized user, also when
// it already was (the action is idempotent).
func (s *Server) anonymizeAction(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	if _, err := Anonymize(s.store, tenantOf(r), actorOf(r), id); err != nil {
		writeError(w, r, err)
		return
	}
	s.respond(w, r, s.users, id, http.StatusOK)
}

// anonymizePlatform serves POST /api/v1/users/{id}/anonymize.
func (s *Server) anonymizePlatform(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	changed, err := Anonymize(s.store, tenantOf(r), actorOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": id, "anonymized": true, "changed": changed})
}

// anonymizeRequest reads the lifecycle extension's anonymized attribute from a client document:
// set (true or false) or absent.
func anonymizeRequest(doc map[string]any) (value, set bool) {
	ext, ok := doc[schemas.LifecycleURN].(map[string]any)
	if !ok {
		return false, false
	}
	v, ok := ext["anonymized"].(bool)
	return v, ok
}

func isAnonymized(tx *storage.Tx, id string) (bool, error) {
	f, err := tx.Facts(id)
	return f.AnonymizedAt != nil, err
}

// guardAnonymized is the rule for every write to a user (PUT, PATCH): anonymized may only become
// true. Given whether the user is anonymized (was), what the write says about anonymized (stated,
// want) and whether it changes anything else, it refuses what anonymization forbids and returns
// trigger=true when the write is the anonymization itself. A write that changes nothing is a
// harmless repeat, also of an anonymized user.
func guardAnonymized(was, stated, want, changes bool) (trigger bool, err error) {
	switch {
	case !was:
		return stated && want, nil
	case stated && !want:
		return false, badRequest("mutability", "anonymized cannot become false or be removed: anonymization is irreversible")
	case changes:
		return false, errorf(http.StatusConflict, "mutability", "the user was anonymized and can no longer change")
	}
	return false, nil
}

// PersonalAttributes names the attributes of a stored user document that anonymization would
// erase, for the operator command to show before it asks for confirmation.
func PersonalAttributes(raw []byte) []string {
	doc, err := decodeDoc(raw)
	if err != nil {
		return nil
	}
	return scrubDoc(userType(), doc)
}
