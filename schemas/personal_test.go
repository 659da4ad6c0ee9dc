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
	if seen < 30 {
		t.Fatalf("only %d attributes seen: the schemas did not load", seen)
	}
	// A classification for an attribute that no schema has is a typo.
	for urn, attrs := range userHandling {
		for path := range attrs {
			if !exists(schemas, urn, path) {
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

// TestRandomFormsFitTheirAttributes: an attribute anonymization replaces with random characters
// is a free-form string (or binary, for random bytes): never a reference, a dateTime, or a string
// with canonical values, which random characters would make invalid. Emails and phone numbers get
// their own forms, on the attributes that hold them.
func TestRandomFormsFitTheirAttributes(t *testing.T) {
	randomized := 0
	for _, s := range []schema.Schema{User(), EnterpriseUser(), Lifecycle()} {
		check := func(path string, a schema.CoreAttribute) {
			h, _ := UserHandling(s.ID, path)
			if a.AttributeType() == "complex" || (h != Randomize && h != RandomEmail && h != RandomPhone) {
				return
			}
			randomized++
			typ := a.AttributeType()
			switch {
			case len(a.CanonicalValues()) > 0:
				t.Errorf("%s has canonical values that random characters would not be", path)
			case h == Randomize && typ != "string" && typ != "binary":
				t.Errorf("%s is a %s, which random characters are not", path, typ)
			case h == RandomEmail && path != "emails.value", h == RandomPhone && path != "phoneNumbers.value":
				t.Errorf("%s is not where an email or phone number is kept", path)
			}
		}
		for _, a := range s.Attributes {
			check(a.Name(), a)
			for _, sub := range a.SubAttributes() {
				check(a.Name()+"."+sub.Name(), sub)
			}
		}
	}
	if randomized < 20 {
		t.Fatalf("only %d randomized attributes seen", randomized)
	}
}
