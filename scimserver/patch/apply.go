package patch

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/compare"
)

// Apply applies ops in order to a copy of doc; returns the new doc and the sorted,
// de-duplicated top-level names of attributes that changed (URN-qualified, e.g.
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", for extension
// attributes), "members" among them when an operation targets a group's members (Members tells
// how they change). Nothing of doc is modified, also when an error (an *Error) is returned; the
// new doc shares the values of the attributes no operation targets with doc.
func Apply(doc map[string]any, ops []Operation, s Schema) (newDoc map[string]any, changed []string, err error) {
	// An operation changes only the attribute it targets (or, removing a whole extension, that
	// extension): those are copied before the first change to them, and compared after.
	out := maps.Clone(doc)
	if out == nil {
		out = map[string]any{}
	}
	members := false
	var targets []target
	for _, op := range ops {
		if op.t.isMembers() {
			members = true
			continue
		}
		if !slices.ContainsFunc(targets, op.t.sameAttribute) {
			key := op.t.key()
			if v, ok := out[key]; ok && !slices.ContainsFunc(targets, func(t target) bool { return t.key() == key }) {
				out[key] = deepCopy(v) // the first target under this key: copy before changing
			}
			targets = append(targets, op.t)
		}
		if err := applyOp(out, op); err != nil {
			return nil, nil, err.in(op.where.String())
		}
	}
	changed = changedAttributes(doc, out, targets, s)
	if members {
		changed = append(changed, "members")
		slices.Sort(changed)
	}
	return out, changed, nil
}

// key is the key of the document that holds t: its extension's URN, or its own name.
func (t target) key() string {
	if t.urn != "" {
		return t.urn
	}
	return t.attr.Name()
}

// sameAttribute reports whether t and u address the same attribute (or the same whole
// extension), whatever their filters and sub-attributes.
func (t target) sameAttribute(u target) bool {
	return t.urn == u.urn && (t.attr == nil) == (u.attr == nil) && (t.attr == nil || t.attr.Name() == u.attr.Name())
}

func applyOp(doc map[string]any, op Operation) *Error {
	t := op.t
	if t.attr == nil { // remove of a whole extension
		delete(doc, t.urn)
		return nil
	}
	c := doc
	if t.urn != "" {
		c = asMap(doc[t.urn])
		if c == nil {
			c = map[string]any{}
		}
	}
	name := t.attr.Name()
	var next any
	var err *Error
	if t.attr.MultiValued() {
		next, err = applyMulti(asList(c[name]), op)
	} else {
		next, err = applySingle(c[name], op)
	}
	if err != nil {
		return err
	}
	put(c, name, next)
	if t.urn != "" {
		put(doc, t.urn, c)
	}
	return nil
}

// put sets m[k], deleting the key for values that mean "no value" so that cleared attributes
// and emptied objects and lists disappear from the document.
func put(m map[string]any, k string, v any) {
	if compare.Unassigned(v) {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// applySingle returns the new value of a singular attribute.
func applySingle(cur any, op Operation) (any, *Error) {
	t := op.t
	if t.sub != nil {
		m := cloneMap(cur)
		return m, setSub(m, *t.sub, op)
	}
	if op.Op == opRemove || op.value == nil {
		return nil, nil
	}
	next := deepCopy(op.value)
	if v, ok := next.(map[string]any); ok {
		if op.Op == opReplace && isRefLike(*t.attr) {
			next = compact(v)
		} else {
			// add, and replace on other complex attributes, merge: sub-attributes the value
			// leaves out stay unchanged (RFC 7644 §3.5.2.1, §3.5.2.3).
			m := cloneMap(cur)
			merge(m, v)
			next = m
		}
	}
	return next, guardImmutable(*t.attr, cur, next)
}

// applyMulti returns the new value of a multi-valued attribute.
func applyMulti(list []any, op Operation) (any, *Error) {
	t := op.t
	if t.filter != nil || t.sub != nil {
		return applyElements(list, op)
	}
	switch {
	case op.Op == opRemove && op.hasValue:
		return removeValues(*t.attr, list, op.value.([]any)), nil
	case op.Op == opRemove:
		return nil, nil
	case op.value == nil && op.Op == opAdd:
		return list, nil // adding nothing; clearing a list takes replace or remove
	case op.Op == opReplace:
		return deepCopy(op.value), nil
	}
	next := addValues(list, op.value.([]any))
	return next, guardImmutable(*t.attr, list, next)
}

// addValues appends to a copy of list the values it does not hold yet.
func addValues(list, vals []any) []any {
	next := slices.Clone(list)
	seen := elementsByKey(next, jsonKey)
	for _, v := range vals {
		k := jsonKey(v)
		if !slices.ContainsFunc(seen[k], func(e any) bool { return reflect.DeepEqual(e, v) }) {
			next = append(next, deepCopy(v))
			seen[k] = append(seen[k], v)
		}
	}
	return next
}

// Multi-valued attributes are compared element by element through an index of the elements by a
// key that equal elements share (and most others do not): a body of 1 MiB holds some 40,000
// values, and comparing each with each took minutes of a core (of the writer, for a group).

// elementsByKey files elems by key.
func elementsByKey(elems []any, key func(any) string) map[string][]any {
	m := make(map[string][]any, len(elems))
	for _, e := range elems {
		k := key(e)
		m[k] = append(m[k], e)
	}
	return m
}

// jsonKey is e's JSON: elements reflect.DeepEqual holds equal have the same.
func jsonKey(e any) string {
	b, err := json.Marshal(e)
	if err != nil {
		return ""
	}
	return string(b)
}

// valueKey is what sameElement compares of an element when the value removed has a "value":
// the string, lowered when the attribute ignores case, that compare.Values would compare;
// "" for the types it compares otherwise (numbers, booleans, instants), which share one key.
func valueKey(attr schema.CoreAttribute) func(any) string {
	complex := attr.AttributeType() == "complex"
	def := attr
	if complex {
		def, _ = attr.SubAttributes().ContainsAttribute("value")
	}
	byString := !slices.Contains([]string{"boolean", "integer", "decimal", "dateTime"}, def.AttributeType())
	return func(e any) string {
		if complex {
			e = asMap(e)["value"]
		}
		s, ok := e.(string)
		switch {
		case !ok || !byString:
			return ""
		case !def.CaseExact():
			return "s" + strings.ToLower(s)
		}
		return "s" + s
	}
}

// applyElements handles paths that select elements of a multi-valued attribute: attr[filter],
// attr[filter].sub and attr.sub (every element).
func applyElements(list []any, op Operation) (any, *Error) {
	t := op.t
	attr := *t.attr
	next := slices.Clone(list)
	var hit []int
	for i, e := range next {
		if t.filter == nil || matches(t.filter, attr, e) {
			hit = append(hit, i)
		}
	}
	clearing := op.Op == opRemove || op.value == nil
	switch {
	case clearing && t.sub == nil && op.Op == opAdd:
		return list, nil // adding nothing
	case clearing && t.sub == nil:
		return deleteIndices(next, hit), nil
	case len(hit) == 0 && !clearing:
		// Nothing matches: create the element the filter describes. Entra and Microsoft's
		// validator rely on this for `emails[type eq "work"].value` on a user without one.
		elem, ok := pinned(t)
		if !ok {
			return nil, errorf(noTarget, "the filter matches no value and does not describe one to create")
		}
		hit, next = []int{len(next)}, append(next, elem)
	}
	var drop []int
	for _, i := range hit {
		if attr.AttributeType() != "complex" {
			next[i] = deepCopy(op.value)
			continue
		}
		var m map[string]any
		switch {
		case t.sub != nil:
			m = cloneMap(next[i])
			if err := setSub(m, *t.sub, op); err != nil {
				return nil, err
			}
		case op.Op == opAdd:
			m = cloneMap(next[i])
			merge(m, op.value.(map[string]any))
		default:
			// replace swaps the element; the values the filter pins (type "work") stay, so the
			// element is still the one the filter selects.
			m, _ = pinned(t)
			merge(m, op.value.(map[string]any))
		}
		// An element this op left without its value ("" cleared emails[type eq "work"].value)
		// is dropped; one created through the filter may still be waiting for its value.
		if hollow(attr, m) && !hollow(attr, next[i]) {
			drop = append(drop, i)
		}
		next[i] = m
	}
	return deleteIndices(next, drop), nil
}

// pinned returns a new element holding the values an eq-conjunction filter requires; ok is
// false, and the element empty, when the filter is not one. Without a filter the element
// starts empty.
func pinned(t target) (elem map[string]any, ok bool) {
	if t.filter == nil {
		return map[string]any{}, true
	}
	if elem, ok = eqPairs(t.filter); ok {
		return elem, true
	}
	return map[string]any{}, false
}

// hollow reports whether a complex element has lost its identity: it is empty, or its
// attribute has a "value" sub-attribute and the element holds none.
func hollow(attr schema.CoreAttribute, elem any) bool {
	m, ok := elem.(map[string]any)
	if !ok {
		return false
	}
	if _, hasValue := attr.SubAttributes().ContainsAttribute("value"); hasValue {
		return compare.Unassigned(m["value"])
	}
	return len(m) == 0
}

// setSub writes op's value to sub-attribute sub of m, or deletes it for remove and clearing
// values.
func setSub(m map[string]any, sub schema.CoreAttribute, op Operation) *Error {
	if op.Op == opRemove || op.value == nil {
		delete(m, sub.Name())
		return nil
	}
	next := deepCopy(op.value)
	if err := guardImmutable(sub, m[sub.Name()], next); err != nil {
		return err
	}
	m[sub.Name()] = next
	return nil
}

// guardImmutable refuses to overwrite a set immutable value with a different one; Parse has
// already refused replace and remove on immutable targets.
func guardImmutable(def schema.CoreAttribute, cur, next any) *Error {
	if def.Mutability() == "immutable" && !compare.Unassigned(cur) && !reflect.DeepEqual(cur, next) {
		return errorf(mutability, "%s is immutable and already has a value", def.Name())
	}
	return nil
}

// removeValues drops the elements of list that equal one of vals: by the "value" sub-attribute
// for complex attributes that have one, as a whole otherwise.
func removeValues(attr schema.CoreAttribute, list, vals []any) []any {
	byValue, whole := []any{}, []any{} // the values compared by their "value", the others whole
	for _, v := range vals {
		if byWhole(attr, v) {
			whole = append(whole, v)
		} else {
			byValue = append(byValue, v)
		}
	}
	vkey := valueKey(attr)
	byValueIdx, wholeIdx := elementsByKey(byValue, vkey), elementsByKey(whole, jsonKey)
	same := func(e any) func(any) bool { return func(v any) bool { return sameElement(attr, e, v) } }
	return slices.DeleteFunc(slices.Clone(list), func(e any) bool {
		return len(byValue) > 0 && slices.ContainsFunc(byValueIdx[vkey(e)], same(e)) ||
			len(whole) > 0 && slices.ContainsFunc(wholeIdx[jsonKey(e)], same(e))
	})
}

// byWhole reports whether sameElement compares v with an element as a whole, not by "value".
func byWhole(attr schema.CoreAttribute, v any) bool {
	if attr.AttributeType() != "complex" {
		return false
	}
	_, ok := attr.SubAttributes().ContainsAttribute("value")
	return !ok || compare.Unassigned(asMap(v)["value"])
}

func sameElement(attr schema.CoreAttribute, e, v any) bool {
	def := attr
	if byWhole(attr, v) {
		return reflect.DeepEqual(e, v)
	}
	if attr.AttributeType() == "complex" {
		def, _ = attr.SubAttributes().ContainsAttribute("value")
		e, v = asMap(e)["value"], asMap(v)["value"]
	}
	eq, ok := compare.Values(def.AttributeType(), def.CaseExact(), filter.EQ, e, v)
	return ok && eq
}

func deleteIndices(list []any, idx []int) []any {
	gone := make([]bool, len(list))
	for _, i := range idx {
		gone[i] = true
	}
	out := list[:0:0]
	for i, e := range list {
		if !gone[i] {
			out = append(out, e)
		}
	}
	return out
}

// cloneMap returns a shallow copy of v if it is an object, or a new empty map.
func cloneMap(v any) map[string]any {
	if m := asMap(v); m != nil {
		return maps.Clone(m)
	}
	return map[string]any{}
}

// changedAttributes lists, of the attributes targets address (all of an extension's, for a
// whole extension), those whose values differ between before and after.
func changedAttributes(before, after map[string]any, targets []target, s Schema) []string {
	var changed []string
	diff := func(b, a map[string]any, attr schema.CoreAttribute, prefix string) {
		x, y := b[attr.Name()], a[attr.Name()]
		if !(compare.Unassigned(x) && compare.Unassigned(y)) && !reflect.DeepEqual(x, y) && !slices.Contains(changed, prefix+attr.Name()) {
			changed = append(changed, prefix+attr.Name())
		}
	}
	for _, t := range targets {
		switch {
		case t.urn == "":
			diff(before, after, *t.attr, "")
		case t.attr != nil:
			diff(asMap(before[t.urn]), asMap(after[t.urn]), *t.attr, t.urn+":")
		default:
			for _, ext := range s.Extensions {
				if ext.ID == t.urn {
					for _, attr := range ext.Attributes {
						diff(asMap(before[t.urn]), asMap(after[t.urn]), attr, t.urn+":")
					}
				}
			}
		}
	}
	slices.Sort(changed)
	return changed
}
