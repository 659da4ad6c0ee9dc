package scimserver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/storage"
)

// FuzzFilter parses arbitrary filters against both resource types and evaluates what parses
// against a sample user: it must never panic.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a"`, `emails[type eq "work" and primary eq true]`, `not (title pr)`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`,
		`meta.created gt "2020-01-01T00:00:00Z"`, `members[value eq "x"]`, `(a eq 1) or b ne true`,
		`userName eq "a" or 1 eq 1`, `emails.value co "@"`, `x[y[z eq 1]]`, `name.givenName sw "J"`,
	} {
		f.Add(s)
	}
	user := map[string]any{"userName": "Alice", "title": "x", "active": true, "id": "1",
		"emails": []any{map[string]any{"value": "a@b", "type": "work", "primary": true}},
		"name":   map[string]any{"givenName": "A"}, "meta": map[string]any{"created": "2024-01-01T00:00:00Z"},
		enterpriseURN: map[string]any{"department": "x", "manager": map[string]any{"value": "2"}}}
	users, groups := userType(), groupType()
	f.Fuzz(func(t *testing.T, s string) {
		for _, rt := range []*resourceType{users, groups} {
			e, err := rt.parseFilter(s)
			if err != nil {
				if toSCIM(err).Status != 400 {
					t.Fatalf("%q: %v", s, err)
				}
				continue
			}
			ev := evaluator{rt: rt, isMember: func(string) bool { return false }}
			ev.match(e, user)
		}
	})
}

// FuzzRequest sends arbitrary bodies to the write endpoints and arbitrary query strings to the
// list endpoint of a real router over a real store: every answer is a SCIM response below 500.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"b","emails":[{"value":"x","primary":"True"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"x"}}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"g","members":[{"value":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"h","members":[{"displayName":"new User","value":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:lifecycle:2.0:User:anonymized"},{"op":"replace","path":"meta.created","value":"x"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"schemas":["x"],"department":"X","id":"y"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"a\"","count":-1}`,
		`[`, `{"a":{"a":{"a":{"a":1}}}}`, "\x00",
	} {
		f.Add(s, "filter=userName+eq+%22a%22&count=5")
	}
	store, err := storage.Open(filepath.Join(f.TempDir(), "fuzz.db"), storage.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	if err := store.Bootstrap(storage.EnvTokens{SCIM: testToken}, nil); err != nil {
		f.Fatal(err)
	}
	srv, err := New(store, Options{Logger: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	var uid string
	_ = store.Write(storage.DefaultTenant, func(tx *storage.Tx) error {
		u, err := tx.CreateUser(storage.User{ID: storage.NewID(), Doc: []byte(`{"userName":"seed"}`), Keys: storage.UserKeys{UserName: "seed"}})
		uid = u.ID
		return err
	})
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, target := range []struct{ method, path string }{
			{"POST", "/scim/v2/Users"}, {"POST", "/scim/v2/Groups"}, {"PATCH", "/scim/v2/Users/" + uid},
			{"PUT", "/scim/v2/Users/" + uid}, {"POST", "/scim/v2/.search"}, {"GET", "/scim/v2/Users?" + query},
		} {
			req, err := http.NewRequest(target.method, target.path, bytes.NewBufferString(body))
			if err != nil {
				continue
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("Content-Type", "application/scim+json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", target.method, target.path, body, rec.Code, rec.Body)
			}
		}
	})
}
