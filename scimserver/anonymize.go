package scimserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/storage"
)

// Anonymized is what an anonymization did.
type Anonymized struct {
	// Changed: the user was anonymized now (false: it already was).
	Changed bool
	// Scrubbed: the storage that may still hold the erased values has been cleared. False while
	// that is pending: the engine finishes it by itself (the user's scrubbedAt says when).
	Scrubbed bool
}

// Anonymize irreversibly erases a user's personal data, the same way for every trigger (the SCIM
// action, the lifecycle attribute, the platform API, the operator command): one transaction
// deactivates the user, replaces every personal attribute with random values (or removes it),
// drops the externalId and password, removes the user from every group, records one audit event
// and records that the storage the old values may linger in must be cleared; then it waits, for
// as long as ctx and the service's ErasureWait allow, for that clearing. Once the transaction has
// committed, the erasure stands: no error after it is returned.
func (s *Service) Anonymize(ctx context.Context, tenant string, actor Actor, id string) (Anonymized, error) {
	pre := s.prefetchErasure(ctx, tenant, id)
	var a Anonymized
	err := s.write(ctx, tenant, func(tx storage.Tx) error {
		var err error
		a.Changed, err = s.anonymizeTx(tx, actor, id, pre)
		return err
	})
	if err != nil {
		return a, err
	}
	a.Scrubbed = s.finishErasure(ctx)
	return a, nil
}

// finishErasure waits, within ctx and ErasureWait, until the storage freed by every erasure
// committed so far has been cleared; it reports whether it has. Called after every commit that
// anonymized (or repeated an anonymization), it never fails the request: what is pending is
// finished in the background.
func (s *Service) finishErasure(ctx context.Context) bool {
	e, ok := s.store.(storage.Eraser)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ErasureWait)
	defer cancel()
	return e.AwaitErasure(ctx) == nil
}

// ErasureCleared records that the storage which could hold a user's erased values has been
// cleared: the user's scrubbedAt, and a scrub event in its trail. Engines that clear in the
// background call it in the transaction that ends the erasure's pending state.
func ErasureCleared(tx storage.Tx, user string, at time.Time) error {
	f, err := tx.Facts(user)
	if err != nil {
		return err
	}
	f.ScrubbedAt = &at
	if err := tx.PutFacts(user, f); err != nil {
		return err
	}
	return record(tx, scrubActor, opScrub, knownKinds[0], user, 0, nil)
}

// scrubActor is who the trail names for the clearing after an erasure.
var scrubActor = Actor{ID: "server", Name: "free-page scrub"}

// erasure is an anonymization worked out from one version of a user: the document that replaces
// it (random values already drawn) and the names of the attributes erased.
type erasure struct {
	version uint64
	doc     map[string]any
	raw     []byte
	erased  []string
}

// prepareErasure works out the anonymization of rec as tx sees it.
func (s *Service) prepareErasure(tx storage.Tx, rec storage.Record) (*erasure, error) {
	k := s.users
	doc, err := storage.DecodeDoc(rec.Doc)
	if err != nil {
		return nil, err
	}
	e := &erasure{version: rec.Version, erased: scrubDoc(k, doc), doc: doc}
	for {
		name := "anonymized-" + randomString(alphabet, 24)
		ids, err := tx.Lookup(k.Collection, k.nameAttr, name)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			doc[k.nameAttr] = name
			break
		}
	}
	setInactive(doc)
	if e.raw, err = encodeDoc(doc); err != nil {
		return nil, err
	}
	return e, nil
}

// fits reports whether e was worked out from the version of rec that tx sees, and its
// userName is still free.
func (e *erasure) fits(tx storage.Tx, k *Kind, rec storage.Record) bool {
	if e == nil || e.version != rec.Version {
		return false
	}
	ids, err := tx.Lookup(k.Collection, k.nameAttr, stringAt(e.doc, k.nameAttr))
	return err == nil && len(ids) == 0
}

// prefetchErasure works out the anonymization of user id in a read transaction, before the
// write, and reads on the way what the write will touch: the user, its index entries old and
// new, its memberships, facts and trail. The write then runs on the engine's writer, which every
// tenant shares, without waiting for the disk when the data is not cached. Best effort: nil when
// anything is amiss, and the write works it out itself.
func (s *Service) prefetchErasure(ctx context.Context, tenant, id string) *erasure {
	k := s.users
	var e *erasure
	_ = s.read(ctx, tenant, func(tx storage.Tx) error {
		rec, err := tx.Get(k.Collection, id)
		if err != nil {
			return err
		}
		old, err := storage.DecodeDoc(rec.Doc)
		if err != nil {
			return err
		}
		if e, err = s.prepareErasure(tx, rec); err != nil {
			return err
		}
		for _, doc := range []map[string]any{old, e.doc} {
			for i, keys := range k.Collection.KeysOf(doc) {
				for _, key := range keys {
					_, _ = tx.Lookup(k.Collection, k.Collection.Indexes[i].Name, key)
				}
			}
		}
		_, _ = tx.MemberOf(id)
		_, _ = tx.Facts(id)
		_, _, _ = tx.Trail(storage.TrailQuery{ResourceID: id, Limit: 1})
		return nil
	})
	return e
}

// anonymizeTx is anonymization inside a write transaction: the one place it is done. It uses
// pre when it was worked out from the version tx sees (and its userName is still free), and
// works it out afresh otherwise. It reports false when the user was anonymized already.
func (s *Service) anonymizeTx(tx storage.Tx, actor Actor, id string, pre *erasure) (bool, error) {
	k := s.users
	rec, err := k.get(tx, id)
	if err != nil {
		return false, err
	}
	if f, err := tx.Facts(id); err != nil || f.AnonymizedAt != nil {
		return false, err
	}
	e := pre
	if !e.fits(tx, k, rec) {
		if e, err = s.prepareErasure(tx, rec); err != nil {
			return false, err
		}
	}
	rec.Doc, rec.Keys, rec.Secret = e.raw, k.Collection.KeysOf(e.doc), nil
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
	return true, record(tx, actor, opAnonymize, k, id, rec.Version, e.erased)
}

// scrubDoc applies schemas' personal-data handling to a user document in place and returns the
// names of the attributes it erased. An attribute nobody classified is removed: when in doubt,
// erase.
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
		doc, err := storage.DecodeDoc(rec.Doc)
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
