package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/elimity-com/scim/schema"

	"github.com/scimserver/scimserver/schemas"
)

const (
	enterpriseURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	testExtURN    = "urn:example:params:scim:schemas:extension:test:2.0:User"
)

func userSchema() Schema {
	return Schema{Core: schemas.User(), Extensions: []schema.Schema{schemas.EnterpriseUser(), schemas.Lifecycle()}}
}

func groupSchema() Schema {
	return Schema{Core: schemas.Group()}
}

// testSchema is the User schema plus an extension exercising types and mutabilities that the
// standard schemas lack.
func testSchema() Schema {
	s := userSchema()
	s.Extensions = append(s.Extensions, schema.Schema{
		ID: testExtURN,
		Attributes: []schema.CoreAttribute{
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "badge", Type: schema.AttributeTypeInteger()})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "score", Type: schema.AttributeTypeDecimal()})),
			schema.SimpleCoreAttribute(schema.SimpleDateTimeParams(schema.DateTimeParams{Name: "since"})),
			schema.SimpleCoreAttribute(schema.SimpleBinaryParams(schema.BinaryParams{Name: "cert"})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "serial", Mutability: schema.AttributeMutabilityImmutable()})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "audit", Mutability: schema.AttributeMutabilityReadOnly()})),
			schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{Name: "tags", MultiValued: true})),
			schema.SimpleCoreAttribute(schema.SimpleNumberParams(schema.NumberParams{Name: "levels", Type: schema.AttributeTypeInteger(), MultiValued: true})),
			schema.ComplexCoreAttribute(schema.ComplexParams{Name: "badges", MultiValued: true, SubAttributes: []schema.SimpleParams{
				schema.SimpleStringParams(schema.StringParams{Name: "value"}),
				schema.SimpleDateTimeParams(schema.DateTimeParams{Name: "issued"}),
				schema.SimpleNumberParams(schema.NumberParams{Name: "level", Type: schema.AttributeTypeDecimal()}),
			}}),
		},
	})
	return s
}

// body wraps operations in a PatchOp message.
func body(ops ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

// jsonDoc decodes a document the way the server stores it: numbers as json.Number.
func jsonDoc(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test document %s: %v", s, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func mustParse(t testing.TB, b string, s Schema) []Operation {
	t.Helper()
	ops, err := Parse([]byte(b), s)
	if err != nil {
		t.Fatalf("Parse(%s): %v", b, err)
	}
	return ops
}

// checkError asserts that err is an *Error of the given SCIM type with status 400 whose detail
// leaks none of the secrets.
func checkError(t *testing.T, err error, scimType string, secrets ...string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error = %v, want *Error with scimType %s", err, scimType)
	}
	if pe.ScimType != scimType || pe.Status != 400 {
		t.Fatalf("error = %d %s (%s), want 400 %s", pe.Status, pe.ScimType, pe.Detail, scimType)
	}
	if pe.Detail == "" {
		t.Fatal("error detail is empty")
	}
	for _, s := range secrets {
		if strings.Contains(pe.Detail, s) {
			t.Fatalf("error detail %q contains the value %q", pe.Detail, s)
		}
	}
}

func deepEqualJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("%s =\n  %s\nwant\n  %s", what, g, w)
	}
}
