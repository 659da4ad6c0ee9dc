package scimserver

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// TestRawRenderMatchesMapRender: the fast path that splices stored documents must produce the
// same resource as the general path, for users with and without extensions, groups and facts,
// and for groups with and without members.
func TestRawRenderMatchesMapRender(t *testing.T) {
	e := newEnv(t)
	plain := e.createUser("plain@example.com", nil)
	rich := e.createUser("rich@example.com", map[string]any{"name": map[string]any{"givenName": `Q"uote\`},
		"emails": []any{map[string]any{"value": "r@example.com", "type": "work"}}, "nickName": `"` + enterpriseURN + `":{`,
		enterpriseURN: map[string]any{"department": "D"}})
	e.api("POST", "/api/v1/users/"+rich+"/interactions", map[string]any{"type": "login"}).must(t, 204)
	g := e.createGroup("G", plain, rich)
	empty := e.createGroup("Empty")
	const base = "https://scim.example.com/scim/v2"
	err := e.store.Read(storage.DefaultTenant, func(tx *storage.Tx) error {
		for _, c := range []struct {
			rt *resourceType
			id string
		}{{e.server.users, plain}, {e.server.users, rich}, {e.server.groups, g}, {e.server.groups, empty}} {
			rec, err := c.rt.get(tx, c.id)
			if err != nil {
				return err
			}
			raw, err := e.server.renderRaw(tx, c.rt, rec, base)
			if err != nil {
				return err
			}
			m, err := e.server.render(tx, c.rt, rec, base, projection{})
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
