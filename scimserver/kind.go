package scimserver

import (
	"net/url"
	"strings"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/patch"
	"github.com/scimserver/scimserver/storage"
)

// Kind is a SCIM resource type as data: its schemas, the collection its records are stored in
// with their indexes, and what sets it apart from other kinds. Code asks a Kind what it has —
// a member list, audit facts, a password — never which kind it is.
type Kind struct {
	Name       string // "User": meta.resourceType, the trail's resource type
	Endpoint   string // "/Users"
	Collection *storage.Collection

	core       schema.Schema
	extensions []schema.Schema
	// bodyChecks validate a POST or PUT body: the core schema's first, then each extension's.
	bodyChecks []*bodyCheck
	// nameAttr is the attribute kept unique per tenant, case-insensitively; its index is named
	// after it and gives the name order.
	nameAttr string
	// related is the attribute that shows other records: a user's "groups" (from the
	// memberships it is in), a group's "members" (its own member list).
	related string
	// hasMembers marks a kind whose records have a member list, stored apart from the document.
	hasMembers bool
	// audited marks a kind whose records are people: the audit rules, the lifecycle extension,
	// anonymization and passwords apply.
	audited bool
}

// Users is the User kind: core User, EnterpriseUser and lifecycle extensions.
func Users() *Kind {
	k := newKind("User", "/Users", "users", schemas.User(), schemas.EnterpriseUser(), schemas.Lifecycle())
	k.nameAttr, k.related, k.audited = "userName", "groups", true
	k.index("userName", "userName", true)
	k.index("externalId", "externalId", false)
	k.index("email", "emails.value", false)
	k.index("manager", schemas.EnterpriseURN+":manager.value", false)
	return k
}

// Groups is the Group kind.
func Groups() *Kind {
	k := newKind("Group", "/Groups", "groups", schemas.Group())
	k.nameAttr, k.related, k.hasMembers = "displayName", "members", true
	k.index("displayName", "displayName", true)
	k.index("externalId", "externalId", false)
	return k
}

// Collections declares what the domain stores: the engine is opened with them.
func Collections() []*storage.Collection {
	return []*storage.Collection{Users().Collection, Groups().Collection, webhookCollection}
}

func newKind(name, endpoint, collection string, core schema.Schema, extensions ...schema.Schema) *Kind {
	k := &Kind{Name: name, Endpoint: endpoint, Collection: &storage.Collection{Name: collection},
		core: core, extensions: extensions}
	for _, s := range append([]schema.Schema{core}, extensions...) {
		k.bodyChecks = append(k.bodyChecks, newBodyCheck(s))
	}
	return k
}

// index declares an index on the attribute at path: its keys are the path's string values,
// compared case-insensitively unless the attribute is caseExact, as a filter compares them.
func (k *Kind) index(name, path string, unique bool) {
	urn, attr, sub := k.splitPath(path)
	ref, ok := k.resolve(urn, attr, sub)
	if !ok {
		panic("index " + name + " on an attribute " + k.Name + " does not have: " + path)
	}
	k.Collection.Indexes = append(k.Collection.Indexes, storage.Index{Name: name, Attr: path, Unique: unique,
		Fold: !ref.target().CaseExact(), Keys: func(doc map[string]any) []string { return ref.strings(doc) }})
}

// patchSchema is the view of the schemas the PATCH engine works with.
func (k *Kind) patchSchema() patch.Schema {
	return patch.Schema{Core: k.core, Extensions: k.extensions}
}

// location is the URL of a record of the kind under the SCIM root base.
func (k *Kind) location(base, id string) string {
	return base + k.Endpoint + "/" + url.PathEscape(id)
}

// attrRef is an attribute path resolved against a kind's schemas.
type attrRef struct {
	urn  string // extension URN, or "" for core and common attributes
	attr schema.CoreAttribute
	sub  *schema.CoreAttribute
	// implicitValue marks "emails" standing for "emails.value" in a filter.
	implicitValue bool
}

// resolve finds the attribute an (optionally URN-qualified) path names.
func (k *Kind) resolve(urn, name, sub string) (attrRef, bool) {
	var ref attrRef
	found := false
	switch {
	case urn == "" || strings.EqualFold(urn, k.core.ID):
		if a, ok := k.core.Attributes.ContainsAttribute(name); ok {
			ref, found = attrRef{attr: a}, true
		}
	default:
		for _, ext := range k.extensions {
			if strings.EqualFold(urn, ext.ID) {
				if a, ok := ext.Attributes.ContainsAttribute(name); ok {
					ref, found = attrRef{urn: ext.ID, attr: a}, true
				}
			}
		}
	}
	if !found {
		return attrRef{}, false
	}
	if sub != "" {
		s, ok := ref.attr.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return attrRef{}, false
		}
		ref.sub = &s
	}
	return ref, true
}

// splitPath splits "urn:…:User:name.givenName" into its schema URN, attribute and
// sub-attribute. A bare extension URN comes back as (urn, "", "").
func (k *Kind) splitPath(p string) (urn, name, sub string) {
	for _, id := range k.schemaIDs() {
		if strings.EqualFold(p, id) {
			return id, "", ""
		}
		if len(p) > len(id) && strings.EqualFold(p[:len(id)+1], id+":") {
			urn, p = id, p[len(id)+1:]
			break
		}
	}
	name, sub, _ = strings.Cut(p, ".")
	return urn, name, sub
}

func (k *Kind) schemaIDs() []string {
	ids := []string{k.core.ID}
	for _, e := range k.extensions {
		ids = append(ids, e.ID)
	}
	return ids
}

// path is the canonical path of a reference: "emails.value", "urn:…:User:manager.value".
func (ref attrRef) path() string {
	p := ref.attr.Name()
	if ref.sub != nil {
		p += "." + ref.sub.Name()
	}
	if ref.urn != "" {
		p = ref.urn + ":" + p
	}
	return p
}

// value returns the value an attribute reference points at in a document.
func (ref attrRef) value(m map[string]any) (any, bool) {
	if ref.urn != "" {
		ext, ok := m[ref.urn].(map[string]any)
		if !ok {
			return nil, false
		}
		m = ext
	}
	v, ok := m[ref.attr.Name()]
	return v, ok
}

// strings returns the non-empty string values the reference reaches in a document: of every
// element, for a multi-valued attribute.
func (ref attrRef) strings(m map[string]any) []string {
	v, ok := ref.value(m)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range asList(v) {
		if ref.sub != nil {
			obj, _ := el.(map[string]any)
			el = obj[ref.sub.Name()]
		}
		if s, ok := el.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// target is the attribute whose type a comparison uses.
func (ref attrRef) target() schema.CoreAttribute {
	if ref.sub != nil {
		return *ref.sub
	}
	return ref.attr
}

// Schema is the kind's core schema; Extensions its schema extensions.
func (k *Kind) Schema() schema.Schema       { return k.core }
func (k *Kind) Extensions() []schema.Schema { return k.extensions }

// Audited reports whether the kind's records are people, to whom the audit rules, the
// lifecycle extension and anonymization apply.
func (k *Kind) Audited() bool { return k.audited }

// HasMembers reports whether the kind's records have a member list.
func (k *Kind) HasMembers() bool { return k.hasMembers }
