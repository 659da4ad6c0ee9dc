// Package schemas holds the SCIM schemas the server speaks, as data: the core User and Group,
// the EnterpriseUser extension, and the URNs that name them.
package schemas

import (
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Schema and message URNs (RFC 7643, RFC 7644).
const (
	UserURN       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	ListURN       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	ErrorURN      = "urn:ietf:params:scim:api:messages:2.0:Error"
	PatchOpURN    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SearchURN     = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	SPConfigURN   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// User is the core User schema of RFC 7643 §4.1, with the common attributes.
func User() schema.Schema { return withCommon(schema.CoreUserSchema()) }

// EnterpriseUser is the EnterpriseUser extension of RFC 7643 §4.3.
func EnterpriseUser() schema.Schema { return schema.ExtensionEnterpriseUser() }

// Group is the core Group schema of RFC 7643 §4.2, with the common attributes and displayName
// unique per tenant: Entra ID matches groups on it, so the server enforces it and says so.
func Group() schema.Schema {
	g := schema.CoreGroupSchema()
	attrs := make([]schema.CoreAttribute, 0, len(g.Attributes))
	for _, a := range g.Attributes {
		if a.Name() == "displayName" {
			a = schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Description: optional.NewString("A human-readable name for the Group, unique within the tenant (compared case-insensitively). REQUIRED."),
				Name:        "displayName",
				Required:    true,
				Uniqueness:  schema.AttributeUniquenessServer(),
			}))
		}
		attrs = append(attrs, a)
	}
	g.Attributes = attrs
	return withCommon(g)
}

// withCommon lists the common attributes id, externalId and meta (RFC 7643 §3.1) in a core
// schema, as §3.1 allows, so that /Schemas describes every attribute a resource carries and the
// server reads their characteristics (id and meta are read-only) from the same place.
// "schemas" stays unlisted: it names the schemas rather than being part of one.
func withCommon(s schema.Schema) schema.Schema {
	attrs := schema.Attributes{}
	for _, a := range schema.CommonAttributes() {
		switch a.Name() {
		case "id", "meta":
			attrs = append(attrs, a)
		case "externalId":
			attrs = append(attrs, externalID())
		}
	}
	s.Attributes = append(attrs, s.Attributes...)
	return s
}

// externalID is the common attribute externalId: the identity provider's own key for the
// resource, stored and matched exactly as sent.
func externalID() schema.CoreAttribute {
	return schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
		CaseExact:   true,
		Description: optional.NewString("An identifier for the resource as defined by the provisioning client (RFC 7643 §3.1). Compared case-exactly; not required to be unique."),
		Mutability:  schema.AttributeMutabilityReadWrite(),
		Name:        "externalId",
		Returned:    schema.AttributeReturnedDefault(),
		Uniqueness:  schema.AttributeUniquenessNone(),
	}))
}
