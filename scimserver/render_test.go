package scimserver

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/strictjson"
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

// TestAppendLifecycleIsJSONMarshal: the lifecycle extension is written exactly as json.Marshal
// writes lifecycleOf, for every combination of facts.
func TestAppendLifecycleIsJSONMarshal(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 14, 3, 512_000_000, time.UTC)
	times := []*time.Time{nil, &at}
	for _, n := range []int{0, 3} {
		for _, c := range []int{0, 1, 12} {
			for _, li := range times {
				for _, a := range times {
					for _, sc := range times {
						f := storage.Facts{Interactions: n, Campaigns: c, LastInteractionAt: li, FirstInteractionAt: li, AnonymizedAt: a, ScrubbedAt: sc}
						want, _ := json.Marshal(lifecycleOf(f))
						if got := appendValue(nil, lifecycleOf(f)); string(got) != string(want) {
							t.Errorf("%+v: %s, json.Marshal %s", f, got, want)
						}
					}
				}
			}
		}
	}
}

// TestAppendValueIsJSONMarshal: server-built values are written exactly as json.Marshal writes
// them, and what the writer does not know goes through json.Marshal.
func TestAppendValueIsJSONMarshal(t *testing.T) {
	for _, v := range []any{
		[]any{},
		[]any{map[string]any{"value": "g1", "$ref": "https://x/Groups/g1", "display": `Sales & "Ops" <EU>`, "type": "direct"}},
		map[string]any{"b": "1", "B": true, "a\x00": 3, "é": []any{"x", false}, "": map[string]any{}},
		map[string]any{"n": json.Number("1.50"), "f": 2.5, "t": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		[]any(nil), map[string]any(nil), nil, -7, "Zoë\u2028",
	} {
		want, _ := json.Marshal(v)
		if got := appendValue([]byte("x"), v); string(got) != "x"+string(want) {
			t.Errorf("%v: %s, json.Marshal %s", v, got, want)
		}
	}
}

// FuzzEncodeDoc: a stored document is written exactly as json.Marshal writes it, whether as a
// body decodes or as validation makes it.
func FuzzEncodeDoc(f *testing.F) {
	for _, seed := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com","active":true,` +
			`"name":{"givenName":"Zoë","familyName":"<O'Brien & Co>"},"emails":[{"value":"a@example.com","primary":true}],` +
			`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","manager":{"value":"m"}}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x\u0000\u2028\ud800","x":[1.50,-0,1e400,null,{}]}`,
	} {
		f.Add([]byte(seed))
	}
	users := Users()
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := strictjson.DecodeObject(body)
		if err != nil {
			return
		}
		same := func(doc map[string]any) {
			want, werr := json.Marshal(doc)
			got, gerr := encodeDoc(doc)
			if (werr == nil) != (gerr == nil) || (werr == nil && string(got) != string(want)) {
				t.Fatalf("encodeDoc %s (%v), json.Marshal %s (%v)", got, gerr, want, werr)
			}
		}
		same(m)
		if doc, _, err := users.docFromBody(m); err == nil {
			same(doc)
		}
	})
}

// TestMemberListIsMembersOf: a group's member list, written straight from the membership index,
// is byte for byte json.Marshal of what membersOf builds for the map path.
func TestMemberListIsMembersOf(t *testing.T) {
	s, store := newService(t)
	u := create(t, s, s.users, map[string]any{"userName": "member@example.com"})
	inner := create(t, s, s.groups, map[string]any{"displayName": "Inner"})
	g := create(t, s, s.groups, map[string]any{"displayName": "Outer", "members": []any{
		map[string]any{"value": u, "display": `Q"uote & é`}, map[string]any{"value": inner}}})
	const base = "https://scim.example.com/scim/v2"
	err := store.Read(bg, DefaultTenant, func(tx storage.Tx) error {
		list, err := s.membersOf(tx, g, base)
		if err != nil {
			return err
		}
		got, err := s.relatedJSON(tx, s.groups, g, base)
		if err != nil {
			return err
		}
		want, _ := json.Marshal(list)
		if len(list) != 2 || string(got) != string(want) {
			t.Errorf("members written %s, membersOf %s", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
