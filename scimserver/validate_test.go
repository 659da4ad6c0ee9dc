package scimserver

import (
	"reflect"
	"strings"
	"testing"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/strictjson"
)

// FuzzBodyCheck: a body is validated exactly as elimity's Schema.Validate (core schema) and
// ValidateExtension (each extension) validate it: the same attributes, under the same names,
// with the same values, and a refusal where they refuse.
func FuzzBodyCheck(f *testing.F) {
	for _, seed := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],` +
			`"userName":"a@example.com","externalId":"e1","active":true,"displayName":"A","id":"x","meta":{"created":"x"},` +
			`"name":{"givenName":"A","FAMILYNAME":"B","formatted":null},"emails":[{"value":"a@example.com","type":"work","primary":true}],` +
			`"phoneNumbers":[],"addresses":[{"streetAddress":"1 Road","primary":"true"}],"groups":[{"value":"g"}],` +
			`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","manager":{"value":"m","displayName":"M"}}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"USERNAME":"b","UserName":"c"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:user"],"userName":"b"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":null,"active":"False"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"k","emailſ":[{"value":"x"}],"emails":[]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"k","emailſ":[{"value":"x"}],"x509Certificates":[{"value":"AAAA"}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"displayName":"no userName","name":"not an object"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"displayName":"no userName"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":null}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u","urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User":` +
			`{"audited":true,"campaignCount":3,"auditReasons":["x"],"anonymized":true}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"G","members":[{"value":"u","display":"U"}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":7,"members":{"value":"u"}}`,
	} {
		f.Add([]byte(seed))
	}
	kinds := []*Kind{Users(), Groups()}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := strictjson.DecodeObject(body)
		if err != nil {
			return
		}
		for _, k := range kinds {
			if multiValuedObject(k.core.Attributes, m) {
				continue // elimity reads such a value in map order: no one answer to compare with
			}
			want, werr := k.core.Validate(m)
			got, ok := k.bodyChecks[0].validate(m, true)
			if (werr == nil) != ok || ok && !reflect.DeepEqual(got, want) {
				t.Fatalf("%s core: got %v (%v), elimity %v (%v)", k.Name, got, ok, want, werr)
			}
			for i, ext := range k.extensions {
				raw, found := lookupFold(m, ext.ID)
				if !found {
					continue
				}
				obj, isObj := raw.(map[string]any)
				if isObj && multiValuedObject(ext.Attributes, obj) {
					continue
				}
				want, werr := ext.ValidateExtension(raw)
				var got map[string]any
				ok := isObj
				if ok {
					got, ok = k.bodyChecks[i+1].validate(obj, false)
				}
				if (werr == nil) != ok || ok && !reflect.DeepEqual(got, want) {
					t.Fatalf("%s %s: got %v (%v), elimity %v (%v)", k.Name, ext.ID, got, ok, want, werr)
				}
			}
		}
	})
}

// multiValuedObject reports whether m gives a multi-valued attribute an object rather than a
// list: elimity then keeps, of two keys naming one sub-attribute, whichever its map iteration
// meets last.
func multiValuedObject(attrs schema.Attributes, m map[string]any) bool {
	for k, v := range m {
		if a, ok := attrs.ContainsAttribute(k); ok && a.MultiValued() {
			if _, ok := v.(map[string]any); ok {
				return true
			}
		}
	}
	return false
}

// TestBodyCheckAgreesOnEveryShape compares bodyCheck with elimity on a schema with what the
// resource schemas lack: a required multi-valued attribute, every simple type, a multi-valued
// attribute given as an object.
func TestBodyCheckAgreesOnEveryShape(t *testing.T) {
	s := schema.Schema{ID: "urn:example:shapes", Attributes: schema.Attributes{
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "tags", MultiValued: true, Required: true})),
		schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "codes", MultiValued: true, Type: schema.AttributeTypeInteger()})),
		schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "score", Type: schema.AttributeTypeDecimal()})),
		schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{Name: "when"})),
		schema.SimpleCoreAttribute(schema.SimpleBinaryParams(schema.BinaryParams{Name: "blob"})),
		schema.SimpleCoreAttribute(schema.SimpleBooleanParams(schema.BooleanParams{Name: "flag", Mutability: schema.AttributeMutabilityReadOnly()})),
		schema.ComplexCoreAttribute(schema.ComplexParams{Name: "entries", MultiValued: true, SubAttributes: []schema.SimpleParams{
			schema.SimpleStringParams(schema.StringParams{Name: "value", Required: true}),
			schema.SimpleStringParams(schema.StringParams{Name: "kind"}),
		}}),
	}}
	check := newBodyCheck(s)
	for _, body := range []string{
		`{"tags":["a","b"]}`, `{"tags":[]}`, `{}`, `{"tags":null}`, `{"tags":"a"}`, `{"TAGS":["a"],"tags":["b"]}`,
		`{"tags":["a"],"codes":[1,2]}`, `{"tags":["a"],"codes":[1.5]}`, `{"tags":["a"],"codes":[]}`,
		`{"tags":["a"],"score":2.5,"when":"2026-01-02T03:04:05Z","blob":"AAAA","flag":true}`,
		`{"tags":["a"],"when":"yesterday"}`, `{"tags":["a"],"blob":"not base64!"}`, `{"tags":["a"],"flag":"x"}`,
		`{"tags":["a"],"entries":[{"value":"v","kind":"k","other":1}]}`, `{"tags":["a"],"entries":[{"kind":"k"}]}`,
		`{"tags":["a"],"entries":{"value":"v"}}`, `{"tags":["a"],"entries":{"kind":7}}`, `{"tags":["a"],"entries":7}`,
	} {
		m, err := strictjson.DecodeObject([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want, werr := s.ValidateExtension(m)
		got, ok := check.validate(m, false)
		if (werr == nil) != ok || ok && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v (%v), elimity %v (%v)", body, got, ok, want, werr)
		}
	}
}

// FuzzRepeatsInOtherCase: the pairwise comparison of a body's keys finds two keys the same
// lower-cased exactly when a set of the lower-cased keys does (the Kelvin sign lower-cases to
// "k"; the long s does not lower-case to "s").
func FuzzRepeatsInOtherCase(f *testing.F) {
	for _, seed := range []string{"a\nA", "userName\nUSERNAME\nx", "k\n\u212a", "s\n\u017f", "a\nb\nc", "k0\nk1\nk2\nk3\nk4\nk5\nk6\nk7\nk8\nk9\nk10\nk11\nk12\nk13\nk14\nk15\nk16\nK16", "k0\nk1\nk2\nk3\nk4\nk5\nk6\nk7\nk8\nk9\nk10\nk11\nk12\nk13\nk14\nk15\nk16"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		m := map[string]any{}
		for _, k := range strings.Split(joined, "\n") {
			m[k] = true
		}
		seen, want := map[string]bool{}, false
		for k := range m {
			want = want || seen[strings.ToLower(k)]
			seen[strings.ToLower(k)] = true
		}
		if got := repeatsInOtherCase(m); got != want {
			t.Fatalf("%q: %v, want %v", joined, got, want)
		}
	})
}
