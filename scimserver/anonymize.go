package scimserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// Anonymize irreversibly erases a user's personal data, the same way for every trigger (the SCIM
// action, the lifecycle attribute, the platform API, the operator command): one transaction
// deactivates the user, replaces every personal attribute with random characters (or removes
// it), drops the externalId and password, removes the user from every group and records one
// audit event; then the storage the old values may linger in is cleared. It reports whether the
// user was anonymized now (false: it already was).
func (s *Service) Anonymize(ctx context.Context, tenant string, actor Actor, id string) (bool, error) {
	var changed bool
	err := s.write(ctx, tenant, func(tx storage.Tx) error {
		var err error
		changed, err = s.anonymizeTx(tx, actor, id)
		return err
	})
	if err != nil {
		return false, err
	}
	return changed, s.finishErasure(ctx, changed)
}

// finishErasure clears the storage freed by an anonymization, and also after a repeat of one
// while a clearing is still owed (an earlier attempt could not finish).
func (s *Service) finishErasure(ctx context.Context, anonymized bool) error {
	e, ok := s.store.(storage.Eraser)
	if !ok || (!anonymized && !e.EraseOwed()) {
		return nil
	}
	return e.Erase(ctx)
}

// anonymizeTx is anonymization inside a write transaction: the one place it is done.
func (s *Service) anonymizeTx(tx storage.Tx, actor Actor, id string) (bool, error) {
	k := s.users
	rec, err := k.get(tx, id)
	if err != nil {
		return false, err
	}
	if f, err := tx.Facts(id); err != nil || f.AnonymizedAt != nil {
		return false, err
	}
	doc, err := decodeDoc(rec.Doc)
	if err != nil {
		return false, err
	}
	erased := scrubDoc(k, doc)
	for {
		name := "anonymized-" + randomString(alphabet, 24)
		ids, err := tx.Lookup(k.Collection, k.nameAttr, name)
		if err != nil {
			return false, err
		}
		if len(ids) == 0 {
			doc[k.nameAttr] = name
			break
		}
	}
	setInactive(doc)
	if rec.Doc, err = json.Marshal(doc); err != nil {
		return false, err
	}
	rec.Keys, rec.Secret = k.Collection.KeysOf(doc), nil
	if rec, err = tx.Update(k.Collection, rec); err != nil {
		return false, err
	}
	if err := s.leaveAllGroups(tx, actor, id); err != nil {
		return false, err
	}
	f, err := tx.Facts(id)
	if err != nil {
		return false, err
	}
	now := tx.Now()
	f.AnonymizedAt = &now
	if err := tx.PutFacts(id, f); err != nil {
		return false, err
	}
	if err := tx.Erased(id); err != nil {
		return false, err
	}
	return true, record(tx, actor, opAnonymize, k, id, rec.Version, erased)
}

func scrubDoc(k *Kind, doc map[string]any) []string {
	var erased []string
	scrubAttrs(schemas.UserURN, k.core.Attributes, doc, "", &erased)
	for _, ext := range k.extensions {
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

func isAnonymized(tx storage.Tx, id string) (bool, error) {
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
		return false, invalid("mutability", "anonymized cannot become false or be removed: anonymization is irreversible")
	case changes:
		return false, Errorf(Conflict, "mutability", "the user was anonymized and can no longer change")
	}
	return false, nil
}

// Erasure is what anonymizing a user would erase, for an operator to confirm.
type Erasure struct {
	ID           string
	UserName     string
	AnonymizedAt *time.Time // set when the user already is
	Attributes   []string   // the attributes anonymization would erase
	Groups       int        // the memberships it would end
}

// DescribeErasure finds a user by id or userName and says what anonymizing it would erase.
func (s *Service) DescribeErasure(ctx context.Context, tenant, idOrName string) (Erasure, error) {
	var e Erasure
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		rec, err := s.findUser(tx, idOrName)
		if err != nil {
			return err
		}
		doc, err := decodeDoc(rec.Doc)
		if err != nil {
			return err
		}
		e = Erasure{ID: rec.ID, UserName: stringAt(doc, s.users.nameAttr)}
		f, err := tx.Facts(rec.ID)
		if err != nil {
			return err
		}
		if f.AnonymizedAt != nil {
			e.AnonymizedAt = f.AnonymizedAt
			return nil
		}
		groups, err := tx.MemberOf(rec.ID)
		e.Attributes, e.Groups = scrubDoc(s.users, doc), len(groups)
		return err
	})
	return e, err
}

// findUser reads a user by id or, when no user has that id, by userName.
func (s *Service) findUser(tx storage.Tx, idOrName string) (storage.Record, error) {
	k := s.users
	if rec, err := tx.Get(k.Collection, idOrName); err == nil || storage.ErrorCode(err) != storage.NotFound {
		return rec, err
	}
	ids, err := tx.Lookup(k.Collection, k.nameAttr, idOrName)
	if err != nil {
		return storage.Record{}, err
	}
	if len(ids) == 0 {
		return storage.Record{}, notFound(k.Name)
	}
	return k.get(tx, ids[0])
}
