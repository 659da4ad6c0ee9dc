package patch

import (
	"slices"
	"strings"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/filterparse"
)

// Schema describes the resource a PATCH is validated against and applied to.
type Schema struct {
	Core       schema.Schema   // e.g. schemas.User() or schemas.Group(), with the common attributes
	Extensions []schema.Schema // e.g. schema.ExtensionEnterpriseUser()
}

// schemasAttr is the common attribute "schemas" (RFC 7643 §3), which names a resource's schemas
// rather than being listed in one. The server states it, so to a PATCH it is read-only.
var schemasAttr = schema.SchemasAttributes().WithMutability(schema.AttributeMutabilityReadOnly())

// container returns the attributes a path's URN prefix selects and the document key holding
// them: "" for the core schema (whose attributes sit at the top level), the URN for extensions.
func (s Schema) container(uri string) (urn string, attrs schema.Attributes, ok bool) {
	if uri == "" || strings.EqualFold(uri, s.Core.ID) {
		return "", append(slices.Clone(s.Core.Attributes), schemasAttr), true
	}
	for _, ext := range s.Extensions {
		if strings.EqualFold(uri, ext.ID) {
			return ext.ID, ext.Attributes, true
		}
	}
	return "", nil, false
}

// target is a resolved PATCH path.
type target struct {
	urn    string                // extension holding attr; "" for core attributes
	attr   *schema.CoreAttribute // nil: the whole extension object urn
	filter filter.Expression     // value filter on a multi-valued attr, canonicalised; nil if none
	sub    *schema.CoreAttribute // sub-attribute of attr, nil if none
	desc   string                // the path for error details, without filter values
}

// isMembers reports whether t addresses a group's members, which are stored outside the
// document and reported as a MemberChange instead.
func (t target) isMembers() bool {
	return t.urn == "" && t.attr != nil && t.attr.Name() == "members"
}

// def returns the definition of the value the target addresses.
func (t target) def() schema.CoreAttribute {
	if t.sub != nil {
		return *t.sub
	}
	return *t.attr
}

// maxPathLen bounds a PATCH path, as the server bounds a query filter.
const maxPathLen = 1024

// resolve parses path and resolves it against s. known is false, with err, when the path names
// no attribute of the resource's schemas (an unknown URN, attribute or sub-attribute): a key of
// a value object that does so is ignored, as POST and PUT ignore unknown attributes.
func (s Schema) resolve(path string) (t target, known bool, err *Error) {
	for _, ext := range s.Extensions {
		if strings.EqualFold(path, ext.ID) {
			return target{urn: ext.ID, desc: ext.ID}, true, nil
		}
	}
	if t, ok := s.resolvePlain(path); ok {
		return t, true, nil
	}
	return s.resolveParsed(path)
}

// resolveParsed resolves any path through the path parser.
func (s Schema) resolveParsed(path string) (t target, known bool, err *Error) {
	if len(path) > maxPathLen {
		// The path parser's cost grows with the length; no real path comes near this.
		return target{}, true, errorf(invalidPath, "the path is longer than %d bytes", maxPathLen)
	}
	p, perr := filterparse.Path(path)
	if perr != nil {
		return target{}, true, errorf(invalidPath, "the path is not a valid SCIM attribute path")
	}
	t.desc = describePath(p)
	ap := p.AttributePath
	urn, attrs, ok := s.container(ap.URI())
	if !ok {
		return target{}, false, errorf(invalidPath, "%s: the URN prefix names no schema of this resource", t.desc)
	}
	attr, ok := attrs.ContainsAttribute(ap.AttributeName)
	if !ok {
		return target{}, false, errorf(invalidPath, "%s: unknown attribute %s", t.desc, safeName(ap.AttributeName))
	}
	t.urn, t.attr = urn, &attr

	subName := ap.SubAttributeName()
	if p.ValueExpression != nil {
		if subName != "" {
			return target{}, true, errorf(invalidPath, "%s: a filter cannot follow a sub-attribute", t.desc)
		}
		if !attr.MultiValued() {
			return target{}, true, errorf(invalidPath, "%s: a filter needs a multi-valued attribute", t.desc)
		}
		if t.filter, err = checkFilter(p.ValueExpression, attr); err != nil {
			return target{}, true, err.in(t.desc)
		}
		subName = p.SubAttributeName()
	}
	if subName != "" {
		sub, ok := attr.SubAttributes().ContainsAttribute(subName)
		if !ok {
			return target{}, false, errorf(invalidPath, "%s: %s has no sub-attribute %s", t.desc, attr.Name(), safeName(subName))
		}
		t.sub = &sub
	}
	return t, true, nil
}

// resolvePlain resolves, without the path parser, the paths nearly every request uses: an
// attribute or sub-attribute, with or without the URN of its schema, and no filter. The
// parser's grammar allocates at every character (half of a PATCH's CPU with URN paths); ok is
// false for anything else, and for names the schemas do not know, which the parser then
// resolves or refuses with its own reasons.
func (s Schema) resolvePlain(path string) (target, bool) {
	rest, urn, attrs := path, "", s.Core.Attributes
	if strings.IndexByte(path, ':') >= 0 {
		rest = ""
		if r, ok := afterURN(path, s.Core.ID); ok {
			rest = r
		}
		for _, ext := range s.Extensions {
			if r, ok := afterURN(path, ext.ID); ok {
				rest, urn, attrs = r, ext.ID, ext.Attributes
			}
		}
	}
	name, subName, hasSub := strings.Cut(rest, ".")
	if !isAttrName(name) || (hasSub && !isAttrName(subName)) {
		return target{}, false
	}
	attr, ok := attrs.ContainsAttribute(name)
	if !ok && urn == "" && strings.EqualFold(name, schemasAttr.Name()) {
		attr, ok = schemasAttr, true // as container adds it to the core attributes
	}
	if !ok {
		return target{}, false
	}
	t := target{urn: urn, attr: &attr, desc: path}
	if hasSub {
		sub, ok := attr.SubAttributes().ContainsAttribute(subName)
		if !ok {
			return target{}, false
		}
		t.sub = &sub
	}
	return t, true
}

// afterURN returns what follows "id:" at the start of path, in any letter case.
func afterURN(path, id string) (string, bool) {
	if len(path) > len(id)+1 && path[len(id)] == ':' && strings.EqualFold(path[:len(id)], id) {
		return path[len(id)+1:], true
	}
	return "", false
}

// readOnly reports whether the target is an attribute or sub-attribute the server states (id,
// meta, schemas, groups, and any the schema marks readOnly).
func (t target) readOnly() bool {
	return t.attr != nil && (t.attr.Mutability() == "readOnly" || (t.sub != nil && t.sub.Mutability() == "readOnly"))
}

// checkMutability rejects ops that the schema forbids on the target (RFC 7643 §7): any op on a
// read-only attribute, replace and remove on an immutable one. Adding to an immutable attribute
// is allowed here; Apply refuses it when a different value is already set.
func checkMutability(op string, t target) *Error {
	if t.readOnly() {
		return errorf(mutability, "%s is read-only: the server sets it", t.desc)
	}
	for _, a := range []*schema.CoreAttribute{t.attr, t.sub} {
		if a != nil && a.Mutability() == "immutable" && op != opAdd {
			return errorf(mutability, "%s is immutable and cannot be replaced or removed", a.Name())
		}
	}
	return nil
}

// checkRemovable refuses to remove the whole extension urn when it holds read-only attributes:
// the server states those, so the extension stays whatever the client asks.
func (s Schema) checkRemovable(urn string) *Error {
	_, attrs, _ := s.container(urn)
	for _, a := range attrs {
		if a.Mutability() == "readOnly" {
			return errorf(mutability, "the extension holds read-only attributes, such as %s, and cannot be removed", a.Name())
		}
	}
	return nil
}
