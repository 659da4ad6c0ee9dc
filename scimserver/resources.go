package scimserver

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/strictjson"
)

// View says how a resource is rendered: the SCIM root its locations are under (meta.location,
// $ref), and the projection (RFC 7644 §3.4.2.5).
type View struct {
	Base       string
	Attributes []string
	Excluded   []string
}

// Resource is a rendered resource.
type Resource struct {
	ID      string
	Version uint64
	// JSON is the representation; nil when a condition said the client's copy is current.
	JSON []byte
}

// ETag is the resource's entity tag (its meta.version).
func (r Resource) ETag() string { return etag(r.Version) }

// Conditions are a request's preconditions on the resource's version (RFC 9110 §13.1).
type Conditions struct {
	IfMatch     string // a write applies only when the resource's version matches
	IfNoneMatch string // a read renders only when the version does not match
}

// Get renders a resource. With IfNoneMatch naming its current version, JSON is nil.
func (s *Service) Get(ctx context.Context, tenant string, k *Kind, id string, view View, cond Conditions) (Resource, error) {
	p := k.parseProjection(view.Attributes, view.Excluded)
	var res Resource
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		rec, err := k.get(tx, id)
		if err != nil {
			return err
		}
		res = Resource{ID: rec.ID, Version: rec.Version}
		if etagMatches(cond.IfNoneMatch, rec.Version) {
			return nil
		}
		res.JSON, err = s.renderBytes(tx, k, rec, view.Base, p)
		return err
	})
	return res, err
}

// current reads the record a write is about to change, checks the write's If-Match against it,
// and decodes its document.
func current(tx storage.Tx, k *Kind, id string, cond Conditions) (storage.Record, map[string]any, error) {
	rec, err := k.get(tx, id)
	if err != nil {
		return rec, nil, err
	}
	if cond.IfMatch != "" && !etagMatches(cond.IfMatch, rec.Version) {
		return rec, nil, Errorf(Precondition, "", "the resource has changed since the version in If-Match")
	}
	doc, err := storage.DecodeDoc(rec.Doc)
	return rec, doc, err
}

// decodeBody parses a request body strictly (valid UTF-8, one JSON object, no duplicate keys,
// bounded nesting, numbers kept as written).
func decodeBody(raw []byte) (map[string]any, error) {
	m, err := strictjson.DecodeObject(raw)
	if err != nil {
		return nil, invalid("invalidSyntax", err.Error())
	}
	return m, nil
}

// Create stores a new resource from a POST body and returns its id.
func (s *Service) Create(ctx context.Context, tenant string, actor Actor, k *Kind, body []byte) (string, error) {
	res, err := s.create(ctx, tenant, actor, k, body, nil)
	return res.ID, err
}

// CreateRendered stores a new resource from a POST body and renders it as view says, for the
// answer to the POST.
func (s *Service) CreateRendered(ctx context.Context, tenant string, actor Actor, k *Kind, body []byte, view View) (Resource, error) {
	return s.create(ctx, tenant, actor, k, body, &view)
}

// create stores a new resource and, with a view, renders it: from the document it wrote when
// nothing else shows in the representation (a new user has no groups and no facts yet, a new
// group without members none), so that the answer costs no second transaction.
func (s *Service) create(ctx context.Context, tenant string, actor Actor, k *Kind, body []byte, view *View) (Resource, error) {
	in, err := k.input(body)
	if err != nil {
		return Resource{}, err
	}
	// The id is drawn inside the write, which runs on the store's single writer: ids then grow
	// in commit order, so a listing in id order never has a new record appear behind a page it
	// already served. What does not depend on it is worked out before, off that writer.
	keys, names := k.Collection.KeysOf(in.doc), in.names(nil)
	var id string
	var ins storage.Record
	erased := false
	err = s.write(ctx, tenant, func(tx storage.Tx) error {
		id, erased = storage.NewID(), false
		rec := storage.Record{ID: id, Doc: in.raw, Keys: keys, Secret: in.secret}
		var err error
		ins, err = tx.Insert(k.Collection, rec)
		if err != nil {
			return err
		}
		if err := record(tx, actor, opCreate, k, id, ins.Version, names); err != nil {
			return err
		}
		if _, err := s.changeMembers(tx, actor, id, memberDiff{add: in.members}); err != nil {
			return err
		}
		if in.anonymize {
			erased = true
			_, err := s.anonymizeTx(tx, actor, id, nil)
			return err
		}
		return nil
	})
	if err == nil && erased {
		s.finishErasure(ctx)
	}
	switch {
	case err != nil:
		return Resource{}, err
	case view == nil:
		return Resource{ID: id}, nil
	case erased || len(in.members) > 0 || !k.parseProjection(view.Attributes, view.Excluded).empty():
		return s.Get(ctx, tenant, k, id, *view, Conditions{})
	}
	var f *storage.Facts
	if k.audited {
		f = &storage.Facts{}
	}
	return Resource{ID: id, Version: ins.Version, JSON: appendRendered(k, ins, view.Base, nil, f)}, nil
}

// Replace replaces a resource with a PUT body. With a view, the answer is the resource rendered
// as view says, for the answer to the PUT; without, it holds only the id.
func (s *Service) Replace(ctx context.Context, tenant string, actor Actor, k *Kind, id string, body []byte, cond Conditions, view *View) (Resource, error) {
	in, err := k.input(body)
	if err != nil {
		return Resource{}, err
	}
	return s.modify(ctx, tenant, k, id, in.anonymize, view, func(tx storage.Tx, pre *erasure, erased *bool) (uint64, commitFunc, error) {
		return s.replaceWith(tx, actor, k, id, in, cond, pre, erased)
	})
}

// commitFunc makes the writes a PUT or PATCH was worked out to, and returns the record as stored.
type commitFunc func(storage.Tx) (storage.Record, error)

// modify carries out a PUT or PATCH that with works out (replaceWith, patchWith): from a
// snapshot when it can (writeChecked), wholly on the writer otherwise. With a view it renders
// the result. A write worked out on a snapshot is rendered from the record as stored, with the
// groups that snapshot shows (the version the commit checked proves them current: a membership
// change gives the member a new version) and the facts as the commit found them (an interaction
// changes them without a new version). Otherwise, and for a projection, the resource is read
// back.
func (s *Service) modify(ctx context.Context, tenant string, k *Kind, id string, likelyErasing bool, view *View, with func(tx storage.Tx, pre *erasure, erased *bool) (uint64, commitFunc, error)) (Resource, error) {
	if !k.hasMembers && !likelyErasing {
		var related []byte
		var facts *storage.Facts
		fromWrite := view != nil && k.parseProjection(view.Attributes, view.Excluded).empty()
		done, stored, err := s.writeChecked(ctx, tenant, k, id, func(tx storage.Tx) (uint64, commitFunc, error) {
			version, commit, err := with(tx, nil, nil)
			if err != nil || commit == nil || !fromWrite {
				return version, commit, err
			}
			if related, err = s.relatedJSON(tx, k, id, view.Base); err != nil {
				return version, nil, err
			}
			return version, func(tx storage.Tx) (storage.Record, error) {
				rec, err := commit(tx)
				if err == nil && k.audited {
					facts, err = factsOf(tx, id)
				}
				return rec, err
			}, nil
		})
		switch {
		case !done:
		case err != nil || view == nil:
			return Resource{ID: id}, err
		case stored != nil && fromWrite:
			return Resource{ID: id, Version: stored.Version, JSON: appendRendered(k, *stored, view.Base, related, facts)}, nil
		default:
			return s.Get(ctx, tenant, k, id, *view, Conditions{})
		}
	}
	pre := s.prefetchIfErasing(ctx, tenant, k, id, likelyErasing)
	erased := false
	var version uint64
	err := s.write(ctx, tenant, func(tx storage.Tx) error {
		erased = false
		var commit commitFunc
		var err error
		if version, commit, err = with(tx, pre, &erased); err == nil && commit != nil {
			var stored storage.Record
			stored, err = commit(tx)
			version = stored.Version
		}
		return err
	})
	if err == nil && erased {
		s.finishErasure(ctx)
	}
	if err != nil || view == nil {
		return Resource{ID: id, Version: version}, err
	}
	return s.Get(ctx, tenant, k, id, *view, Conditions{})
}

// replaceWith works out a PUT against tx: the version it read (on the writer, when only the
// member list changed, the version that change gave the group), and the writes that apply it
// (nil when the document stays). Reading a snapshot (erased nil), it leaves what only the writer
// can do — an anonymization, a member list — to the writer, with errOnWriter. On the writer
// (erased set) it does those itself, and *erased says an anonymization ran.
func (s *Service) replaceWith(tx storage.Tx, actor Actor, k *Kind, id string, in input, cond Conditions, pre *erasure, erased *bool) (uint64, commitFunc, error) {
	rec, old, err := current(tx, k, id, cond)
	if err != nil {
		return 0, nil, err
	}
	names := in.names(old)
	trigger := false
	if k.audited {
		was, err := isAnonymized(tx, id)
		if err != nil {
			return 0, nil, err
		}
		if trigger, err = guardAnonymized(was, in.anonymizeSet, in.anonymize, len(names) > 0); err != nil {
			return 0, nil, err
		}
	}
	var members memberOutcome
	names, done, err := s.onWriter(tx, actor, k, id, trigger, names, pre, erased, func() (memberOutcome, error) {
		out, err := s.replaceMembers(tx, actor, id, in.members, false)
		members = out
		return out, err
	})
	if err != nil || done {
		return rec.Version, nil, err
	}
	if len(names) == 0 {
		return max(rec.Version, members.version), nil, nil // the document stays as it was
	}
	version := rec.Version
	rec.Doc, rec.Keys = in.raw, k.Collection.KeysOf(in.doc)
	if in.secret != nil {
		rec.Secret = in.secret
	}
	return version, func(tx storage.Tx) (storage.Record, error) {
		stored, err := s.update(tx, k, rec, old, in.doc)
		if err != nil {
			return stored, err
		}
		return stored, record(tx, actor, updateOp(opReplace, old, in.doc), k, id, stored.Version, names)
	}, nil
}

// Patch applies a PATCH body (RFC 7644 §3.5.2) in one transaction. With a view, the answer is
// the resource rendered as view says; without, it holds the id and, for a group, the version.
// base is the service's URL as the client reaches it, which members' $ref start with (a filter
// on them compares those).
func (s *Service) Patch(ctx context.Context, tenant string, actor Actor, k *Kind, id string, body []byte, cond Conditions, base string, view *View) (Resource, error) {
	ops, err := patch.Parse(body, k.patchSchema())
	if err != nil {
		return Resource{}, ErrorOf(err)
	}
	var mc patch.MemberChange
	if k.hasMembers {
		if mc, err = patch.Members(ops); err != nil {
			return Resource{}, ErrorOf(err)
		}
	}
	// Hash new passwords here: the write function runs on the store's single writer, where a
	// deliberately slow hash would hold up every other write.
	hashes := map[string][]byte{}
	for _, pw := range patch.Passwords(ops) {
		hashes[pw] = hashPassword(pw)
	}
	likelyErasing := bytes.Contains(body, []byte("anonymized"))
	return s.withMatches(ctx, tenant, k, id, ops, mc, base, func(matched *memberMatches) (Resource, error) {
		return s.modify(ctx, tenant, k, id, likelyErasing, view, func(tx storage.Tx, pre *erasure, erased *bool) (uint64, commitFunc, error) {
			return s.patchWith(tx, actor, k, id, ops, mc, matched, hashes, cond, pre, erased)
		})
	})
}

// patchWith works out a PATCH against tx, as replaceWith does a PUT; mc is its change to the
// members, matched what the group's members tell it (see withMatches).
func (s *Service) patchWith(tx storage.Tx, actor Actor, k *Kind, id string, ops []patch.Operation, mc patch.MemberChange, matched *memberMatches,
	hashes map[string][]byte, cond Conditions, pre *erasure, erased *bool) (uint64, commitFunc, error) {
	rec, doc, err := current(tx, k, id, cond)
	if err != nil {
		return 0, nil, err
	}
	// A user's PATCH applies to what the client reads: the stored document plus the
	// lifecycle's anonymized, so that removing or clearing it means what it says.
	was, input := false, doc
	if k.audited {
		if was, err = isAnonymized(tx, id); err != nil {
			return 0, nil, err
		}
		input = cloneDoc(doc)
		input[schemas.LifecycleURN] = map[string]any{"anonymized": was}
	}
	newDoc, changed, err := patch.Apply(input, ops, k.patchSchema())
	if err != nil {
		return 0, nil, ErrorOf(err)
	}
	newDoc = pruneDoc(newDoc)
	if err := checkValues(newDoc); err != nil {
		return 0, nil, err
	}
	if err := checkMembers(mc.Add); err != nil {
		return 0, nil, err
	}
	want, _ := anonymizeRequest(newDoc)
	stripLifecycle(newDoc)
	password, _ := newDoc["password"].(string)
	delete(newDoc, "password")
	names := storedNames(changed, k)
	trigger := false
	if k.audited {
		if trigger, err = guardAnonymized(was, true, want, len(names) > 0); err != nil {
			return 0, nil, err
		}
	}
	var members memberOutcome
	names, done, err := s.onWriter(tx, actor, k, id, trigger, names, pre, erased, func() (memberOutcome, error) {
		out, err := s.applyMembers(tx, actor, k, id, rec.Version, ops, mc, matched)
		members = out
		return out, err
	})
	if err != nil || done {
		return rec.Version, nil, err
	}
	if len(names) == 0 {
		return max(rec.Version, members.version), nil, nil // the document stays as it was
	}
	version := rec.Version
	if rec.Doc, err = encodeDoc(newDoc); err != nil {
		return 0, nil, err
	}
	rec.Keys = k.Collection.KeysOf(newDoc)
	if err := checkKeys(rec.Keys); err != nil {
		return 0, nil, err
	}
	if password != "" {
		h, ok := hashes[password]
		if !ok {
			return 0, nil, Errorf(Internal, "", "a password reached the store without its hash")
		}
		rec.Secret = h
	}
	return version, func(tx storage.Tx) (storage.Record, error) {
		stored, err := s.update(tx, k, rec, doc, newDoc)
		if err != nil {
			return stored, err
		}
		return stored, record(tx, actor, updateOp(opPatch, doc, newDoc), k, id, stored.Version, names)
	}, nil
}

// onWriter does what only the writer can do for a PUT or PATCH once it is worked out: the
// anonymization it triggers (done: nothing more to write; *erased says whether it erased), and a
// change of the member list (members). Working on a snapshot (erased nil), it answers
// errOnWriter when either is needed.
func (s *Service) onWriter(tx storage.Tx, actor Actor, k *Kind, id string, trigger bool, names []string, pre *erasure, erased *bool, members func() (memberOutcome, error)) ([]string, bool, error) {
	if (trigger || k.hasMembers) && erased == nil {
		return nil, false, errOnWriter
	}
	if trigger {
		var err error
		*erased, err = s.anonymizeTx(tx, actor, id, pre)
		return nil, true, err
	}
	if k.hasMembers {
		out, err := members()
		if err != nil {
			return nil, false, err
		}
		if out.redisplayed {
			names = addName(names, k.related)
		}
	}
	return names, false, nil
}

// errOnWriter: what a write needs can only be done on the writer (see writeChecked).
var errOnWriter = errors.New("the write must be worked out on the writer")

// optimisticTries bounds how often writeChecked works a write out again after the record
// changed under it, before handing it to the writer.
const optimisticTries = 3

// writeChecked takes the work of a write to one record off the store's single writer: prepare
// reads the record and works the write out in a read transaction (a snapshot), on any core and
// beside other writes, and returns the version it read and the writes to make (nil: nothing
// changes). Those are committed only if the record still has that version; if it changed
// meanwhile, the write is worked out again from a fresh snapshot. done is false when prepare
// said the write needs the writer (errOnWriter) or the record kept changing: the caller then
// does the whole write on the writer, as a write that reads what it changes must. stored is the
// record as the commit left it, nil when nothing changed.
func (s *Service) writeChecked(ctx context.Context, tenant string, k *Kind, id string, prepare func(storage.Tx) (uint64, commitFunc, error)) (done bool, stored *storage.Record, err error) {
	for range optimisticTries {
		var version uint64
		var commit commitFunc
		err := s.read(ctx, tenant, func(tx storage.Tx) error {
			var err error
			version, commit, err = prepare(tx)
			return err
		})
		switch {
		case errors.Is(err, errOnWriter):
			return false, nil, nil
		case err != nil:
			return true, nil, err
		case commit == nil:
			return true, nil, nil
		}
		stale := false
		var rec storage.Record
		err = s.write(ctx, tenant, func(tx storage.Tx) error {
			stale = false
			cur, err := k.get(tx, id)
			if err != nil {
				return err
			}
			if cur.Version != version {
				stale = true
				return nil // nothing written: the transaction goes on with the other writes
			}
			rec, err = commit(tx)
			return err
		})
		if !stale {
			return true, &rec, err
		}
	}
	return false, nil, nil
}

// Delete deletes a resource; of an audited user, it deactivates it instead (deleteRecord).
func (s *Service) Delete(ctx context.Context, tenant string, actor Actor, k *Kind, id string, cond Conditions) error {
	return s.write(ctx, tenant, func(tx storage.Tx) error {
		rec, doc, err := current(tx, k, id, cond)
		if err != nil {
			return err
		}
		return s.deleteRecord(tx, actor, k, rec, doc)
	})
}

// storedNames keeps, of the attributes a PATCH changed, those stored in the document (and
// the password): the lifecycle extension is the server's to state, and a member list is named
// only when its change changed something.
func storedNames(changed []string, k *Kind) []string {
	names := make([]string, 0, len(changed))
	for _, n := range changed {
		if n == k.related || strings.HasPrefix(n, schemas.LifecycleURN+":") {
			continue
		}
		names = append(names, n)
	}
	return names
}

// prefetchIfErasing works the anonymization of a user out ahead of a write that may trigger
// it (see prefetchErasure); a guess that turns out wrong only costs a read.
func (s *Service) prefetchIfErasing(ctx context.Context, tenant string, k *Kind, id string, likely bool) *erasure {
	if !k.audited || !likely {
		return nil
	}
	return s.prefetchErasure(ctx, tenant, id)
}

// update stores a record's new document and returns its new version. Members show their groups'
// names: when a group's name changes, its members get new versions too.
func (s *Service) update(tx storage.Tx, k *Kind, rec storage.Record, old, doc map[string]any) (storage.Record, error) {
	rec, err := tx.Update(k.Collection, rec)
	if err != nil {
		return rec, err
	}
	if k.hasMembers && stringAt(old, k.nameAttr) != stringAt(doc, k.nameAttr) {
		return rec, s.touchMembers(tx, rec.ID)
	}
	return rec, nil
}

// input is a POST or PUT body made into what is stored.
type input struct {
	doc       map[string]any // the document as stored, without the lifecycle extension
	raw       []byte         // doc, encoded
	secret    []byte         // the password's hash, when the body sets one
	members   []storage.Member
	anonymize bool // the body asks for anonymization (lifecycle anonymized: true) …
	// anonymizeSet: … or says anything about it (false is refused for an anonymized user).
	anonymizeSet bool
}

// input parses and normalises a POST or PUT body of the kind.
func (k *Kind) input(body []byte) (input, error) {
	m, err := decodeBody(body)
	if err != nil {
		return input{}, err
	}
	var in input
	if k.hasMembers {
		if in.members, err = membersFromBody(m); err != nil {
			return input{}, err
		}
	}
	doc, password, err := k.docFromBody(m)
	if err != nil {
		return input{}, err
	}
	if k.audited {
		in.anonymize, in.anonymizeSet = anonymizeRequest(doc)
		stripLifecycle(doc)
		if password != "" {
			in.secret = hashPassword(password)
		}
	}
	in.doc = doc
	if err := checkKeys(k.Collection.KeysOf(doc)); err != nil {
		return input{}, err
	}
	if in.raw, err = encodeDoc(doc); err != nil {
		return input{}, err
	}
	return in, nil
}

// names lists the attributes the input changes against old (nil for a new resource). Members
// are not among them: each membership that begins or ends has an event of its own.
func (in input) names(old map[string]any) []string {
	return attrNames(old, in.doc, in.secret != nil)
}

func addName(names []string, name string) []string {
	if slices.Contains(names, name) {
		return names
	}
	names = append(names, name)
	slices.Sort(names)
	return names
}

// checkKeys refuses indexed values the store would not take, as a client error.
func checkKeys(keys [][]string) error {
	for _, ks := range keys {
		for _, v := range ks {
			if len(v) > storage.MaxKeyLen {
				return invalid("invalidValue", "an identifying attribute (userName, displayName, externalId, an email) is too long")
			}
		}
	}
	return nil
}

func pruneDoc(doc map[string]any) map[string]any {
	if p, ok := prune(doc).(map[string]any); ok {
		return p
	}
	return map[string]any{}
}

func stringAt(doc map[string]any, key string) string {
	s, _ := doc[key].(string)
	return s
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

// cloneDoc copies a document one level deep.
func cloneDoc(doc map[string]any) map[string]any { return maps.Clone(doc) }
