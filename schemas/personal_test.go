package schemas

import (
	"testing"

	"github.com/elimity-com/scim/schema"
)

// TestEveryUserAttributeIsClassified fails when a User schema has an attribute or
// sub-attribute that anonymization has no rule for, so a new one cannot be forgotten.
func TestEveryUserAttributeIsClassified(t *testing.T) {
	schemas := []schema.Schema{User(), EnterpriseUser(), Lifecycle()}
	seen := 0
	for _, s := range schemas {
		for _, a := range s.Attributes {
			seen++
			if _, ok := UserHandling(s.ID, a.Name()); !ok {
				t.Errorf("%s:%s is not classified as personal or not", s.ID, a.Name())
			}
			for _, sub := range a.SubAttributes() {
				if _, ok := UserHandling(s.ID, a.Name()+"."+sub.Name()); !ok {
					t.Errorf("%s:%s.%s is not classified as personal or not", s.ID, a.Name(), sub.Name())
				}
			}
		}
	}
	if _, ok := UserHandling(UserURN, "externalId"); !ok {
		t.Error("externalId is not classified")
	}
	if seen < 30 {
		t.Fatalf("only %d attributes seen: the schemas did not load", seen)
	}
	// A classification for an attribute that no schema has is a typo.
	for urn, attrs := range userHandling {
		for path := range attrs {
			if !exists(schemas, urn, path) && path != "externalId" {
				t.Errorf("%s:%s is classified but no schema has it", urn, path)
			}
		}
	}
}

func exists(schemas []schema.Schema, urn, path string) bool {
	for _, s := range schemas {
		if s.ID != urn {
			continue
		}
		for _, a := range s.Attributes {
			if a.Name() == path {
				return true
			}
			for _, sub := range a.SubAttributes() {
				if a.Name()+"."+sub.Name() == path {
					return true
				}
			}
		}
	}
	return false
}
