package scimserver

import (
	"context"
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

// Erasure is what an anonymization did.
type Erasure struct {
	// Changed: the user was anonymized now (false: it already was).
	Changed bool
	// Scrubbed: the data file's free pages, which may still hold the erased values, have been
	// overwritten. False while that is pending: the server finishes it by itself as soon as the
	// reads that began before the erasure have ended.
	Scrubbed bool
}

// Anonymize irreversibly erases a user's personal data, the same way for every trigger (the SCIM
// action, the lifecycle attribute, the platform API and the operator command): one transaction
// deactivates the user, replaces every personal attribute with random characters (or removes
// it), drops the externalId and password, removes the user from every group, records one audit
// event and records that the file's free pages must be overwritten; then it waits, for as long
// as ctx allows, for that overwrite. Once the transaction has committed, the erasure stands:
// no error after it is returned.
func Anonymize(ctx context.Context, store *storage.Store, tenant string, actor storage.Actor, id string) (Erasure, error) {
	users := userType()
	pre := prefetchErasure(store, tenant, users, id)
	var e Erasure
	err := store.Write(tenant, func(tx *storage.Tx) error {
		var err error
		e.Changed, err = anonymizeTx(tx, users, actor, id, pre)
		return err
	})
	if err != nil {
		return e, err
	}
	e.Scrubbed = finishErasure(ctx, store)
	return e, nil
}

// finishErasure waits, for as long as ctx allows, until the free pages have been overwritten
// for every erasure committed so far; it reports whether they have. Called after every commit
// that anonymized (or repeated an anonymization), it never fails the request: what is pending
// is finished in the background, and the user's scrubbedAt says when.
func finishErasure(ctx context.Context, store *storage.Store) bool {
	return store.AwaitScrub(ctx) == nil
}

// erasure is an anonymization worked out from one version of a user: the document and keys
// that replace it (random values already drawn) and the names of the attributes erased.
type erasure struct {
	version uint64
	doc     []byte
	keys    storage.UserKeys
	erased  []string
}

// prepareErasure works out the anonymization of user u as tx sees it.
func prepareErasure(tx *storage.Tx, rt *resourceType, u storage.User) (*erasure, error) {
	doc, err := decodeDoc(u.Doc)
	if err != nil {
		return nil, err
	}
	e := &erasure{version: u.Version, erased: scrubDoc(rt, doc)}
	for {
		doc["userName"] = "anonymized-" + randomString(alphabet, 24)
		ids, err := tx.LookupUsers(storage.ByUserName, doc["userName"].(string))
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
	}
	doc["active"] = false
	if e.doc, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	e.keys = userKeys(doc)
	return e, nil
}

// fits reports whether e was worked out from the version of u that tx sees, and its userName
// is still free.
func (e *erasure) fits(tx *storage.Tx, u storage.User) bool {
	if e == nil || e.version != u.Version {
		return false
	}
	ids, err := tx.LookupUsers(storage.ByUserName, e.keys.UserName)
	return err == nil && len(ids) == 0
}

// prefetchErasure works out the anonymization of user id in a read transaction, before the
// write, and reads on the way every page the write will touch: the user, its index entries old
// and new, its memberships, facts and trail. The write then runs on the single writer, which
// every tenant shares, without waiting for the disk when the file is not in the page cache.
// Best effort: nil when anything is amiss, and the write works it out itself.
func prefetchErasure(store *storage.Store, tenant string, rt *resourceType, id string) *erasure {
	var e *erasure
	_ = store.Read(tenant, func(tx *storage.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		if e, err = prepareErasure(tx, rt, u); err != nil {
			return err
		}
		for _, k := range []storage.UserKeys{u.Keys, e.keys} {
			_, _ = tx.LookupUsers(storage.ByUserName, k.UserName)
			_, _ = tx.LookupUsers(storage.ByExternalID, k.ExternalID)
			for _, m := range k.Emails {
				_, _ = tx.LookupUsers(storage.ByEmail, m)
			}
		}
		_, _ = tx.GroupsOf(id)
		_, _ = tx.Facts(id)
		_, _, _ = tx.Trail(storage.TrailQuery{ResourceID: id, Limit: 1})
		return nil
	})
	return e
}

// anonymizeTx anonymizes user id in tx, from pre when it was worked out from the version tx
// sees (and its userName is still free), otherwise afresh. It reports false when the user was
// anonymized already.
func anonymizeTx(tx *storage.Tx, rt *resourceType, actor storage.Actor, id string, pre *erasure) (bool, error) {
	u, err := tx.User(id)
	if err != nil {
		return false, err
	}
	if f, err := tx.Facts(id); err != nil || f.AnonymizedAt != nil {
		return false, err
	}
	e := pre
	if !e.fits(tx, u) {
		if e, err = prepareErasure(tx, rt, u); err != nil {
			return false, err
		}
	}
	u.Doc, u.Keys, u.Password = e.doc, e.keys, nil
	if _, err := tx.UpdateUser(u); err != nil {
		return false, err
	}
	if err := tx.RemoveFromAllGroups(id); err != nil {
		return false, err
	}
	if err := tx.MarkAnonymized(id); err != nil {
		return false, err
	}
	if err := tx.OweScrub(id); err != nil {
		return false, err
	}
	return true, tx.Record(actor, opAnonymize, "User", id, e.erased)
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
	ctx, cancel := s.scrubWait(r)
	defer cancel()
	if _, err := Anonymize(ctx, s.store, tenantOf(r), actorOf(r), id); err != nil {
		writeError(w, r, err)
		return
	}
	s.respond(w, r, s.users, id, http.StatusOK)
}

// anonymizePlatform serves POST /api/v1/users/{id}/anonymize.
func (s *Server) anonymizePlatform(w http.ResponseWriter, r *http.Request) {
	id := resourceID(r)
	ctx, cancel := s.scrubWait(r)
	defer cancel()
	e, err := Anonymize(ctx, s.store, tenantOf(r), actorOf(r), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": id, "anonymized": true, "changed": e.Changed, "scrubbed": e.Scrubbed})
}

// awaitErasure waits, within the scrub wait, for the overwrite of the free pages after a write
// that anonymized: the resource it answers with then shows scrubbedAt, or that it is pending.
func (s *Server) awaitErasure(r *http.Request) {
	ctx, cancel := s.scrubWait(r)
	defer cancel()
	finishErasure(ctx, s.store)
}

// scrubWait bounds how long an answer to an erasure waits for the free pages to be overwritten.
func (s *Server) scrubWait(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.ScrubWait)
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
