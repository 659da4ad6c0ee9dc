package scimserver

import (
	"strings"

	"github.com/elimity-com/scim/schema"
)

// bodyCheck validates a POST or PUT body against one schema as elimity's Schema.Validate does,
// attribute for attribute and value for value (through elimity's ValidateSingular), but finds
// each body key's attribute by a lookup: Validate compares every attribute of the schema with
// every key of the body, which was the largest cost of a create after decoding.
type bodyCheck struct {
	id       string
	names    []string        // the schema's attribute names
	byName   map[string]int  // lower-cased names
	alone    []schema.Schema // each attribute in a schema of its own, for the values elimity reads its own way
	required []int           // attributes that fail when absent
	attrs    schema.Attributes
}

func newBodyCheck(s schema.Schema) *bodyCheck {
	c := &bodyCheck{id: s.ID, byName: map[string]int{}, attrs: s.Attributes}
	for i, a := range s.Attributes {
		c.names = append(c.names, a.Name())
		c.byName[strings.ToLower(a.Name())] = i
		c.alone = append(c.alone, schema.Schema{ID: s.ID, Attributes: schema.Attributes{a}})
		if failsAbsent(a) {
			c.required = append(c.required, i)
		}
	}
	return c
}

// attrIndex finds the attribute a body key names, in any letter case: by a lookup of the key
// lower-cased, or, for a key that is not ASCII (which can match a name only through Unicode's
// folding) or is long, by strings.EqualFold with each name, as elimity compares them.
func (c *bodyCheck) attrIndex(key string) (int, bool) {
	var buf [64]byte // attribute names are short: lower-case the key without allocating
	if len(key) <= len(buf) && isASCII(key) {
		for i := range len(key) {
			b := key[i]
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			buf[i] = b
		}
		i, ok := c.byName[string(buf[:len(key)])]
		return i, ok
	}
	for i, n := range c.names {
		if strings.EqualFold(n, key) {
			return i, true
		}
	}
	return 0, false
}

// lookup finds the attribute a body key names, as schema.Attributes.ContainsAttribute does.
func (c *bodyCheck) lookup(key string) (schema.CoreAttribute, bool) {
	i, ok := c.attrIndex(key)
	if !ok {
		return schema.CoreAttribute{}, false
	}
	return c.attrs[i], true
}

// validate returns the schema's attributes of m, validated, under their names in the schema, or
// false where Validate (withID: the "schemas" list must name the schema) or ValidateExtension
// fails.
func (c *bodyCheck) validate(m map[string]any, withID bool) (map[string]any, bool) {
	if withID && !listsSchema(m, c.id) {
		return nil, false
	}
	out := make(map[string]any, len(m))
	var seenBuf [64]bool
	seen := seenBuf[:]
	if len(c.names) > len(seenBuf) {
		seen = make([]bool, len(c.names))
	}
	for k, v := range m {
		i, ok := c.attrIndex(k)
		if !ok {
			continue
		}
		if seen[i] {
			return nil, false // two keys for one attribute
		}
		seen[i] = true
		val, ok := c.attr(i, v)
		if !ok {
			return nil, false
		}
		if val != nil {
			out[c.names[i]] = val
		}
	}
	for _, i := range c.required {
		if !seen[i] {
			return nil, false
		}
	}
	return out, true
}

// attr validates v, the value of attribute i, as elimity's (unexported) CoreAttribute.validate
// does, through elimity's ValidateSingular for each value; a multi-valued attribute given as an
// object, which elimity reads its own way, through the attribute's own schema.
func (c *bodyCheck) attr(i int, v any) (any, bool) {
	a := c.attrs[i]
	switch {
	case v == nil:
		return nil, !failsAbsent(a)
	case a.Mutability() == "readOnly":
		return nil, true
	case !a.MultiValued():
		got, serr := a.ValidateSingular(v)
		return got, serr == nil
	}
	switch list := v.(type) {
	case []any:
		if a.Required() && len(list) == 0 {
			return nil, false
		}
		var out []any // nil for an empty list, as elimity leaves it
		for _, e := range list {
			got, serr := a.ValidateSingular(e)
			if serr != nil {
				return nil, false
			}
			out = append(out, got)
		}
		return out, true
	case map[string]any:
		got, serr := c.alone[i].ValidateExtension(map[string]any{c.names[i]: v})
		return got[c.names[i]], serr == nil
	}
	return nil, false
}

// failsAbsent is elimity's rule for an attribute without a value (absent, or null): an error
// when it is required, unless it is readOnly (the server's to set).
func failsAbsent(a schema.CoreAttribute) bool {
	return a.Required() && a.Mutability() != "readOnly"
}

// listsSchema is elimity's check of a core schema's id: an exact entry of the "schemas" list.
func listsSchema(m map[string]any, id string) bool {
	list, ok := m["schemas"].([]any)
	if !ok {
		return false
	}
	for _, v := range list {
		if v == id {
			return true
		}
	}
	return false
}
