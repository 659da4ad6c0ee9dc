package scimserver

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/scimserver/compare"
	"github.com/scimserver/scimserver/scimserver/patch"
)

// docFromBody turns a POST or PUT body into a document: validated against the schemas, readOnly
// attributes dropped, empty values removed. The password, if any, is returned apart. Of the
// lifecycle extension only a client's "anonymized" survives, for the caller to act on and strip.
func (k *Kind) docFromBody(m map[string]any) (map[string]any, string, error) {
	if err := checkShape(k, m); err != nil {
		return nil, "", err
	}
	normaliseBody(k, m)
	doc, ok := k.bodyChecks[0].validate(m, true)
	if !ok {
		return nil, "", invalid("invalidValue", bodyDetail)
	}
	for i, ext := range k.extensions {
		raw, ok := lookupFold(m, ext.ID)
		if !ok || raw == nil {
			continue
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			return nil, "", invalid("invalidValue", bodyDetail)
		}
		attrs, ok := k.bodyChecks[i+1].validate(obj, false)
		if !ok {
			return nil, "", invalid("invalidValue", bodyDetail)
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
func checkShape(k *Kind, m map[string]any) error {
	list, ok := m["schemas"].([]any)
	found := false
	for _, s := range list {
		if str, ok := s.(string); ok && strings.EqualFold(str, k.core.ID) {
			found = true
		}
	}
	if !ok || !found {
		return invalid("invalidSyntax", `the "schemas" attribute must list `+k.core.ID)
	}
	if repeatsInOtherCase(m) {
		return invalid("invalidSyntax", "the request body repeats an attribute in different letter cases")
	}
	return nil
}

// repeatsInOtherCase reports whether two keys of m are the same lower-cased (strings.ToLower). A
// body has a few keys: they are compared in pairs, which lower-cases (and allocates) nothing for
// ASCII keys; a body of many keys goes through a set of the lower-cased keys.
func repeatsInOtherCase(m map[string]any) bool {
	const few = 16
	if len(m) > few {
		seen := make(map[string]bool, len(m))
		for k := range m {
			l := strings.ToLower(k)
			if seen[l] {
				return true
			}
			seen[l] = true
		}
		return false
	}
	var keys [few]string
	var ascii [few]bool
	n := 0
	for k := range m {
		keys[n], ascii[n] = k, isASCII(k)
		for j := range n {
			var same bool
			if ascii[n] && ascii[j] {
				same = len(k) == len(keys[j]) && strings.EqualFold(k, keys[j])
			} else { // lower-cased, as the set compares them: EqualFold also folds "ſ" to "s"
				// (kept apart, so that staticcheck does not take the comparison for EqualFold)
				lk, lj := strings.ToLower(k), strings.ToLower(keys[j])
				same = lk == lj
			}
			if same {
				return true
			}
		}
		n++
	}
	return false
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
// attributes written flat ("urn:…:User:department": "x"), and the value forms patch.Lenient
// reads for PATCH values too (booleans as "True"/"False", the manager as a bare id).
func normaliseBody(k *Kind, m map[string]any) {
	for _, ext := range k.extensions {
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
	normaliseAttrs(k.bodyChecks[0], nil, m)
	for i, ext := range k.extensions {
		if obj, ok := m[ext.ID].(map[string]any); ok {
			normaliseAttrs(k.bodyChecks[i+1], nil, obj)
		}
	}
}

// normaliseAttrs normalises the values of m that are attributes of a schema (found through its
// check) or sub-attributes (attrs, when check is nil).
func normaliseAttrs(check *bodyCheck, attrs schema.Attributes, m map[string]any) {
	for k, v := range m {
		var a schema.CoreAttribute
		var ok bool
		if check != nil {
			a, ok = check.lookup(k)
		} else {
			a, ok = attrs.ContainsAttribute(k)
		}
		if !ok {
			continue
		}
		v = patch.Lenient(a, v)
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
		if a.AttributeType() != "complex" {
			continue
		}
		for _, el := range asList(v) {
			if obj, ok := el.(map[string]any); ok {
				normaliseAttrs(nil, a.SubAttributes(), obj)
			}
		}
	}
}

// prune removes unassigned values (compare.Unassigned), also those a removal inside a list or an
// object leaves behind: storing them would make "cleared" and "absent" differ.
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
	case []any:
		out := x[:0]
		for _, e := range x {
			if p := prune(e); p != nil {
				out = append(out, p)
			}
		}
		v = out
	}
	if compare.Unassigned(v) {
		return nil
	}
	return v
}

// metaOf renders the meta attribute.
func metaOf(k *Kind, location string, created, modified time.Time, version uint64) map[string]any {
	return map[string]any{
		"resourceType": k.Name,
		"created":      created.Format(timeFormat),
		"lastModified": modified.Format(timeFormat),
		"location":     location,
		"version":      etag(version),
	}
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func etag(version uint64) string { return `W/"` + strconv.FormatUint(version, 10) + `"` }

// schemasOf lists the core schema and the extensions the document uses.
func (k *Kind) schemasOf(doc map[string]any) []string {
	out := []string{k.core.ID}
	for _, e := range k.extensions {
		if _, ok := doc[e.ID]; ok {
			out = append(out, e.ID)
		}
	}
	return out
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
			return invalid("invalidValue", "attribute values cannot contain NUL characters")
		}
	case []any:
		if len(x) > maxValues {
			return invalid("invalidValue", fmt.Sprintf("a multi-valued attribute holds at most %d values", maxValues))
		}
		for _, e := range x {
			if err := checkValues(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return invalid("invalidValue", "attribute names cannot contain NUL characters")
			}
			if err := checkValues(e); err != nil {
				return err
			}
		}
	}
	return nil
}
