// Package patch parses SCIM PATCH requests (RFC 7644 §3.5.2) and applies them to resource
// documents. Beyond the RFC it accepts what Okta and Microsoft Entra ID really send: capitalised
// ops, booleans as "True"/"False", path-less values with dotted and URN keys, the manager as a
// bare id, upserts through `emails[type eq "work"].value`, and Entra's legacy member removal.
// It does no I/O.
package patch

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/scimserver/scimserver/scimserver/compare"
	"github.com/scimserver/scimserver/strictjson"
)

const (
	patchOpURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

	// maxOperations bounds the work one request can cause.
	maxOperations = 1000

	opAdd     = "add"
	opReplace = "replace"
	opRemove  = "remove"
)

// Operation is one validated PATCH operation; only Parse creates them. A path-less add or
// replace becomes one Operation per key of its value object, all with the same Index.
type Operation struct {
	Index int    // position in the request's Operations array
	Op    string // "add", "replace" or "remove"
	Path  string // the path as sent, or the value key of a path-less operation

	t        target
	value    any      // normalised value: nil clears the target of an add or replace
	hasValue bool     // remove only: value lists the elements to remove
	members  []Member // the value, for operations on a group's members
	where    place    // names the operation in error details
}

// String names the operation and its path without any value, so that logging an Operation
// does not log personal data.
func (o Operation) String() string { return o.where.String() }

// Parse decodes and validates a PATCH body against s and normalises real-client quirks.
// Errors are *Error.
func Parse(body []byte, s Schema) ([]Operation, error) {
	ops, err := parse(body, s)
	if err != nil {
		return nil, err
	}
	return ops, nil
}

func parse(body []byte, s Schema) ([]Operation, *Error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	top, ok := objectFields(body)
	if !ok {
		return nil, errorf(invalidSyntax, "the request body must be a JSON object")
	}
	raw, found, err := lookup(top, "schemas")
	if err != nil {
		return nil, err
	}
	schemas, _ := arrayElements(raw)
	if urn, _ := stringOf(first(schemas)); !found || len(schemas) != 1 || urn != patchOpURN {
		return nil, errorf(invalidValue, "schemas must be [%q]", patchOpURN)
	}
	raw, found, err = lookup(top, "Operations")
	if err != nil {
		return nil, err
	}
	list, _ := arrayElements(raw)
	if !found || len(list) == 0 {
		return nil, errorf(invalidValue, "Operations must be a non-empty array")
	}
	if len(list) > maxOperations {
		return nil, errorf(invalidValue, "a request may hold at most %d operations", maxOperations)
	}
	p := parser{s: s}
	for i, raw := range list {
		if err := p.operation(i, raw); err != nil {
			return nil, err
		}
	}
	return p.ops, nil
}

type parser struct {
	s   Schema
	ops []Operation
}

func (p *parser) operation(i int, raw json.RawMessage) *Error {
	fields, ok := objectFields(raw)
	if !ok {
		return errorf(invalidSyntax, "Operations[%d] must be a JSON object", i)
	}
	at := place{i: i}
	opRaw, _, err := lookup(fields, "op")
	if err != nil {
		return err.in(at.String())
	}
	name, ok := stringOf(opRaw)
	if !ok {
		return errorf(invalidValue, "%s: op must be a string: add, replace or remove", at)
	}
	op := strings.ToLower(name)
	if op != opAdd && op != opReplace && op != opRemove {
		return errorf(invalidValue, "%s: op is not add, replace or remove", at)
	}
	at = place{i: i, op: op}
	pathRaw, hasPath, err := lookup(fields, "path")
	if err != nil {
		return err.in(at.String())
	}
	path, ok := stringOf(pathRaw) // null counts as absent
	if hasPath && !ok {
		return errorf(invalidPath, "%s: path must be a string", at)
	}
	valueRaw, hasValue, err := lookup(fields, "value")
	if err != nil {
		return err.in(at.String())
	}
	switch {
	case path != "":
		return p.pathOp(i, op, path, valueRaw, hasValue, false)
	case op == opRemove:
		return errorf(noTarget, "%s: remove needs a path", at)
	case !hasValue:
		return errorf(invalidValue, "%s: needs a path or a value", at)
	}
	return p.expand(i, op, "", valueRaw)
}

// expand applies each key of a path-less value object as the path of its own operation (RFC
// 7644 §3.5.2.1 and .3). prefix is an extension URN plus ":" when the object is an extension's.
func (p *parser) expand(i int, op, prefix string, raw json.RawMessage) *Error {
	fields, ok := objectFields(raw)
	if !ok {
		return errorf(invalidValue, "%s: the value must be an object", place{i: i, op: op, desc: strings.TrimSuffix(prefix, ":")})
	}
	for _, f := range fields {
		if err := p.pathOp(i, op, prefix+f.key, f.raw, true, true); err != nil {
			return err
		}
	}
	return nil
}

// pathOp adds the operation on path. fromValue marks a key of a value object rather than an
// operation's path: such a key is read as a POST or PUT body's attribute is, so one that names
// no attribute, or a read-only one (clients echo id, meta and groups back), is ignored. A path
// that does either is refused (RFC 7644 §3.5.2).
func (p *parser) pathOp(i int, op, path string, raw json.RawMessage, hasValue, fromValue bool) *Error {
	t, known, err := p.s.resolve(path)
	switch {
	case err != nil && fromValue && !known:
		return nil
	case err != nil:
		return err.in(place{i: i, op: op, fromValue: fromValue}.String())
	case t.readOnly() && fromValue:
		return nil
	}
	o := Operation{Index: i, Op: op, Path: path, t: t, where: place{i: i, op: op, desc: t.desc, fromValue: fromValue}}
	if t.attr == nil { // a bare extension URN
		if op == opRemove {
			if err := p.s.checkRemovable(t.urn); err != nil {
				return err.in(o.where.String())
			}
			p.ops = append(p.ops, o)
			return nil
		}
		if !hasValue {
			return errorf(invalidValue, "%s: needs a value", o.where)
		}
		return p.expand(i, op, t.urn+":", raw)
	}
	if t.isMembers() && (t.sub != nil || (t.filter != nil && op != opRemove)) {
		return errorf(invalidPath, "%s: members can only be added, replaced or removed whole, or removed by filter", o.where)
	}
	if err := checkMutability(op, t); err != nil {
		return err.in(o.where.String())
	}
	if err := o.setValue(decode(raw), hasValue); err != nil {
		return err.in(o.where.String())
	}
	p.ops = append(p.ops, o)
	return nil
}

// place names an operation for error details, once one needs it (building the name for every
// operation cost more than a PATCH's schema checks): op is "" before the operation's op is
// known; desc is its path without filter values, "" when the path could not be resolved.
type place struct {
	i         int
	op, desc  string
	fromValue bool
}

func (w place) String() string {
	if w.op == "" {
		return fmt.Sprintf("Operations[%d]", w.i)
	}
	s := fmt.Sprintf("Operations[%d] (%s", w.i, w.op)
	if w.fromValue {
		s += ", value key"
	}
	if w.desc != "" {
		s += " " + w.desc
	}
	return s + ")"
}

// setValue validates v, the operation's value, against the target and stores it normalised.
func (o *Operation) setValue(v any, present bool) *Error {
	t := o.t
	var err *Error
	if o.Op == opRemove {
		if t.required() {
			return errorf(invalidValue, "%s is required and cannot be removed", t.def().Name())
		}
		// RFC 7644 remove takes no value. Entra's legacy member removal sends the members to
		// remove as one, so a value narrows a whole-attribute removal to those elements.
		if v == nil || t.filter != nil || t.sub != nil || !t.attr.MultiValued() {
			return nil
		}
		o.hasValue = true
		if t.isMembers() {
			o.members, err = parseMembers(v)
		} else {
			o.value, err = normalizeList(*t.attr, v)
		}
		return err
	}
	if !present {
		return errorf(invalidValue, "%s needs a value", o.Op)
	}
	switch {
	case t.isMembers():
		o.members, err = parseMembers(v)
		return err
	case t.filter != nil && t.sub == nil:
		o.value, err = normalizeOne(*t.attr, v) // one element
		if m, ok := o.value.(map[string]any); ok && compare.Unassigned(compact(m)) {
			o.value = nil // an element of nothing but cleared sub-attributes clears the element
		}
	default:
		o.value, err = normalizeValue(t.def(), v)
	}
	if err == nil && o.value == nil && t.required() {
		return errorf(invalidValue, "%s is required and cannot be cleared", t.def().Name())
	}
	return err
}

// required reports whether the target is a required attribute or sub-attribute as a whole.
func (t target) required() bool {
	if t.sub != nil {
		return t.sub.Required()
	}
	return t.filter == nil && t.attr.Required()
}

// checkJSON rejects bodies that encoding/json would accept but silently alter: invalid UTF-8,
// duplicate object keys, unbounded nesting.
func checkJSON(body []byte) *Error {
	if err := strictjson.Check(body); err != nil {
		return errorf(invalidSyntax, "%s", err.Error())
	}
	return nil
}

// lookup finds a field by case-insensitive name: clients capitalise keys ("Operations").
func lookup(fields []field, name string) (raw json.RawMessage, found bool, err *Error) {
	for _, f := range fields {
		if strings.EqualFold(f.key, name) {
			if found {
				return nil, false, errorf(invalidSyntax, "%q is given twice (the keys differ only in case)", name)
			}
			raw, found = f.raw, true
		}
	}
	return raw, found, nil
}

// Passwords returns the new password values that ops set (add or replace of "password"), so a
// caller can hash them before its transaction rather than inside it.
func Passwords(ops []Operation) []string {
	var out []string
	for _, o := range ops {
		if o.t.attr != nil && o.t.urn == "" && o.t.attr.Name() == "password" && o.Op != opRemove {
			if s, ok := o.value.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
