package patch

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	tooMany := make([]string, maxOperations+1)
	for i := range tooMany {
		tooMany[i] = `{"op":"add","path":"nickName","value":"n"}`
	}
	tests := []struct {
		name     string
		schema   Schema // userSchema() when zero
		body     string
		scimType string
	}{
		// Body structure.
		{"malformed JSON", Schema{}, `{"schemas":[`, invalidSyntax},
		{"empty body", Schema{}, ``, invalidSyntax},
		{"body is an array", Schema{}, `[]`, invalidSyntax},
		{"trailing data", Schema{}, body(`{"op":"add","path":"nickName","value":"n"}`) + `{}`, invalidSyntax},
		{"invalid UTF-8", Schema{}, body(`{"op":"add","path":"nickName","value":"SECRET` + "\xff" + `"}`), invalidSyntax},
		{"duplicate top-level key", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[],"Operations":[{"op":"remove","path":"nickName"}]}`, invalidSyntax},
		{"duplicate key in an operation", Schema{}, body(`{"op":"add","path":"nickName","value":"SECRET","value":"x"}`), invalidSyntax},
		{"duplicate key deep in a value", Schema{}, body(`{"op":"add","path":"emails","value":[{"value":"SECRET","type":"work","value":"y"}]}`), invalidSyntax},
		{"duplicate key written with an escape", Schema{}, body(`{"op":"add","path":"nickName","value":"SECRET","valu\u0065":"x"}`), invalidSyntax},
		{"keys that differ only in case", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"nickName"}],"operations":[]}`, invalidSyntax},
		{"sub-attribute keys that differ only in case", Schema{}, body(`{"op":"add","path":"name","value":{"givenName":"SECRET","GivenName":"y"}}`), invalidSyntax},
		{"operation is not an object", Schema{}, body(`"add"`), invalidSyntax},
		{"schemas missing", Schema{}, `{"Operations":[{"op":"remove","path":"nickName"}]}`, invalidValue},
		{"schemas names another message", Schema{}, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"Operations":[{"op":"remove","path":"nickName"}]}`, invalidValue},
		{"schemas in another case", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:patchop"],"Operations":[{"op":"remove","path":"nickName"}]}`, invalidValue},
		{"schemas with an extra URN", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp","x"],"Operations":[{"op":"remove","path":"nickName"}]}`, invalidValue},
		{"schemas is a string", Schema{}, `{"schemas":"urn:ietf:params:scim:api:messages:2.0:PatchOp","Operations":[{"op":"remove","path":"nickName"}]}`, invalidValue},
		{"Operations missing", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`, invalidValue},
		{"Operations empty", Schema{}, body(), invalidValue},
		{"Operations null", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":null}`, invalidValue},
		{"Operations is an object", Schema{}, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":{"op":"remove","path":"nickName"}}`, invalidValue},
		{"more than 1000 operations", Schema{}, body(tooMany...), invalidValue},
		// op.
		{"unknown op", Schema{}, body(`{"op":"delete","path":"nickName"}`), invalidValue},
		{"missing op", Schema{}, body(`{"path":"nickName","value":"SECRET"}`), invalidValue},
		{"op is not a string", Schema{}, body(`{"op":1,"path":"nickName","value":"SECRET"}`), invalidValue},
		// path.
		{"path is not a string", Schema{}, body(`{"op":"add","path":5,"value":"SECRET"}`), invalidPath},
		{"unparseable path", Schema{}, body(`{"op":"add","path":"emails[value eq \"SECRET\"","value":"x"}`), invalidPath},
		{"unknown attribute", Schema{}, body(`{"op":"add","path":"shoeSize","value":"SECRET"}`), invalidPath},
		{"unknown sub-attribute", Schema{}, body(`{"op":"add","path":"name.nickName","value":"SECRET"}`), invalidPath},
		{"sub-attribute of a simple attribute", Schema{}, body(`{"op":"add","path":"userName.value","value":"SECRET"}`), invalidPath},
		{"filter on a singular attribute", Schema{}, body(`{"op":"add","path":"name[givenName eq \"SECRET\"].familyName","value":"x"}`), invalidPath},
		{"filter after a sub-attribute", Schema{}, body(`{"op":"add","path":"emails.value[type eq \"work\"]","value":"SECRET"}`), invalidPath},
		{"filter on an unknown sub-attribute", Schema{}, body(`{"op":"add","path":"emails[kind eq \"SECRET\"].value","value":"x"}`), invalidPath},
		{"filter compares a boolean with a string", Schema{}, body(`{"op":"add","path":"emails[primary eq \"SECRET\"].value","value":"x"}`), invalidPath},
		{"filter compares a string with a number", Schema{}, body(`{"op":"add","path":"emails[type eq 5].value","value":"SECRET"}`), invalidPath},
		{"filter compares with null", Schema{}, body(`{"op":"add","path":"emails[type eq null].value","value":"SECRET"}`), invalidPath},
		{"filter orders booleans", Schema{}, body(`{"op":"add","path":"emails[primary gt true].value","value":"SECRET"}`), invalidPath},
		{"filter uses co on a boolean", Schema{}, body(`{"op":"add","path":"emails[primary co true].value","value":"SECRET"}`), invalidPath},
		{"bad comparison inside and", Schema{}, body(`{"op":"remove","path":"emails[type eq \"work\" and kind eq \"SECRET\"]"}`), invalidPath},
		{"bad comparison inside not", Schema{}, body(`{"op":"remove","path":"emails[not (kind eq \"SECRET\")]"}`), invalidPath},
		{"filter compares a dateTime with an invalid one", testSchema(), body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badges[issued gt \"SECRET\"]"}`), invalidPath},
		{"filter compares a decimal with a string", testSchema(), body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badges[level gt \"SECRET\"]"}`), invalidPath},
		{"filter names a sub-attribute path", Schema{}, body(`{"op":"add","path":"emails[type.x eq \"a\"].value","value":"SECRET"}`), invalidPath},
		{"filter on a simple multi-valued attribute names something else", testSchema(), body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:tags[name eq \"SECRET\"]"}`), invalidPath},
		{"unknown URN", Schema{}, body(`{"op":"add","path":"urn:example:unknown:2.0:User:x","value":"SECRET"}`), invalidPath},
		{"schemas of an extension", Schema{}, body(`{"op":"replace","path":"` + enterprise + `:schemas","value":["SECRET"]}`), invalidPath},
		{"groups on a Group", groupSchema(), body(`{"op":"remove","path":"groups"}`), invalidPath},
		{"a bad filter in a value key is still an error", Schema{}, body(`{"op":"replace","value":{"emails[kind eq \"SECRET\"].value":"x"}}`), invalidPath},
		{"bare core URN", Schema{}, body(`{"op":"add","path":"urn:ietf:params:scim:schemas:core:2.0:User","value":{"nickName":"SECRET"}}`), invalidPath},
		{"members on a User", Schema{}, body(`{"op":"add","path":"members","value":[{"value":"SECRET"}]}`), invalidPath},
		{"members filter with a sub-attribute", groupSchema(), body(`{"op":"replace","path":"members[value eq \"SECRET\"].display","value":"x"}`), invalidPath},
		{"add through a members filter", groupSchema(), body(`{"op":"add","path":"members[value eq \"SECRET\"]","value":{"value":"x"}}`), invalidPath},
		{"members sub-attribute", groupSchema(), body(`{"op":"remove","path":"members.display"}`), invalidPath},
		// noTarget.
		{"remove without a path", Schema{}, body(`{"op":"remove","value":{"nickName":"SECRET"}}`), noTarget},
		{"remove with an empty path", Schema{}, body(`{"op":"Remove","path":""}`), noTarget},
		// Values.
		{"add without a value", Schema{}, body(`{"op":"add","path":"nickName"}`), invalidValue},
		{"path-less op without a value", Schema{}, body(`{"op":"replace"}`), invalidValue},
		{"path-less value is not an object", Schema{}, body(`{"op":"replace","value":"SECRET"}`), invalidValue},
		{"path-less value is an array", Schema{}, body(`{"op":"add","value":[{"nickName":"SECRET"}]}`), invalidValue},
		{"extension URN path with a string", Schema{}, body(`{"op":"add","path":"` + enterprise + `","value":"SECRET"}`), invalidValue},
		{"extension URN path without a value", Schema{}, body(`{"op":"add","path":"` + enterprise + `"}`), invalidValue},
		{"extension key with a string", Schema{}, body(`{"op":"add","value":{"` + enterprise + `":"SECRET"}}`), invalidValue},
		{"boolean as a number", Schema{}, body(`{"op":"replace","path":"active","value":0}`), invalidValue},
		{"boolean as another string", Schema{}, body(`{"op":"replace","path":"active","value":"SECRET"}`), invalidValue},
		{"boolean as yes", Schema{}, body(`{"op":"replace","path":"active","value":"1"}`), invalidValue},
		{"string as a number", Schema{}, body(`{"op":"replace","path":"nickName","value":12345}`), invalidValue},
		{"string as an object", Schema{}, body(`{"op":"replace","path":"nickName","value":{"SECRET":1}}`), invalidValue},
		{"complex as a string", Schema{}, body(`{"op":"replace","path":"name","value":"SECRET"}`), invalidValue},
		{"wrong type inside a complex value", Schema{}, body(`{"op":"add","path":"emails","value":[{"value":"SECRET","primary":"maybe"}]}`), invalidValue},
		{"element of a filtered path is not an object", Schema{}, body(`{"op":"replace","path":"emails[type eq \"work\"]","value":"SECRET"}`), invalidValue},
		{"array for a singular attribute", Schema{}, body(`{"op":"replace","path":"nickName","value":["SECRET","b"]}`), invalidValue},
		{"manager as a number", Schema{}, body(`{"op":"replace","path":"` + enterprise + `:manager","value":7}`), invalidValue},
		{"integer as a string", testSchema(), body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badge","value":"42"}`), invalidValue},
		{"integer with a fraction", testSchema(), body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:badge","value":4.2}`), invalidValue},
		{"decimal as a string", testSchema(), body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:score","value":"1.5"}`), invalidValue},
		{"invalid dateTime", testSchema(), body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:since","value":"SECRET"}`), invalidValue},
		{"invalid binary", testSchema(), body(`{"op":"add","path":"urn:example:params:scim:schemas:extension:test:2.0:User:cert","value":"SECRET!"}`), invalidValue},
		// Required attributes.
		{"remove userName", Schema{}, body(`{"op":"remove","path":"userName"}`), invalidValue},
		{"replace userName with empty string", Schema{}, body(`{"op":"replace","path":"userName","value":""}`), invalidValue},
		{"replace userName with null", Schema{}, body(`{"op":"Replace","path":"userName","value":null}`), invalidValue},
		{"path-less clear of userName", Schema{}, body(`{"op":"replace","value":{"userName":""}}`), invalidValue},
		{"remove Group displayName", groupSchema(), body(`{"op":"remove","path":"displayName"}`), invalidValue},
		// Mutability.
		{"replace an immutable attribute", testSchema(), body(`{"op":"replace","path":"urn:example:params:scim:schemas:extension:test:2.0:User:serial","value":"SECRET"}`), mutability},
		{"remove an immutable attribute", testSchema(), body(`{"op":"remove","path":"urn:example:params:scim:schemas:extension:test:2.0:User:serial"}`), mutability},
		{"replace id", Schema{}, body(`{"op":"replace","path":"id","value":"SECRET"}`), mutability},
		{"replace the core-qualified id", Schema{}, body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:id","value":"SECRET"}`), mutability},
		{"replace meta.created", Schema{}, body(`{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}`), mutability},
		{"remove meta", Schema{}, body(`{"op":"remove","path":"meta"}`), mutability},
		{"add schemas", Schema{}, body(`{"op":"add","path":"schemas","value":["SECRET"]}`), mutability},
		{"remove groups", Schema{}, body(`{"op":"remove","path":"groups"}`), mutability},
		{"replace a group's display through a filter", Schema{}, body(`{"op":"replace","path":"groups[value eq \"SECRET\"].display","value":"x"}`), mutability},
		{"replace a read-only sub-attribute", Schema{}, body(`{"op":"replace","path":"` + enterprise + `:manager.displayName","value":"SECRET"}`), mutability},
		{"replace a read-only extension attribute", testSchema(), body(`{"op":"replace","path":"urn:example:params:scim:schemas:extension:test:2.0:User:audit","value":"SECRET"}`), mutability},
		{"replace a read-only lifecycle attribute", Schema{}, body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User:audited","value":true}`), mutability},
		{"remove an extension that holds read-only attributes", Schema{}, body(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User"}`), mutability},
		{"replace a Group's id", groupSchema(), body(`{"op":"replace","path":"id","value":"SECRET"}`), mutability},
		// Members.
		{"member without value", groupSchema(), body(`{"op":"add","path":"members","value":[{"display":"SECRET"}]}`), invalidValue},
		{"member with empty value", groupSchema(), body(`{"op":"add","path":"members","value":[{"value":"","display":"SECRET"}]}`), invalidValue},
		{"member value is a number", groupSchema(), body(`{"op":"add","path":"members","value":[{"value":12345}]}`), invalidValue},
		{"member is a string", groupSchema(), body(`{"op":"add","path":"members","value":["SECRET"]}`), invalidValue},
		{"member of an unknown type", groupSchema(), body(`{"op":"add","path":"members","value":[{"value":"SECRET","type":"Device"}]}`), invalidValue},
		{"member keys that differ only in case", groupSchema(), body(`{"op":"add","path":"members","value":[{"value":"SECRET","Value":"y"}]}`), invalidSyntax},
		{"legacy member removal with an invalid member", groupSchema(), body(`{"op":"Remove","path":"members","value":[{"$ref":null}]}`), invalidValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.schema
			if s.Core.ID == "" {
				s = userSchema()
			}
			ops, err := Parse([]byte(tc.body), s)
			checkError(t, err, tc.scimType, "SECRET", "12345", "\xff")
			if ops != nil {
				t.Fatalf("Parse returned operations with an error: %v", ops)
			}
		})
	}
}

func TestParseErrorDetailNamesOperationAndPath(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{body(`{"op":"remove","path":"nickName"}`, `{"op":"Replace","path":"emails[value eq \"SECRET@x\"].primary","value":"maybe"}`),
			[]string{"Operations[1]", "replace", `emails[value eq …].primary`}},
		{body(`{"op":"replace","value":{"displayName":"SECRET","name.givenName":7}}`),
			[]string{"Operations[0]", "value key name.givenName"}},
		{body(`{"op":"SECRETdelete","path":"nickName"}`), []string{"Operations[0]", "op is not add, replace or remove"}},
		{body(`{"op":"SECRET@x.com","path":"nickName"}`), []string{"Operations[0]"}},
		{body(`{"op":"add","path":"emails[value eq \"SECRET\"","value":"x"}`), []string{"Operations[0]", "not a valid"}},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.body), userSchema())
		var detail string
		if e, ok := err.(*Error); ok {
			detail = e.Detail
		}
		for _, w := range tc.want {
			if !strings.Contains(detail, w) {
				t.Errorf("detail %q lacks %q", detail, w)
			}
		}
		if strings.Contains(detail, "SECRET") {
			t.Errorf("detail %q leaks a value", detail)
		}
	}
}

func TestParseOperations(t *testing.T) {
	ops := mustParse(t, body(
		`{"op":"Replace","path":"active","value":"False"}`,
		`{"op":"replace","value":{"id":"abf4","displayName":"SECRET","name.givenName":"G"}}`,
		`{"op":"add","value":{"meta":{"version":"W/\"1\""},"shoeSize":"42"}}`,
		`{"op":"REMOVE","path":"nickName"}`,
	), userSchema())
	type summary struct {
		Index    int
		Op, Path string
	}
	var got []summary
	for _, op := range ops {
		got = append(got, summary{op.Index, op.Op, op.Path})
	}
	want := []summary{
		{0, "replace", "active"},
		{1, "replace", "displayName"}, // "id" is dropped, key order is kept
		{1, "replace", "name.givenName"},
		{3, "remove", "nickName"}, // "meta" and "shoeSize" are dropped
	}
	deepEqualJSON(t, "operations", got, want)
	if ops[0].value != false {
		t.Fatalf(`"False" normalised to %#v, want false`, ops[0].value)
	}
	if got := fmt.Sprintf("%v|%+v", ops[1], ops[2]); got != "Operations[1] (replace, value key displayName)|Operations[1] (replace, value key name.givenName)" {
		t.Fatalf("operations print as %q", got)
	}
}

func TestParseAllIgnoredOperations(t *testing.T) {
	ops := mustParse(t, body(`{"op":"replace","value":{"id":"abf4","schemas":["x"]}}`), groupSchema())
	if len(ops) != 0 {
		t.Fatalf("ops = %v, want none", ops)
	}
	got, changed, err := Apply(jsonDoc(t, `{"displayName":"G"}`), ops, groupSchema())
	if err != nil || len(changed) != 0 || got["displayName"] != "G" {
		t.Fatalf("Apply = %v, %v, %v", got, changed, err)
	}
}

func TestErrorString(t *testing.T) {
	err := errorf(invalidPath, "detail")
	if got := err.Error(); got != "scim invalidPath: detail" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestLongPathRefused(t *testing.T) {
	long := `emails[value eq \"` + strings.Repeat("a", 5000) + `\"].value`
	_, err := Parse([]byte(body(`{"op":"replace","path":"`+long+`","value":"x"}`)), userSchema())
	var pe *Error
	if !errors.As(err, &pe) || pe.ScimType != "invalidPath" {
		t.Fatalf("a 5,000-byte path: %v", err)
	}
}

// TestResolvePlainMatchesParser: the paths resolved without the parser resolve to exactly what
// the parser gives; the others are left to the parser.
func TestResolvePlainMatchesParser(t *testing.T) {
	s := userSchema()
	for _, c := range []struct {
		path  string
		plain bool
	}{
		{"userName", true}, {"USERNAME", true}, {"name.givenName", true}, {"Name.GivenName", true}, {"emails", true},
		{"emails.value", true}, {"schemas", true}, {"meta.created", true}, {"active", true},
		{"urn:ietf:params:scim:schemas:core:2.0:User:userName", true},
		{"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", true},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", true},
		{"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value", true},
		{"emails[type eq \"work\"].value", false}, {"nosuch", false}, {"name.nosuch", false}, {"name.givenName.x", false},
		{"urn:example:nosuch:department", false}, {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch", false},
		{"user name", false}, {"", false}, {"9lives", false}, {"name.", false},
	} {
		plain, ok := s.resolvePlain(c.path)
		if ok != c.plain {
			t.Errorf("%q: resolved without the parser %v, want %v", c.path, ok, c.plain)
			continue
		}
		if !ok {
			continue
		}
		parsed, known, err := s.resolveParsed(c.path)
		if err != nil || !known || !reflect.DeepEqual(plain, parsed) {
			t.Errorf("%q: without the parser %+v; the parser gives %+v (known %v, %v)", c.path, plain, parsed, known, err)
		}
	}
}
