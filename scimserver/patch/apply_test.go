package patch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/elimity-com/scim/schema"
)

// baseUser is the user most cases start from: an Okta/Entra-created account with a work email.
const baseUser = `{"userName":"test.user@okta.local","externalId":"00ujl29u0le5T6Aj10h7",
 "name":{"givenName":"Test","familyName":"User"},"displayName":"Test User","active":true,
 "emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}]}`

// minimalUser has no optional attributes (the Microsoft validator's starting point).
const minimalUser = `{"userName":"min@example.com","active":true}`

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		schema  Schema // userSchema() when zero
		doc     string
		body    string
		want    string
		changed []string
	}{
		// Entra legacy (default) shapes, idp-behaviour.md §2.4.
		{
			name: "entra legacy composite update",
			doc:  baseUser,
			body: body(
				`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"}`,
				`{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}`,
				`{"op":"Replace","path":"addresses[type eq \"work\"].formatted","value":"18/2111"}`,
				`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Retail"}`,
				`{"op":"Replace","path":"externalId","value":"Eqpj"}`,
				`{"op":"Add","path":"nickName","value":"Babs"}`),
			want: `{"userName":"test.user@okta.local","externalId":"Eqpj",
			 "name":{"givenName":"Test","familyName":"updatedFamilyName"},"displayName":"Test User","active":true,
			 "emails":[{"primary":true,"value":"updatedEmail@microsoft.com","type":"work"}],
			 "addresses":[{"type":"work","formatted":"18/2111"}],"nickName":"Babs",
			 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Retail"}}`,
			changed: []string{"addresses", "emails", "externalId", "name", "nickName", enterpriseURN + ":department"},
		},
		{
			name:    "entra legacy disable with string False",
			doc:     baseUser,
			body:    body(`{"op":"Replace","path":"active","value":"False"}`),
			want:    replaceJSON(baseUser, `"active":true`, `"active":false`),
			changed: []string{"active"},
		},
		{
			name:    "entra enable with string TRUE in any case",
			doc:     replaceJSON(baseUser, `"active":true`, `"active":false`),
			body:    body(`{"op":"Replace","path":"active","value":"tRUE"}`),
			want:    baseUser,
			changed: []string{"active"},
		},
		{
			name:    "entra flag disable with boolean",
			doc:     baseUser,
			body:    body(`{"op":"replace","path":"active","value":false}`),
			want:    replaceJSON(baseUser, `"active":true`, `"active":false`),
			changed: []string{"active"},
		},
		{
			name: "entra flag path-less value with dotted and URN keys",
			doc:  baseUser,
			body: `{"Operations":[
			 {"op":"replace","path":"emails[type eq \"work\"].value","value":"TestMhvaes@test.microsoft.com"},
			 {"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua",
			   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}],
			 "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`,
			want: `{"userName":"test.user@okta.local","externalId":"00ujl29u0le5T6Aj10h7",
			 "name":{"givenName":"Kkom","familyName":"Unua"},"displayName":"Bjfe","active":true,
			 "emails":[{"primary":true,"value":"TestMhvaes@test.microsoft.com","type":"work"}],
			 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"Aklq"}}`,
			changed: []string{"displayName", "emails", "name", enterpriseURN + ":employeeNumber"},
		},
		{
			name:    "operations key in lower case and op keys capitalised",
			doc:     baseUser,
			body:    `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"operations":[{"Op":"Add","Path":"nickName","Value":"Babs"}]}`,
			want:    replaceJSON(baseUser, `"active":true`, `"active":true,"nickName":"Babs"`),
			changed: []string{"nickName"},
		},
		{
			name:    "string booleans inside a path-less value map",
			doc:     baseUser,
			body:    body(`{"op":"Replace","value":{"active":"False"}}`),
			want:    replaceJSON(baseUser, `"active":true`, `"active":false`),
			changed: []string{"active"},
		},
		{
			name:    "string booleans inside complex values",
			doc:     minimalUser,
			body:    body(`{"op":"Add","path":"emails","value":[{"value":"a@example.com","type":"work","primary":"True"}]}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"value":"a@example.com","type":"work","primary":true}]}`,
			changed: []string{"emails"},
		},
		// Okta shapes, idp-behaviour.md §1.7 and §1.10.
		{
			name:    "okta deactivate with path-less value",
			doc:     baseUser,
			body:    body(`{"op":"replace","value":{"active":false}}`),
			want:    replaceJSON(baseUser, `"active":true`, `"active":false`),
			changed: []string{"active"},
		},
		{
			name:    "okta reactivate",
			doc:     replaceJSON(baseUser, `"active":true`, `"active":false`),
			body:    body(`{"op":"replace","value":{"active":true}}`),
			want:    baseUser,
			changed: []string{"active"},
		},
		{
			name:    "okta path-less value echoing id, meta, schemas and groups",
			doc:     baseUser,
			body:    body(`{"op":"replace","value":{"id":"abf4","meta":{"resourceType":"User"},"schemas":["x"],"groups":[],"displayName":"Renamed"}}`),
			want:    replaceJSON(baseUser, `"displayName":"Test User"`, `"displayName":"Renamed"`),
			changed: []string{"displayName"},
		},
		{
			name: "value keys naming read-only attributes are ignored",
			doc:  baseUser,
			body: body(`{"op":"replace","value":{"id":"x","meta":{"lastModified":"2020-01-01T00:00:00Z"},"groups":[],"schemas":["x"]}}`,
				`{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User:audited":true}}`,
				`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User","value":{"campaignCount":3,"anonymizedAt":"2020-01-01T00:00:00Z"}}`),
			want:    baseUser,
			changed: nil,
		},
		{
			name: "read-only sub-attributes and attributes in values are ignored",
			doc:  baseUser,
			body: body(`{"op":"add","value":{"urn:example:params:scim:schemas:extension:test:2.0:User:audit":"SECRET"}}`,
				`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m2","displayName":"SECRET"}}`),
			schema:  testSchema(),
			want:    replaceJSON(baseUser, `"active":true`, `"active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m2"}}`),
			changed: []string{enterpriseURN + ":manager"},
		},
		// Unknown names inside values are ignored, as POST and PUT ignore them in a body.
		{
			name: "unknown keys of a path-less value are ignored",
			doc:  minimalUser,
			body: body(`{"op":"replace","value":{"nickName":"N","shoeSize":"42","name.shoeSize":"1","urn:example:unknown:2.0:User:x":"y",
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","shoeSize":"42"}}}`),
			want:    `{"userName":"min@example.com","active":true,"nickName":"N","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D"}}`,
			changed: []string{"nickName", enterpriseURN + ":department"},
		},
		{
			name:    "schemas inside the value of an extension path is ignored",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"schemas":["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"department":"X"}}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"X"}}`,
			changed: []string{enterpriseURN + ":department"},
		},
		{
			name: "unknown sub-attributes of complex values are ignored",
			doc:  minimalUser,
			body: body(`{"op":"add","path":"emails","value":[{"value":"a@x","label":"x"}]}`, `{"op":"add","path":"name","value":{"givenName":"G","shoeSize":42}}`,
				`{"op":"replace","path":"emails[value eq \"a@x\"]","value":{"value":"b@x","type":"work","label":"y"}}`),
			want:    `{"userName":"min@example.com","active":true,"name":{"givenName":"G"},"emails":[{"value":"b@x","type":"work"}]}`,
			changed: []string{"emails", "name"},
		},
		// Manager, idp-behaviour.md §0.7 and §2.4.
		{
			name:    "entra manager add as bare id",
			doc:     minimalUser,
			body:    body(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"mgr-1"}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1"}}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager replace with a new id drops the old $ref",
			doc:     `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1","$ref":"../Users/mgr-1"},"department":"X"}}`,
			body:    body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"mgr-2"}`),
			want:    `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-2"},"department":"X"}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager replace with empty string removes it and the empty extension",
			doc:     `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1"}}}`,
			body:    body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":""}`),
			want:    `{"userName":"u"}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager replace with null removes it",
			doc:     `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1"},"division":"D"}}`,
			body:    body(`{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":null}`),
			want:    `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"division":"D"}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager object: displayName is read-only and dropped",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"mgr-1","displayName":"Boss","$ref":"https://x/Users/mgr-1"}}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1","$ref":"https://x/Users/mgr-1"}}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "entra legacy manager add wrapped in an array",
			doc:     minimalUser,
			body:    body(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":[{"$ref":null,"value":"mgr-1"}]}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-1"}}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager.value path",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"mgr-3"}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-3"}}}`,
			changed: []string{enterpriseURN + ":manager"},
		},
		{
			name:    "manager as a string in a path-less value under the extension URN",
			doc:     minimalUser,
			body:    body(`{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"mgr-4","costCenter":"CC"}}}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"mgr-4"},"costCenter":"CC"}}`,
			changed: []string{enterpriseURN + ":costCenter", enterpriseURN + ":manager"},
		},
		{
			name:    "a value filter joining a negation to a comparison (RFC 7644 valFilter)",
			doc:     `{"userName":"u","emails":[{"value":"w@work.example","type":"work"},{"value":"h@home.example","type":"home"},{"value":"o@other.example","type":"other"}]}`,
			body:    body(`{"op":"remove","path":"emails[not (type eq \"work\") and value ew \"home.example\"]"}`),
			want:    `{"userName":"u","emails":[{"value":"w@work.example","type":"work"},{"value":"o@other.example","type":"other"}]}`,
			changed: []string{"emails"},
		},
		// Filter upserts, idp-behaviour.md §0.8.
		{
			name:    "entra replace work email value on a user without one creates it",
			doc:     minimalUser,
			body:    body(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"w@example.com"}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"type":"work","value":"w@example.com"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "validator add home email value next to a work email",
			doc:     baseUser,
			body:    body(`{"op":"add","path":"emails[type eq \"home\"].value","value":"h@example.com"}`),
			want:    replaceJSON(baseUser, `"type":"work"}]`, `"type":"work"},{"type":"home","value":"h@example.com"}]`),
			changed: []string{"emails"},
		},
		{
			name:    "validator add then replace sub-attributes of a created element",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"emails[type eq \"other\"].display","value":"Other"}`, `{"op":"replace","path":"emails[type eq \"other\"].value","value":"o@example.com"}`, `{"op":"replace","path":"emails[type eq \"other\"].primary","value":"True"}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"type":"other","display":"Other","value":"o@example.com","primary":true}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "upsert through an eq conjunction carries every pinned value",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"phoneNumbers[type eq \"work\" and primary eq true].value","value":"+1 555"}`),
			want:    `{"userName":"min@example.com","active":true,"phoneNumbers":[{"type":"work","primary":true,"value":"+1 555"}]}`,
			changed: []string{"phoneNumbers"},
		},
		{
			name:    "upsert of a whole element through a filter",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"]","value":{"value":"w@example.com","primary":true}}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"type":"work","value":"w@example.com","primary":true}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "entra filter with string True matches a boolean",
			doc:     `{"userName":"u","roles":[{"primary":true,"value":"Admin"},{"value":"User"}]}`,
			body:    body(`{"op":"replace","path":"roles[primary eq \"True\"].value","value":"Owner"}`),
			want:    `{"userName":"u","roles":[{"primary":true,"value":"Owner"},{"value":"User"}]}`,
			changed: []string{"roles"},
		},
		{
			name:    "replace through a filter updates every matching element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"},{"type":"home","value":"b@x"},{"type":"WORK","value":"c@x"}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"].display","value":"Work"}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@x","display":"Work"},{"type":"home","value":"b@x"},{"type":"WORK","value":"c@x","display":"Work"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "replace of a whole element keeps the pinned type",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x","primary":true},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"]","value":{"value":"new@x"}}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"new@x"},{"type":"home","value":"b@x"}]}`,
			changed: []string{"emails"},
		},
		{
			// Regression: replace through a filter that pins no values once wrote into a nil map.
			name:    "replace through a filter that is no eq conjunction swaps the element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x","primary":true},{"type":"home","value":"b@y"}]}`,
			body:    body(`{"op":"replace","path":"emails[value co \"@x\"]","value":{"value":"c@x"}}`),
			want:    `{"userName":"u","emails":[{"value":"c@x"},{"type":"home","value":"b@y"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "add through a filter merges into the matching element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"}]}`,
			body:    body(`{"op":"add","path":"emails[value eq \"A@X\"]","value":{"primary":true}}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@x","primary":true}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "sub-attribute path without a filter sets every element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"replace","path":"emails.display","value":"E"}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@x","display":"E"},{"type":"home","value":"b@x","display":"E"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "sub-attribute path without a filter creates the first element",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"emails.value","value":"a@x"}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"value":"a@x"}]}`,
			changed: []string{"emails"},
		},
		// Null updates, idp-behaviour.md §2.9 SCIM_Null_Update_Test.
		{
			name:    "entra clears the work email value with empty string and drops the element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x","primary":true},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"].value","value":""}`),
			want:    `{"userName":"u","emails":[{"type":"home","value":"b@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "null clears the only email and the attribute disappears",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"].value","value":null}`),
			want:    `{"userName":"u"}`,
			changed: []string{"emails"},
		},
		{
			name:    "clearing a sub-attribute that does not select the value keeps the element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x","primary":true}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"].primary","value":null}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "clearing through a filter that matches nothing changes nothing",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"].value","value":""}`),
			want:    minimalUser,
			changed: nil,
		},
		{
			name: "validator null update with empty strings",
			doc:  baseUser + ``,
			body: body(`{"op":"replace","path":"displayName","value":""}`, `{"op":"replace","path":"name.givenName","value":""}`,
				`{"op":"replace","path":"externalId","value":""}`),
			want: `{"userName":"test.user@okta.local","name":{"familyName":"User"},"active":true,
			 "emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}]}`,
			changed: []string{"displayName", "externalId", "name"},
		},
		{
			name:    "validator null update with nulls empties name entirely",
			doc:     baseUser,
			body:    body(`{"op":"replace","path":"name.givenName","value":null}`, `{"op":"replace","path":"name.familyName","value":null}`, `{"op":"replace","path":"active","value":null}`),
			want:    `{"userName":"test.user@okta.local","externalId":"00ujl29u0le5T6Aj10h7","displayName":"Test User","emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}]}`,
			changed: []string{"active", "name"},
		},
		{
			name:    "validator non-verbose null update packs paths into a value map",
			doc:     baseUser,
			body:    body(`{"op":"replace","value":{"displayName":"","emails[type eq \"work\"].value":"","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":null}}`),
			want:    `{"userName":"test.user@okta.local","externalId":"00ujl29u0le5T6Aj10h7","name":{"givenName":"Test","familyName":"User"},"active":true}`,
			changed: []string{"displayName", "emails"},
		},
		{
			name:    "replace a multi-valued attribute with null or [] clears it",
			doc:     `{"userName":"u","emails":[{"value":"a@x"}],"phoneNumbers":[{"value":"1"}]}`,
			body:    body(`{"op":"replace","path":"emails","value":null}`, `{"op":"replace","path":"phoneNumbers","value":[]}`),
			want:    `{"userName":"u"}`,
			changed: []string{"emails", "phoneNumbers"},
		},
		{
			name:    "an element of only cleared sub-attributes clears the selected element",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"replace","path":"emails[type eq \"work\"]","value":{"value":"","primary":null}}`, `{"op":"add","path":"emails[type eq \"other\"]","value":{"value":""}}`),
			want:    `{"userName":"u","emails":[{"type":"home","value":"b@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "add null or [] to a multi-valued attribute adds nothing",
			doc:     `{"userName":"u","emails":[{"value":"a@x"}]}`,
			body:    body(`{"op":"add","path":"emails","value":null}`, `{"op":"add","path":"emails","value":[]}`, `{"op":"add","path":"emails[type eq \"work\"]","value":null}`),
			want:    `{"userName":"u","emails":[{"value":"a@x"}]}`,
			changed: nil,
		},
		// add / replace basics.
		{
			name:    "validator add name.givenName on a minimal user",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"name.givenName","value":"Given"}`),
			want:    `{"userName":"min@example.com","active":true,"name":{"givenName":"Given"}}`,
			changed: []string{"name"},
		},
		{
			name:    "add a complex value merges sub-attributes",
			doc:     baseUser,
			body:    body(`{"op":"add","path":"name","value":{"middleName":"M","givenName":"T2"}}`),
			want:    replaceJSON(baseUser, `"givenName":"Test"`, `"givenName":"T2","middleName":"M"`),
			changed: []string{"name"},
		},
		{
			name:    "replace a complex value keeps sub-attributes it leaves out",
			doc:     baseUser,
			body:    body(`{"op":"replace","path":"name","value":{"familyName":"F2","givenName":""}}`),
			want:    replaceJSON(baseUser, `"name":{"givenName":"Test","familyName":"User"}`, `"name":{"familyName":"F2"}`),
			changed: []string{"name"},
		},
		{
			name:    "add to a multi-valued attribute is a union",
			doc:     `{"userName":"u","emails":[{"value":"a@x","type":"work"}]}`,
			body:    body(`{"op":"add","path":"emails","value":[{"type":"work","value":"a@x"},{"value":"b@x"},{"value":"b@x"}]}`),
			want:    `{"userName":"u","emails":[{"value":"a@x","type":"work"},{"value":"b@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "add a single object to a multi-valued attribute",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"emails","value":{"value":"a@x"}}`),
			want:    `{"userName":"min@example.com","active":true,"emails":[{"value":"a@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "replace a multi-valued attribute replaces the list",
			doc:     `{"userName":"u","emails":[{"value":"a@x"},{"value":"b@x"}]}`,
			body:    body(`{"op":"replace","path":"emails","value":[{"value":"c@x","primary":"false"}]}`),
			want:    `{"userName":"u","emails":[{"value":"c@x","primary":false}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "entra roles with a JSON-encoded string value",
			doc:     minimalUser,
			body:    body(`{"op":"Add","path":"roles","value":[{"value":"{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}`),
			want:    `{"userName":"min@example.com","active":true,"roles":[{"value":"{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}`,
			changed: []string{"roles"},
		},
		{
			name:    "attribute names match case-insensitively and are stored canonically",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"NAME.GIVENNAME","value":"G"}`, `{"op":"add","path":"EMAILS[TYPE eq \"work\"].VALUE","value":"w@x"}`, `{"op":"add","value":{"NickName":"N","ADDRESSES":[{"LOCALITY":"L"}]}}`),
			want:    `{"userName":"min@example.com","active":true,"name":{"givenName":"G"},"emails":[{"type":"work","value":"w@x"}],"nickName":"N","addresses":[{"locality":"L"}]}`,
			changed: []string{"addresses", "emails", "name", "nickName"},
		},
		{
			name:    "core schema URN prefix",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:userName","value":"new@example.com"}`, `{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName","value":"G"}`),
			want:    `{"userName":"new@example.com","active":true,"name":{"givenName":"G"}}`,
			changed: []string{"name", "userName"},
		},
		{
			name:    "bare extension URN path with an object value",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"department":"D","manager":{"value":"m"}}}`),
			want:    `{"userName":"min@example.com","active":true,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","manager":{"value":"m"}}}`,
			changed: []string{enterpriseURN + ":department", enterpriseURN + ":manager"},
		},
		{
			name:    "remove a bare extension URN removes the extension",
			doc:     `{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","division":"V"}}`,
			body:    body(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}`),
			want:    `{"userName":"u"}`,
			changed: []string{enterpriseURN + ":department", enterpriseURN + ":division"},
		},
		{
			name:    "password is settable and stays for the caller to hash",
			doc:     minimalUser,
			body:    body(`{"op":"replace","path":"password","value":"1mz050nq"}`),
			want:    `{"userName":"min@example.com","active":true,"password":"1mz050nq"}`,
			changed: []string{"password"},
		},
		{
			name:    "replace with the same value changes nothing",
			doc:     baseUser,
			body:    body(`{"op":"replace","path":"displayName","value":"Test User"}`, `{"op":"add","path":"emails","value":[{"primary":true,"value":"test.user@okta.local","type":"work"}]}`),
			want:    baseUser,
			changed: nil,
		},
		{
			name:    "several ops on one attribute report it once",
			doc:     baseUser,
			body:    body(`{"op":"replace","path":"name.givenName","value":"A"}`, `{"op":"replace","path":"name.familyName","value":"B"}`),
			want:    replaceJSON(baseUser, `"name":{"givenName":"Test","familyName":"User"}`, `"name":{"givenName":"A","familyName":"B"}`),
			changed: []string{"name"},
		},
		{
			name:    "ops apply in order: add then remove",
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"nickName","value":"N"}`, `{"op":"remove","path":"nickName"}`),
			want:    minimalUser,
			changed: nil,
		},
		// remove.
		{
			name:    "remove a sub-attribute",
			doc:     baseUser,
			body:    body(`{"op":"remove","path":"name.givenName"}`),
			want:    replaceJSON(baseUser, `"givenName":"Test",`, ``),
			changed: []string{"name"},
		},
		{
			name:    "remove elements selected by a filter",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"remove","path":"emails[type eq \"work\"]"}`),
			want:    `{"userName":"u","emails":[{"type":"home","value":"b@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "remove with a value removes only those values",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@x"},{"type":"home","value":"b@x"}]}`,
			body:    body(`{"op":"Remove","path":"emails","value":[{"value":"B@X"}]}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@x"}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "remove with an empty value list removes nothing",
			doc:     `{"userName":"u","emails":[{"value":"a@x"}]}`,
			body:    body(`{"op":"remove","path":"emails","value":[]}`),
			want:    `{"userName":"u","emails":[{"value":"a@x"}]}`,
			changed: nil,
		},
		{
			name:    "remove a whole multi-valued attribute",
			doc:     `{"userName":"u","emails":[{"value":"a@x"}]}`,
			body:    body(`{"op":"remove","path":"emails"}`),
			want:    `{"userName":"u"}`,
			changed: []string{"emails"},
		},
		{
			name:    "removing something absent is no error",
			doc:     minimalUser,
			body:    body(`{"op":"remove","path":"nickName"}`, `{"op":"remove","path":"emails[type eq \"work\"]"}`, `{"op":"remove","path":"name.givenName"}`, `{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}`),
			want:    minimalUser,
			changed: nil,
		},
		{
			name:    "remove with a value on a singular attribute ignores the value",
			doc:     baseUser,
			body:    body(`{"op":"remove","path":"displayName","value":"anything"}`),
			want:    replaceJSON(baseUser, `"displayName":"Test User",`, ``),
			changed: []string{"displayName"},
		},
		// Types and mutability from the test extension.
		{
			name:    "integers, decimals, dateTimes and binaries",
			schema:  testSchema(),
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badge","value":42}`, `{"op":"add","value":{"urn:example:params:scim:schemas:extension:test:2.0:User":{"score":1.5,"since":"2008-01-23T04:56:22Z","cert":"AAEC"}}}`),
			want:    `{"userName":"min@example.com","active":true,"urn:example:params:scim:schemas:extension:test:2.0:User":{"badge":42,"score":1.5,"since":"2008-01-23T04:56:22Z","cert":"AAEC"}}`,
			changed: []string{testExtURN + ":badge", testExtURN + ":cert", testExtURN + ":score", testExtURN + ":since"},
		},
		{
			name:    "immutable attribute may be added when absent",
			schema:  testSchema(),
			doc:     minimalUser,
			body:    body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:serial","value":"S1"}`),
			want:    `{"userName":"min@example.com","active":true,"urn:example:params:scim:schemas:extension:test:2.0:User":{"serial":"S1"}}`,
			changed: []string{testExtURN + ":serial"},
		},
		{
			name:    "immutable attribute: adding the same value is no change",
			schema:  testSchema(),
			doc:     `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"serial":"S1"}}`,
			body:    body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:serial","value":"S1"}`),
			want:    `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"serial":"S1"}}`,
			changed: nil,
		},
		{
			name:    "simple multi-valued attribute with a value filter",
			schema:  testSchema(),
			doc:     `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"tags":["a","b"],"levels":[1,5,9]}}`,
			body:    body(`{"op":"replace","path":"urn:example:params:scim:schemas:extension:test:2.0:User:tags[value eq \"A\"]","value":"z"}`, `{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:levels[value gt 4]"}`, `{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:tags","value":["b","c"]}`),
			want:    `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"tags":["z","b","c"],"levels":[1]}}`,
			changed: []string{testExtURN + ":levels", testExtURN + ":tags"},
		},
		{
			name:   "dateTime and decimal comparisons in filters",
			schema: testSchema(),
			doc: `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"badges":[
			 {"value":"a","issued":"2019-05-01T00:00:00Z","level":2.5},{"value":"b","issued":"2021-05-01T00:00:00+02:00","level":1},
			 {"value":"c","issued":"2019-01-01T00:00:00Z","level":7}]}}`,
			body: body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badges[issued lt \"2020-01-01T00:00:00Z\" and level le 3]"}`,
				`{"op":"replace","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badges[issued ge \"2021-04-30T22:00:00Z\"].level","value":1.25}`),
			want: `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"badges":[
			 {"value":"b","issued":"2021-05-01T00:00:00+02:00","level":1.25},{"value":"c","issued":"2019-01-01T00:00:00Z","level":7}]}}`,
			changed: []string{testExtURN + ":badges"},
		},
		{
			name:    "remove values from a simple multi-valued attribute",
			schema:  testSchema(),
			doc:     `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"tags":["a","b"]}}`,
			body:    body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:tags","value":["B"]}`),
			want:    `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"tags":["a"]}}`,
			changed: []string{testExtURN + ":tags"},
		},
		{
			name:    "filters with not, or, pr, sw, ew, co and ordering",
			doc:     `{"userName":"u","emails":[{"type":"work","value":"a@corp.example"},{"type":"home","value":"b@mail.example"},{"value":"c@corp.example","display":"C"}]}`,
			body:    body(`{"op":"replace","path":"emails[not (type pr)].primary","value":false}`, `{"op":"replace","path":"emails[value sw \"B@\" or type eq \"other\"].primary","value":false}`, `{"op":"add","path":"emails[value ew \"corp.example\" and value co \"a@\"].display","value":"A"}`, `{"op":"remove","path":"emails[value ge \"c\"].display"}`),
			want:    `{"userName":"u","emails":[{"type":"work","value":"a@corp.example","display":"A"},{"type":"home","value":"b@mail.example","primary":false},{"value":"c@corp.example","primary":false}]}`,
			changed: []string{"emails"},
		},
		{
			name:    "JSON escapes in filter values are decoded",
			doc:     `{"userName":"u","emails":[{"value":"a@x","display":"say \"hi\""}]}`,
			body:    body(`{"op":"remove","path":"emails[display eq \"say \\\"hi\\\"\"]"}`),
			want:    `{"userName":"u"}`,
			changed: []string{"emails"},
		},
		{
			name:    "Group rename through Entra's capitalised Replace",
			schema:  groupSchema(),
			doc:     `{"displayName":"Old","externalId":"8aa1"}`,
			body:    body(`{"op":"Replace","path":"displayName","value":"New"}`),
			want:    `{"displayName":"New","externalId":"8aa1"}`,
			changed: []string{"displayName"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.schema
			if s.Core.ID == "" {
				s = userSchema()
			}
			doc := jsonDoc(t, tc.doc)
			orig := jsonDoc(t, tc.doc)
			ops := mustParse(t, tc.body, s)
			got, changed, err := Apply(doc, ops, s)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			mc, err := Members(ops)
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			deepEqualJSON(t, "doc", got, jsonDoc(t, tc.want))
			if !slices.Equal(changed, tc.changed) {
				t.Fatalf("changed = %q, want %q", changed, tc.changed)
			}
			if !reflect.DeepEqual(mc, MemberChange{}) {
				t.Fatalf("member change = %+v, want none", mc)
			}
			deepEqualJSON(t, "input doc after Apply", doc, orig)
			// Operations are reusable: a second Apply gives the same result.
			again, _, err := Apply(jsonDoc(t, tc.doc), ops, s)
			if err != nil {
				t.Fatalf("second Apply: %v", err)
			}
			deepEqualJSON(t, "doc of second Apply", again, got)
		})
	}
}

// replaceJSON substitutes once in a JSON test document, failing loudly when old is absent.
func replaceJSON(doc, old, new string) string {
	if !strings.Contains(doc, old) {
		panic("test document lacks " + old)
	}
	return strings.Replace(doc, old, new, 1)
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name     string
		schema   Schema
		doc      string
		body     string
		scimType string
	}{
		{
			name:     "filter that matches nothing and is not an eq conjunction",
			doc:      minimalUser,
			body:     body(`{"op":"replace","path":"emails[type co \"wo\"].value","value":"SECRET@x"}`),
			scimType: noTarget,
		},
		{
			name:     "or filter that matches nothing",
			doc:      baseUser,
			body:     body(`{"op":"add","path":"emails[type eq \"home\" or type eq \"other\"]","value":{"value":"SECRET@x"}}`),
			scimType: noTarget,
		},
		{
			name:     "contradictory eq conjunction",
			doc:      minimalUser,
			body:     body(`{"op":"add","path":"emails[type eq \"home\" and type eq \"work\"].value","value":"SECRET@x"}`),
			scimType: noTarget,
		},
		{
			name:     "immutable attribute already set to another value",
			schema:   testSchema(),
			doc:      `{"userName":"u","urn:example:params:scim:schemas:extension:test:2.0:User":{"serial":"S1"}}`,
			body:     body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:serial","value":"SECRET"}`),
			scimType: mutability,
		},
		{
			name:     "a failing later op leaves everything unchanged",
			doc:      baseUser,
			body:     body(`{"op":"replace","path":"displayName","value":"SECRET"}`, `{"op":"add","path":"ims[type pr].value","value":"SECRET"}`),
			scimType: noTarget,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.schema
			if s.Core.ID == "" {
				s = userSchema()
			}
			doc := jsonDoc(t, tc.doc)
			ops := mustParse(t, tc.body, s)
			got, changed, err := Apply(doc, ops, s)
			checkError(t, err, tc.scimType, "SECRET")
			if got != nil || changed != nil {
				t.Fatalf("Apply returned results with an error: %v %v", got, changed)
			}
			deepEqualJSON(t, "input doc after failed Apply", doc, jsonDoc(t, tc.doc))
		})
	}
}

func TestApplyToleratesOddDocuments(t *testing.T) {
	// Documents written by older code or by hand may hold unexpected shapes; Apply replaces
	// them instead of failing or panicking.
	doc := map[string]any{
		"userName":    "u",
		"name":        "not an object",
		"emails":      map[string]any{"value": "not a list"},
		enterpriseURN: "not an object",
	}
	ops := mustParse(t, body(`{"op":"add","path":"name.givenName","value":"G"}`, `{"op":"add","path":"emails","value":{"value":"a@x"}}`, `{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"D"}`), userSchema())
	got, _, err := Apply(doc, ops, userSchema())
	if err != nil {
		t.Fatal(err)
	}
	deepEqualJSON(t, "doc", got, jsonDoc(t, `{"userName":"u","name":{"givenName":"G"},"emails":[{"value":"a@x"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D"}}`))
}

func TestApplyNilDocument(t *testing.T) {
	got, changed, err := Apply(nil, mustParse(t, body(`{"op":"add","path":"nickName","value":"N"}`), userSchema()), userSchema())
	if err != nil {
		t.Fatal(err)
	}
	deepEqualJSON(t, "doc", got, map[string]any{"nickName": "N"})
	if !slices.Equal(changed, []string{"nickName"}) {
		t.Fatalf("changed = %q", changed)
	}
}

// BenchmarkApplyMultiValues adds n values to a multi-valued attribute with one PATCH operation,
// then removes a tenth of them by value: the cost per value must not grow with n (compare the
// ns/value of the two sizes); a body of 1 MiB holds about 40,000.
func BenchmarkApplyMultiValues(b *testing.B) {
	s := userSchema()
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			var add, remove []string
			for i := range n {
				v := fmt.Sprintf(`{"value":"user%d@example.com"}`, i)
				add = append(add, v)
				if i%10 == 0 {
					remove = append(remove, v)
				}
			}
			ops := mustParse(b, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
				`{"op":"add","path":"emails","value":[`+strings.Join(add, ",")+`]},`+
				`{"op":"remove","path":"emails","value":[`+strings.Join(remove, ",")+`]}]}`, s)
			doc := map[string]any{"userName": "u"}
			b.ReportAllocs()
			for b.Loop() {
				got, _, err := Apply(doc, ops, s)
				if err != nil || len(got["emails"].([]any)) != n-len(remove) {
					b.Fatalf("Apply: %v; want %d emails", err, n-len(remove))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
		})
	}
}

// FuzzMultiValues adds and removes values of multi-valued attributes of every kind (complex with
// a case-insensitive value, strings, numbers, complex elements without a value) and compares
// the result with each value compared to each element, as the rules read: the index of elements
// by key must not change what is added or removed.
func FuzzMultiValues(f *testing.F) {
	s := testSchema()
	pools := map[string][]any{
		"emails": {map[string]any{"value": "A@x.io"}, map[string]any{"value": "a@x.io"}, map[string]any{"value": "b@x.io", "type": "work"},
			map[string]any{"type": "work"}, map[string]any{"value": "a@x.io", "primary": true}, map[string]any{"value": json.Number("1")}},
		"tags":   {"A", "a", "b", "B ", json.Number("2")},
		"levels": {json.Number("1"), json.Number("1.0"), json.Number("2"), "1"},
		"badges": {map[string]any{"value": "X"}, map[string]any{"value": "x"}, map[string]any{"issued": "2020-01-01T00:00:00Z"}, map[string]any{"level": json.Number("1")}},
	}
	names := []string{"emails", "tags", "levels", "badges"}
	f.Add([]byte{0, 3, 0, 1, 2, 2, 1, 4})
	f.Add([]byte{2, 4, 0, 1, 2, 3, 2, 3, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 2 {
			return
		}
		name := names[int(in[0])%len(names)]
		attr, ok := attribute(s, name)
		if !ok {
			t.Fatalf("no attribute %s", name)
		}
		pool := pools[name]
		n := int(in[1]) % (len(in) - 1)
		var list, vals []any
		for i, b := range in[2:] {
			if e := pool[int(b)%len(pool)]; i < n {
				list = append(list, e)
			} else {
				vals = append(vals, e)
			}
		}
		wantAdd := slices.Clone(list)
		for _, v := range vals {
			if !slices.ContainsFunc(wantAdd, func(e any) bool { return reflect.DeepEqual(e, v) }) {
				wantAdd = append(wantAdd, v)
			}
		}
		if got := addValues(list, vals); !reflect.DeepEqual(got, wantAdd) {
			t.Fatalf("%s: adding %v to %v gave %v, want %v", name, vals, list, got, wantAdd)
		}
		wantRemove := slices.DeleteFunc(slices.Clone(list), func(e any) bool {
			return slices.ContainsFunc(vals, func(v any) bool { return sameElement(attr, e, v) })
		})
		if got := removeValues(attr, list, vals); !reflect.DeepEqual(got, wantRemove) {
			t.Fatalf("%s: removing %v from %v gave %v, want %v", name, vals, list, got, wantRemove)
		}
	})
}

// attribute finds a top-level attribute of s's core schema or of one of its extensions.
func attribute(s Schema, name string) (schema.CoreAttribute, bool) {
	for _, sc := range append([]schema.Schema{s.Core}, s.Extensions...) {
		for _, a := range sc.Attributes {
			if a.Name() == name {
				return a, true
			}
		}
	}
	return schema.CoreAttribute{}, false
}
