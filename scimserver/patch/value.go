package patch

import (
	"encoding/json"

	"github.com/elimity-com/scim/schema"
)

// isClear reports whether v means "no value": null, "", [] or {}. Entra and Microsoft's
// null-update test clear attributes with "" and null.
func isClear(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// normalizeValue validates v against attr and returns it in canonical form, or nil when v
// clears the attribute.
func normalizeValue(attr schema.CoreAttribute, v any) (any, *Error) {
	if !attr.MultiValued() {
		return normalizeOne(attr, v)
	}
	list, err := normalizeList(attr, v)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list, nil
}

// normalizeList validates the elements of a multi-valued attribute. A single element is accepted
// in place of an array; elements that are empty after normalisation are dropped.
func normalizeList(attr schema.CoreAttribute, v any) ([]any, *Error) {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	out := make([]any, 0, len(items))
	for _, item := range items {
		e, err := normalizeOne(attr, item)
		if err != nil {
			return nil, err
		}
		if m, ok := e.(map[string]any); ok {
			e = compact(m)
		}
		if !isClear(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// normalizeOne validates a single value of attr (one element, for a multi-valued attribute).
// It returns nil when v clears the value. Complex values become maps keyed by canonical
// sub-attribute names in which a nil value marks a sub-attribute to clear.
func normalizeOne(attr schema.CoreAttribute, v any) (any, *Error) {
	if l, ok := v.([]any); ok && len(l) == 1 {
		v = l[0] // Entra's legacy manager add wraps the object in an array
	}
	if isClear(v) {
		return nil, nil
	}
	typ := attr.AttributeType()
	switch typ {
	case "complex":
		return normalizeComplex(attr, v)
	case "boolean":
		if b, ok := boolValue(v); ok {
			return b, nil
		}
	case "integer":
		if n, ok := v.(json.Number); ok {
			if _, err := n.Int64(); err == nil {
				return n, nil
			}
		}
	case "decimal":
		if n, ok := v.(json.Number); ok {
			if _, err := n.Float64(); err == nil {
				return n, nil
			}
		}
	default:
		// Booleans and numbers are checked above rather than here: ValidateSingular accepts
		// strings for them when elimity's process-wide SetAllowStringValues is on.
		if _, err := attr.ValidateSingular(v); err == nil {
			return v, nil
		}
	}
	return nil, errorf(invalidValue, "the value of %s is not a valid %s", attr.Name(), typ)
}

func normalizeComplex(attr schema.CoreAttribute, v any) (any, *Error) {
	if s, ok := v.(string); ok && isRefLike(attr) {
		v = map[string]any{"value": s} // Entra sends the manager as a bare id
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(invalidValue, "the value of %s must be an object", attr.Name())
	}
	out := make(map[string]any, len(obj))
	seen := make(map[string]bool, len(obj))
	for k, sv := range obj {
		sub, ok := attr.SubAttributes().ContainsAttribute(k)
		if !ok {
			continue // as in a POST or PUT body, a sub-attribute no schema defines is ignored
		}
		if seen[sub.Name()] {
			return nil, errorf(invalidSyntax, "%s.%s is given twice (the keys differ only in case)", attr.Name(), sub.Name())
		}
		seen[sub.Name()] = true
		if sub.Mutability() == "readOnly" {
			continue // clients echo read-only values back, e.g. manager.displayName
		}
		nv, err := normalizeValue(sub, sv)
		if err != nil {
			return nil, err
		}
		out[sub.Name()] = nv
	}
	return out, nil
}

// isRefLike reports whether attr is a singular complex attribute identified by its "value"
// sub-attribute, like the enterprise manager: a bare string stands for {"value": ...}, and a
// replace sets the whole object, so that $ref and displayName of the old value do not linger.
func isRefLike(attr schema.CoreAttribute) bool {
	if attr.AttributeType() != "complex" || attr.MultiValued() {
		return false
	}
	_, ok := attr.SubAttributes().ContainsAttribute("value")
	return ok
}

// compact returns a deep copy of m without its clear markers.
func compact(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	merge(out, m)
	return out
}

// merge writes src's sub-attributes into dst; nil values remove the key.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = deepCopy(v)
		}
	}
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = deepCopy(x)
		}
		return l
	}
	return v
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
