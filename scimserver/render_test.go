package scimserver

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// TestRawRenderMatchesMapRender: the fast path that splices stored documents must produce the
// same resource as the general path, for users with and without extensions, groups and facts,
// and for groups with and without members.
func TestRawRenderMatchesMapRender(t *testing.T) {
	s, store := newService(t)
	plain := create(t, s, s.users, map[string]any{"userName": "plain@example.com"})
	rich := create(t, s, s.users, map[string]any{"userName": "rich@example.com", "name": map[string]any{"givenName": `Q"uote\`},
		"emails": []any{map[string]any{"value": "r@example.com", "type": "work"}}, "nickName": `"` + enterpriseURN + `":{`,
		enterpriseURN: map[string]any{"department": "D"}})
	if err := s.RecordInteraction(bg, DefaultTenant, testActor, rich, "login", time.Time{}); err != nil {
		t.Fatal(err)
	}
	g := create(t, s, s.groups, map[string]any{"displayName": "G", "members": []any{map[string]any{"value": plain}, map[string]any{"value": rich}}})
	empty := create(t, s, s.groups, map[string]any{"displayName": "Empty"})
	const base = "https://scim.example.com/scim/v2"
	err := store.Read(bg, DefaultTenant, func(tx storage.Tx) error {
		for _, c := range []struct {
			k  *Kind
			id string
		}{{s.users, plain}, {s.users, rich}, {s.groups, g}, {s.groups, empty}} {
			rec, err := c.k.get(tx, c.id)
			if err != nil {
				return err
			}
			raw, err := s.renderRaw(tx, c.k, rec, base)
			if err != nil {
				return err
			}
			m, err := s.render(tx, c.k, rec, base, projection{})
			if err != nil {
				return err
			}
			viaMap, _ := json.Marshal(m)
			var a, b any
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatalf("raw render of %s is not JSON: %s", c.id, raw)
			}
			_ = json.Unmarshal(viaMap, &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("renders differ for %s:\nraw %s\nmap %s", c.id, raw, viaMap)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
