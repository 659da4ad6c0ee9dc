package scimserver

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/patch"
)

// resourceType describes one SCIM resource type: its endpoint and schemas.
type resourceType struct {
	name       string        // "User"
	endpoint   string        // "/Users"
	core       schema.Schema // with the common attributes id, externalId and meta
	extensions []schema.Schema
}

func newResourceType(name, endpoint string, core schema.Schema, extensions ...schema.Schema) *resourceType {
	return &resourceType{name: name, endpoint: endpoint, core: core, extensions: extensions}
}

func userType() *resourceType {
	return newResourceType("User", "/Users", schemas.User(), schemas.EnterpriseUser(), schemas.Lifecycle())
}

func groupType() *resourceType { return newResourceType("Group", "/Groups", schemas.Group()) }

// patchSchema is the view of the schemas the PATCH engine works with.
func (rt *resourceType) patchSchema() patch.Schema {
	return patch.Schema{Core: rt.core, Extensions: rt.extensions}
}

// attrRef is an attribute path resolved against a resource type's schemas.
type attrRef struct {
	urn  string // extension URN, or "" for core and common attributes
	attr schema.CoreAttribute
	sub  *schema.CoreAttribute
	// implicitValue marks "emails" standing for "emails.value" in a filter.
	implicitValue bool
}

// resolve finds the attribute an (optionally URN-qualified) path names.
func (rt *resourceType) resolve(urn, name, sub string) (attrRef, bool) {
	var ref attrRef
	found := false
	switch {
	case urn == "" || strings.EqualFold(urn, rt.core.ID):
		if a, ok := rt.core.Attributes.ContainsAttribute(name); ok {
			ref, found = attrRef{attr: a}, true
		}
	default:
		for _, ext := range rt.extensions {
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
func (rt *resourceType) splitPath(p string) (urn, name, sub string) {
	for _, id := range rt.schemaIDs() {
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

func (rt *resourceType) schemaIDs() []string {
	ids := []string{rt.core.ID}
	for _, e := range rt.extensions {
		ids = append(ids, e.ID)
	}
	return ids
}

// value returns the value an attribute reference points at in a rendered resource.
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

// docFromBody turns a POST or PUT body into a document: validated against the schemas, readOnly
// attributes dropped, empty values removed. The password, if any, is returned apart. Of the
// lifecycle extension only a client's "anonymized" survives, for the caller to act on and strip.
func (rt *resourceType) docFromBody(m map[string]any) (map[string]any, string, error) {
	if err := checkShape(rt, m); err != nil {
		return nil, "", err
	}
	normaliseBody(rt, m)
	doc, serr := rt.core.Validate(m)
	if serr != nil {
		return nil, "", badRequest("invalidValue", bodyDetail)
	}
	for _, ext := range rt.extensions {
		raw, ok := lookupFold(m, ext.ID)
		if !ok || raw == nil {
			continue
		}
		attrs, serr := ext.ValidateExtension(raw)
		if serr != nil {
			return nil, "", badRequest("invalidValue", bodyDetail)
		}
		doc[ext.ID] = attrs
	}
	doc = pruneDoc(doc)
	if err := checkValues(doc); err != nil {
		return nil, "", err
	}
	password, _ := doc["password"].(string)
	delete(doc, "password")
	return doc, password, nil
}

const bodyDetail = "an attribute is missing, or has a value of the wrong type for the resource schema"

// checkShape checks what the schema validation would report only vaguely: the "schemas" list,
// and attribute names repeated in other letter cases.
func checkShape(rt *resourceType, m map[string]any) error {
	list, ok := m["schemas"].([]any)
	found := false
	for _, s := range list {
		if str, ok := s.(string); ok && strings.EqualFold(str, rt.core.ID) {
			found = true
		}
	}
	if !ok || !found {
		return badRequest("invalidSyntax", `the "schemas" attribute must list `+rt.core.ID)
	}
	seen := map[string]bool{}
	for k := range m {
		l := strings.ToLower(k)
		if seen[l] {
			return badRequest("invalidSyntax", "the request body repeats an attribute in different letter cases")
		}
		seen[l] = true
	}
	return nil
}

func lookupFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// normaliseBody accepts what real clients send before the schema validates it: extension
// attributes written flat ("urn:…:User:department": "x"), booleans as "True"/"False", and the
// enterprise manager as a bare id string ("" meaning none).
func normaliseBody(rt *resourceType, m map[string]any) {
	for _, ext := range rt.extensions {
		for k, v := range m {
			if len(k) > len(ext.ID)+1 && strings.EqualFold(k[:len(ext.ID)+1], ext.ID+":") {
				obj, _ := m[ext.ID].(map[string]any)
				if obj == nil {
					obj = map[string]any{}
					m[ext.ID] = obj
				}
				obj[k[len(ext.ID)+1:]] = v
				delete(m, k)
			}
		}
	}
	normaliseAttrs(rt.core.Attributes, m)
	for _, ext := range rt.extensions {
		if obj, ok := m[ext.ID].(map[string]any); ok {
			normaliseAttrs(ext.Attributes, obj)
		}
	}
}

func normaliseAttrs(attrs schema.Attributes, m map[string]any) {
	for k, v := range m {
		a, ok := attrs.ContainsAttribute(k)
		if !ok {
			continue
		}
		switch {
		case a.AttributeType() == "boolean" && !a.MultiValued():
			m[k] = stringBool(v)
		case a.AttributeType() == "complex" && a.Name() == "manager":
			if s, ok := v.(string); ok {
				if s == "" {
					delete(m, k)
				} else {
					m[k] = map[string]any{"value": s}
				}
			}
		case a.AttributeType() == "complex" && a.MultiValued():
			if list, ok := v.([]any); ok {
				for _, el := range list {
					if obj, ok := el.(map[string]any); ok {
						normaliseAttrs(a.SubAttributes(), obj)
					}
				}
			}
		case a.AttributeType() == "complex":
			if obj, ok := v.(map[string]any); ok {
				normaliseAttrs(a.SubAttributes(), obj)
			}
		}
	}
}

func stringBool(v any) any {
	if s, ok := v.(string); ok {
		switch strings.ToLower(s) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return v
}

// prune removes nulls, empty strings, empty lists and empty objects: RFC 7643 §2.5 treats them
// all as unassigned, and storing them would make "cleared" and "absent" differ.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p := prune(e); p == nil {
				delete(x, k)
			} else {
				x[k] = p
			}
		}
		if len(x) == 0 {
			return nil
		}
		return x
	case []any:
		out := x[:0]
		for _, e := range x {
			if p := prune(e); p != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if x == "" {
			return nil
		}
	case nil:
		return nil
	}
	return v
}

// meta renders the meta attribute.
func metaOf(rt *resourceType, location string, created, modified time.Time, version uint64) map[string]any {
	return map[string]any{
		"resourceType": rt.name,
		"created":      created.Format(timeFormat),
		"lastModified": modified.Format(timeFormat),
		"location":     location,
		"version":      etag(version),
	}
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func etag(version uint64) string { return `W/"` + strconv.FormatUint(version, 10) + `"` }

// schemasOf lists the core schema and the extensions the document uses.
func (rt *resourceType) schemasOf(doc map[string]any) []string {
	out := []string{rt.core.ID}
	for _, e := range rt.extensions {
		if _, ok := doc[e.ID]; ok {
			out = append(out, e.ID)
		}
	}
	return out
}

func decodeDoc(raw []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	return m, d.Decode(&m)
}

// maxValues bounds a multi-valued attribute of a user or group document (members are stored
// apart and bounded only by the body size).
const maxValues = 1000

// checkValues refuses what no identity provider sends and the store should not keep: NUL
// characters, and multi-valued attributes with more than maxValues values.
func checkValues(v any) error {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return badRequest("invalidValue", "attribute values cannot contain NUL characters")
		}
	case []any:
		if len(x) > maxValues {
			return badRequest("invalidValue", fmt.Sprintf("a multi-valued attribute holds at most %d values", maxValues))
		}
		for _, e := range x {
			if err := checkValues(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return badRequest("invalidValue", "attribute names cannot contain NUL characters")
			}
			if err := checkValues(e); err != nil {
				return err
			}
		}
	}
	return nil
}
