package schemas

// Handling says what anonymization does to an attribute of a User.
type Handling int

// Every attribute and sub-attribute of every User schema has one handling; the test beside this
// file fails when a schema gains one that is not listed here.
// A replacement is always valid for its attribute (RFC 7643 §2.3, §4.1.2): a value a client
// reads back from an anonymized user must pass the same checks as any other.
const (
	Keep        Handling = iota + 1 // not personal data: kept
	Randomize                       // personal data: replaced with random characters (random bytes in base64 for binary)
	RandomEmail                     // an email address: replaced with a random one in the reserved .invalid domain
	RandomPhone                     // a phone number: replaced with a random one under +999, a country code no country has
	Remove                          // personal data with no valid random form (a reference, a country code): removed
)

// userHandling is the one list anonymization follows, keyed by schema URN, then by attribute
// name or "attribute.subAttribute".
var userHandling = map[string]map[string]Handling{
	UserURN: {
		// id, and meta, which the server writes, identify the record, not the person.
		"id": Keep, "meta": Keep, "meta.resourceType": Keep, "meta.created": Keep, "meta.lastModified": Keep,
		"meta.location": Keep, "meta.version": Keep,
		"userName": Randomize,
		"name":     Randomize, "name.formatted": Randomize, "name.familyName": Randomize, "name.givenName": Randomize,
		"name.middleName": Randomize, "name.honorificPrefix": Randomize, "name.honorificSuffix": Randomize,
		// profileUrl is a reference: random characters are no URI, so it is removed.
		"displayName": Randomize, "nickName": Randomize, "profileUrl": Remove, "title": Randomize,
		"userType": Keep, "preferredLanguage": Keep, "locale": Keep, "timezone": Keep, "active": Keep,
		"password": Remove,
		"emails":   Randomize, "emails.value": RandomEmail, "emails.display": Randomize, "emails.type": Keep, "emails.primary": Keep,
		"phoneNumbers": Randomize, "phoneNumbers.value": RandomPhone, "phoneNumbers.display": Randomize,
		"phoneNumbers.type": Keep, "phoneNumbers.primary": Keep,
		"ims": Randomize, "ims.value": Randomize, "ims.display": Randomize, "ims.type": Keep, "ims.primary": Keep,
		"photos": Remove, "photos.value": Remove, "photos.display": Remove, "photos.type": Remove, "photos.primary": Remove,
		"addresses": Randomize, "addresses.formatted": Randomize, "addresses.streetAddress": Randomize,
		"addresses.locality": Randomize, "addresses.region": Randomize, "addresses.postalCode": Randomize,
		// country must be an ISO 3166-1 alpha-2 code; any real one would be a false statement.
		"addresses.country": Remove, "addresses.type": Keep, "addresses.primary": Keep,
		// groups is read-only; anonymization removes the user from every group.
		"groups": Keep, "groups.value": Keep, "groups.$ref": Keep, "groups.display": Keep, "groups.type": Keep,
		// Entitlements and roles describe what the organisation grants, not who the person is.
		"entitlements": Keep, "entitlements.value": Keep, "entitlements.display": Keep, "entitlements.type": Keep, "entitlements.primary": Keep,
		"roles": Keep, "roles.value": Keep, "roles.display": Keep, "roles.type": Keep, "roles.primary": Keep,
		"x509Certificates": Randomize, "x509Certificates.value": Randomize, "x509Certificates.display": Randomize,
		"x509Certificates.type": Keep, "x509Certificates.primary": Keep,
		// externalId is the identity provider's key for the person.
		"externalId": Remove,
	},
	EnterpriseURN: {
		"employeeNumber": Randomize, "costCenter": Keep, "organization": Keep, "division": Keep, "department": Keep,
		// A manager is a reference: random characters would point nowhere, so it is removed.
		"manager": Remove, "manager.value": Remove, "manager.$ref": Remove, "manager.displayName": Remove,
	},
	LifecycleURN: {
		"audited": Keep, "auditReasons": Keep, "lastInteractionAt": Keep, "campaignCount": Keep,
		"anonymized": Keep, "anonymizedAt": Keep, "scrubbedAt": Keep,
	},
}

// UserHandling returns how anonymization treats an attribute ("name") or sub-attribute
// ("name.givenName") of the schema urn; ok is false for an attribute nobody classified.
func UserHandling(urn, path string) (h Handling, ok bool) {
	h, ok = userHandling[urn][path]
	return h, ok
}
