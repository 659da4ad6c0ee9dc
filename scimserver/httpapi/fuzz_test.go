package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

// FuzzRequest sends arbitrary bodies to the write endpoints and arbitrary query strings to the
// list endpoint and the change feed of a real router over a real store: every answer is a SCIM
// response below 500.
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
	f.Add("", "after=0&limit=5&wait=0.5")
	f.Add("", "after=18446744073709551615&wait=1e400")
	store, svc := openService(f, filepath.Join(f.TempDir(), "fuzz.db"))
	f.Cleanup(func() { store.Close() })
	srv, err := New(svc, Options{Logger: zerolog.Nop(), FeedMaxWait: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	var uid string
	_ = store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		var err error
		uid, err = putRecord(tx, users, map[string]any{"userName": "seed"})
		return err
	})
	f.Fuzz(func(t *testing.T, body, query string) {
		for _, target := range []struct{ method, path string }{
			{"POST", "/scim/v2/Users"}, {"POST", "/scim/v2/Groups"}, {"PATCH", "/scim/v2/Users/" + uid},
			{"PUT", "/scim/v2/Users/" + uid}, {"POST", "/scim/v2/.search"}, {"GET", "/scim/v2/Users?" + query},
			{"GET", "/api/v1/changes?" + query},
		} {
			req, err := http.NewRequest(target.method, target.path, bytes.NewBufferString(body))
			if err != nil {
				continue
			}
			token := testToken
			if strings.HasPrefix(target.path, "/api/") {
				token = testPlatformToken
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/scim+json")
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", target.method, target.path, body, rec.Code, rec.Body)
			}
		}
	})
}
