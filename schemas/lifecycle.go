package schemas

import (
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// LifecycleURN names the extension through which the server shows a user's place in the audit
// record, and through which an identity provider can ask for anonymization.
const LifecycleURN = "urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User"

// Lifecycle is the lifecycle extension of User.
func Lifecycle() schema.Schema {
	readOnly := schema.AttributeMutabilityReadOnly()
	return schema.Schema{
		ID:          LifecycleURN,
		Name:        optional.NewString("User lifecycle"),
		Description: optional.NewString("Whether the user is part of the audit record (and so is deactivated rather than deleted), and whether the user was anonymized. The server states every attribute but anonymized, and the extension is always present: it cannot be removed."),
		Attributes: schema.Attributes{
			schema.SimpleCoreAttribute(schema.SimpleBooleanParams(schema.BooleanParams{
				Name: "audited", Mutability: readOnly,
				Description: optional.NewString("True once the user interacted with the platform or was assigned to a campaign; never false again. A DELETE of an audited user deactivates it instead."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
				Name: "auditReasons", Mutability: readOnly, MultiValued: true, CaseExact: true,
				CanonicalValues: []string{"interacted", "campaign", "anonymized"},
				Description:     optional.NewString("Why the user is audited."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{
				Name: "lastInteractionAt", Mutability: readOnly,
				Description: optional.NewString("When the user last set a password or logged in."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{
				Name: "campaignCount", Mutability: readOnly, Type: schema.AttributeTypeInteger(),
				Description: optional.NewString("How many distinct campaigns the user was ever assigned to."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleBooleanParams(schema.BooleanParams{
				Name:        "anonymized",
				Description: optional.NewString("Whether the user was anonymized. Written only to true (by POST, PUT or PATCH), which irreversibly anonymizes the user: personal data is replaced with random values, the user is deactivated and removed from every group. Once true it cannot become false or be removed (400 mutability); while false, setting it to false or removing it changes nothing."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{
				Name: "anonymizedAt", Mutability: readOnly,
				Description: optional.NewString("When the user was anonymized."),
			})),
			schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{
				Name: "scrubbedAt", Mutability: readOnly,
				Description: optional.NewString("When the data file's free pages, which could still hold the erased values, were overwritten after the anonymization. Absent while that is pending: the server completes it by itself as soon as the reads that began before the anonymization have ended."),
			})),
		},
	}
}
