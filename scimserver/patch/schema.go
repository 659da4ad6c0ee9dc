package patch

import (
	"strings"

	"github.com/elimity-com/scim/schema"
	filter "github.com/scim2/filter-parser/v2"
)

// Schema describes the resource a PATCH is validated against and applied to.
type Schema struct {
	Core       schema.Schema   // e.g. schema.CoreUserSchema() or schema.CoreGroupSchema()
	Extensions []schema.Schema // e.g. schema.ExtensionEnterpriseUser()
}

// externalIDAttr is the common attribute "externalId" (RFC 7643 §3.1), which elimity's core
// schemas leave out but every resource carries in its document.
var externalIDAttr = schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
	CaseExact: true,
	Name:      "externalId",
}))

// isEchoedReadOnly reports whether name is a server-managed attribute that clients echo back in
// PATCH values (Okta's rename sends "id"); operations on these are dropped, not rejected.
func isEchoedReadOnly(name string) bool {
	for _, n := range []string{"id", "meta", "schemas", "groups"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// coreAttributes returns the core schema's attributes plus externalId.
func (s Schema) coreAttributes() schema.Attributes {
	attrs := append(schema.Attributes{}, s.Core.Attributes...)
	if _, ok := attrs.ContainsAttribute(externalIDAttr.Name()); !ok {
		attrs = append(attrs, externalIDAttr)
	}
	return attrs
}

// container returns the attributes a path's URN prefix selects and the document key holding
// them: "" for the core schema (whose attributes sit at the top level), the URN for extensions.
func (s Schema) container(uri string) (urn string, attrs schema.Attributes, ok bool) {
	if uri == "" || strings.EqualFold(uri, s.Core.ID) {
		return "", s.coreAttributes(), true
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

// resolve parses path and resolves it against s. ignore is true for read-only attributes
// (id, meta, schemas, groups, and any the schema marks readOnly), whose operations are dropped.
func (s Schema) resolve(path string) (t target, ignore bool, err *Error) {
	for _, ext := range s.Extensions {
		if strings.EqualFold(path, ext.ID) {
			return target{urn: ext.ID, desc: ext.ID}, false, nil
		}
	}
	if len(path) > maxPathLen {
		// The path parser's cost grows with the length; no real path comes near this.
		return target{}, false, errorf(invalidPath, "the path is longer than %d bytes", maxPathLen)
	}
	p, perr := filter.ParsePathNumber([]byte(path))
	if perr != nil {
		return target{}, false, errorf(invalidPath, "the path is not a valid SCIM attribute path")
	}
	t.desc = describePath(p)
	ap := p.AttributePath
	urn, attrs, ok := s.container(ap.URI())
	if !ok {
		return target{}, false, errorf(invalidPath, "%s: the URN prefix names no schema of this resource", t.desc)
	}
	if urn == "" && isEchoedReadOnly(ap.AttributeName) {
		return target{}, true, nil
	}
	attr, ok := attrs.ContainsAttribute(ap.AttributeName)
	if !ok {
		return target{}, false, errorf(invalidPath, "%s: unknown attribute %s", t.desc, safeName(ap.AttributeName))
	}
	t.urn, t.attr = urn, &attr

	subName := ap.SubAttributeName()
	if p.ValueExpression != nil {
		if subName != "" {
			return target{}, false, errorf(invalidPath, "%s: a filter cannot follow a sub-attribute", t.desc)
		}
		if !attr.MultiValued() {
			return target{}, false, errorf(invalidPath, "%s: a filter needs a multi-valued attribute", t.desc)
		}
		if t.filter, err = checkFilter(p.ValueExpression, attr); err != nil {
			return target{}, false, err.in(t.desc)
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
	// Read-only attributes are the server's to state (RFC 7643 §7): a client's write to one,
	// like the read-only values clients echo back, is ignored rather than refused.
	if attr.Mutability() == "readOnly" || (t.sub != nil && t.sub.Mutability() == "readOnly") {
		return target{}, true, nil
	}
	return t, false, nil
}

// checkMutability rejects ops that the schema forbids on the target (RFC 7643 §7). Adding to an
// immutable attribute is allowed here; Apply refuses it when a different value is already set.
func checkMutability(op string, t target) *Error {
	for _, a := range []*schema.CoreAttribute{t.attr, t.sub} {
		if a == nil {
			continue
		}
		switch a.Mutability() {
		case "immutable":
			if op != opAdd {
				return errorf(mutability, "%s is immutable and cannot be replaced or removed", a.Name())
			}
		}
	}
	return nil
}
