package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/scimserver/compare"
)

// realBodies are PATCH bodies Okta, Entra ID and Microsoft's validators send
// (idp-behaviour.md §1.7, §1.10, §2.4, §2.5, §2.7, §2.9).
var realBodies = []string{
	body(`{"op":"replace","value":{"active":false}}`),
	body(`{"op":"replace","value":{"id":"abf4dd94-a4c0-4f67-89c9-76b03340cb9b","displayName":"Test SCIMv2"}}`),
	body(`{"op":"remove","path":"members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"}`,
		`{"op":"add","path":"members","value":[{"value":"23a35c27-23d3-4c03-b4c5-6443c09e7173","display":"test.user@okta.local"}]}`),
	body(`{"op":"replace","path":"members","value":[{"value":"u1","display":"a"},{"value":"u2","display":"b"}]}`),
	body(`{"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"}`,
		`{"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}`,
		`{"op":"Replace","path":"addresses[type eq \"work\"].formatted","value":"18/2111"}`,
		`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Retail"}`,
		`{"op":"Replace","path":"externalId","value":"Eqpj"}`,
		`{"op":"Add","path":"nickName","value":"Babs"}`),
	`{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"TestMhvaes@test.microsoft.com"},
	 {"op":"replace","value":{"displayName":"Bjfe","name.givenName":"Kkom","name.familyName":"Unua",
	 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}],
	 "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}`,
	body(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"mgr-1"}`),
	body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":""}`),
	body(`{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":[{"$ref":null,"value":"mgr-1"}]}`),
	body(`{"op":"Add","path":"roles","value":[{"value":"{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}`),
	body(`{"op":"replace","path":"roles[primary eq \"True\"].value","value":"Owner"}`),
	body(`{"op":"Replace","path":"active","value":"False"}`),
	body(`{"op":"replace","path":"active","value":false}`),
	body(`{"op":"Replace","path":"displayName","value":"New"}`),
	body(`{"op":"Add","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`),
	body(`{"op":"Remove","path":"members","value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}`),
	body(`{"op":"remove","path":"members[value eq \"7f4b\" or value eq \"8a5c\"]"}`),
	body(`{"op":"replace","path":"emails[type eq \"work\"].value","value":""}`, `{"op":"replace","path":"name.givenName","value":null}`),
	body(`{"op":"replace","value":{"displayName":"","emails[type eq \"work\"].value":""}}`),
	body(`{"op":"add","path":"emails[type eq \"home\"].value","value":"h@example.com"}`, `{"op":"replace","path":"emails[type eq \"home\"].primary","value":"True"}`),
	body(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}`),
	body(`{"op":"add","path":"members","value":[{"displayName":"new User","value":"u1"}]}`),
	body(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"schemas":["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"department":"X"}}`),
	body(`{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User:anonymized"}`),
}

var realPaths = []string{
	"active", "userName", "name.givenName", "externalId", "members", "displayName",
	`emails[type eq "work"].value`, `emails[type eq "work" and primary eq true]`,
	`emails[not (type eq "work") and value ew "x"].display`, `members[display sw "E" and not (type eq "Group")]`,
	`addresses[type eq "work"].formatted`, `roles[primary eq "True"].value`,
	`members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]`, `members[value eq "a" or value eq "b"]`,
	`members[type eq "Group"]`, `emails[not (type pr)]`, `emails[value co "@"]`,
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
	"urn:ietf:params:scim:schemas:core:2.0:User:userName", "id", "meta.lastModified", "schemas", "groups",
	"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User",
	"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User:anonymized",
}

const sampleUser = `{"userName":"test.user@okta.local","externalId":"00u1","active":true,
 "name":{"givenName":"Test","familyName":"User"},"displayName":"Test User",
 "emails":[{"primary":true,"value":"test.user@okta.local","type":"work"},{"value":"h@x","type":"home"}],
 "roles":[{"value":"Admin","primary":true}],"addresses":[{"type":"work","locality":"L"}],
 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"m1"},"department":"D"}}`

const sampleGroup = `{"displayName":"Test SCIMv2","externalId":"8aa1"}`

// fuzzCases pairs the schemas with sample documents; built once because elimity's schema
// constructors are slow enough to dominate a fuzz iteration.
var fuzzCases = []struct {
	s   Schema
	doc string
}{{userSchema(), sampleUser}, {groupSchema(), sampleGroup}}

// exercise parses b against the User and Group schemas and applies what parses, checking the
// invariants that hold for any input.
func exercise(t *testing.T, b []byte) {
	for _, c := range fuzzCases {
		ops, err := Parse(b, c.s)
		if err != nil {
			checkTyped(t, err)
			continue
		}
		doc := jsonDoc(t, c.doc)
		got, changed, err := Apply(doc, ops, c.s)
		deepEqualJSON(t, "input doc after Apply", doc, jsonDoc(t, c.doc))
		if err != nil {
			checkTyped(t, err)
			continue
		}
		mc, err := Members(ops)
		if err != nil {
			checkTyped(t, err)
			continue
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("result is not JSON: %v", err)
		}
		if want := everyChange(doc, got, c.s, slices.Contains(changed, "members")); !slices.Equal(changed, want) {
			t.Fatalf("changed %q, but comparing every attribute finds %q", changed, want)
		}
		if !slices.IsSorted(changed) || len(slices.Compact(slices.Clone(changed))) != len(changed) {
			t.Fatalf("changed %q is not sorted and unique", changed)
		}
		for _, m := range mc.Add {
			if m.Value == "" || slices.Contains(mc.Remove, m.Value) {
				t.Fatalf("member change %+v adds an empty or removed id", mc)
			}
		}
		if !reflect.DeepEqual(mc, MemberChange{}) && !slices.Contains(changed, "members") {
			t.Fatalf("member change %+v without members in changed %q", mc, changed)
		}
	}
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) || pe.ScimType == "" {
		t.Fatalf("error %v is not a 400 *Error", err)
	}
	switch pe.ScimType {
	case invalidSyntax, invalidPath, noTarget, invalidValue, mutability, tooMany:
	default:
		t.Fatalf("error %v has scimType %q", err, pe.ScimType)
	}
}

func FuzzParse(f *testing.F) {
	for _, b := range realBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		exercise(t, b)
	})
}

func FuzzPath(f *testing.F) {
	for _, p := range realPaths {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		// A path resolved without the parser resolves exactly as the parser resolves it.
		for _, s := range []Schema{userSchema(), groupSchema()} {
			if plain, ok := s.resolvePlain(path); ok {
				if parsed, known, err := s.resolveParsed(path); err != nil || !known || !reflect.DeepEqual(plain, parsed) {
					t.Fatalf("%q: without the parser %+v; the parser gives %+v (known %v, %v)", path, plain, parsed, known, err)
				}
			}
		}
		p, _ := json.Marshal(path)
		for _, op := range []string{
			`{"op":"Replace","path":` + string(p) + `,"value":"False"}`,
			`{"op":"add","path":` + string(p) + `,"value":[{"value":"v1","type":"work"}]}`,
			`{"op":"replace","path":` + string(p) + `,"value":{"value":"v2","primary":"true"}}`,
			`{"op":"remove","path":` + string(p) + `}`,
			`{"op":"replace","value":{` + string(p) + `:null}}`,
		} {
			exercise(t, []byte(body(op)))
		}
	})
}

// TestRealBodies runs the fuzz seeds as a plain test, so they are checked on every go test and
// each is known to parse for at least one schema.
func TestRealBodies(t *testing.T) {
	for _, b := range realBodies {
		_, errUser := Parse([]byte(b), userSchema())
		_, errGroup := Parse([]byte(b), groupSchema())
		if errUser != nil && errGroup != nil {
			t.Errorf("%s parses for neither schema: %v / %v", b, errUser, errGroup)
		}
		exercise(t, []byte(b))
	}
}

// FuzzIsAttrName: the hand-written ATTRNAME check accepts exactly what the rule's regular
// expression accepts.
func FuzzIsAttrName(f *testing.F) {
	rule := regexp.MustCompile(`^(\$ref|[A-Za-z][\w$-]{0,63})$`)
	for _, s := range []string{"userName", "$ref", "$refs", "a", "", "1a", "a-b_c$d", "é", "a b", strings.Repeat("a", 64), strings.Repeat("a", 65), "A\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isAttrName(s), rule.MatchString(s); got != want {
			t.Fatalf("%q: %v, the rule says %v", s, got, want)
		}
	})
}

// everyChange lists the attributes of s whose values differ between before and after, comparing
// every one of them, and "members" when Apply found the members touched (which it reports
// apart from the document): what Apply must report.
func everyChange(before, after map[string]any, s Schema, members bool) []string {
	var changed []string
	diff := func(b, a map[string]any, attrs schema.Attributes, prefix string) {
		for _, attr := range attrs {
			x, y := b[attr.Name()], a[attr.Name()]
			if !(compare.Unassigned(x) && compare.Unassigned(y)) && !reflect.DeepEqual(x, y) {
				changed = append(changed, prefix+attr.Name())
			}
		}
	}
	diff(before, after, s.Core.Attributes, "")
	for _, ext := range s.Extensions {
		diff(asMap(before[ext.ID]), asMap(after[ext.ID]), ext.Attributes, ext.ID+":")
	}
	if members {
		changed = append(changed, "members")
	}
	slices.Sort(changed)
	return changed
}
