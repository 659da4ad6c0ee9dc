//go:build ignore

// generate writes the format-1 data file fixture (v1.db) with the server code of commit
// d23d064, the last release before the storage format records its version. Run it from a
// checkout of that commit:
//
//	git worktree add /tmp/v1 d23d064 && cp generate.go /tmp/v1/ && (cd /tmp/v1 && go run generate.go OUT.db)
//
// It drives the real HTTP API, so the file holds exactly what that release wrote: two tenants,
// tokens (one revoked), users with every indexed value and enterprise managers, groups with user
// and group members, audit facts (an interaction, a campaign), a deactivated audited user, an
// anonymized user, a deleted user, and the audit trail of all of it. The file is compacted so
// that it is small.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
)

const (
	scimToken     = "fixture-scim-token-0123456789abcdefghijklmnop"
	platformToken = "fixture-platform-token-0123456789abcdefghijkl"
	acmeToken     = "fixture-acme-token-0123456789abcdefghijklmnop"
	revokedToken  = "fixture-revoked-token-0123456789abcdefghijklm"
)

var srv *httptest.Server

func call(token, method, path string, body any, want int) map[string]any {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		panic(fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, raw))
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

func user(token, userName string, extra map[string]any) string {
	b := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName, "active": true}
	for k, v := range extra {
		b[k] = v
	}
	return call(token, "POST", "/scim/v2/Users", b, 201)["id"].(string)
}

func group(token, name, ext string, members ...string) string {
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"value": m})
	}
	b := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": ms}
	if ext != "" {
		b["externalId"] = ext
	}
	return call(token, "POST", "/scim/v2/Groups", b, 201)["id"].(string)
}

func manager(id string) map[string]any {
	return map[string]any{"manager": map[string]any{"value": id}, "department": "Sales"}
}

func main() {
	out := os.Args[1]
	dir, _ := os.MkdirTemp("", "fixture")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data.db")
	store, err := storage.Open(path, storage.Options{})
	if err != nil {
		panic(err)
	}
	if _, err := store.Bootstrap(scimToken, platformToken); err != nil {
		panic(err)
	}
	actor := storage.Actor{ID: "fixture", Name: "fixture"}
	if _, err := store.CreateTenant(actor, "acme", "Acme Corp"); err != nil {
		panic(err)
	}
	if _, _, err := store.CreateToken(actor, storage.TokenSpec{Tenant: "acme", Name: "okta", Scopes: []string{"scim", "admin"}, Secret: acmeToken}); err != nil {
		panic(err)
	}
	rt, _, err := store.CreateToken(actor, storage.TokenSpec{Tenant: "acme", Name: "old", Secret: revokedToken})
	if err != nil {
		panic(err)
	}
	if _, err := store.RevokeToken(actor, "acme", rt.ID); err != nil {
		panic(err)
	}
	s, err := scimserver.New(store, scimserver.Options{Logger: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	srv = httptest.NewServer(s)

	bob := user(scimToken, "bob", map[string]any{"externalId": "ext-bob",
		"emails": []any{map[string]any{"value": "bob@example.com", "type": "work", "primary": true}}})
	alice := user(scimToken, "Alice@Example.com", map[string]any{"externalId": "ext-alice",
		"name":   map[string]any{"givenName": "Alice", "familyName": "Liddell"},
		"emails": []any{map[string]any{"value": "alice@example.com", "type": "work"}, map[string]any{"value": "Alice@Home.test", "type": "home"}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": manager(bob)})
	carol := user(scimToken, "carol", map[string]any{"externalId": "ext-carol",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": manager(bob)})
	dave := user(scimToken, "dave", map[string]any{"emails": []any{map[string]any{"value": "dave@example.com"}}})
	erin := user(scimToken, "erin", map[string]any{"externalId": "ext-erin",
		"emails": []any{map[string]any{"value": "erin@example.com"}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": manager(bob)})
	frank := user(scimToken, "frank", nil)
	for i := 0; i < 40; i++ {
		user(scimToken, fmt.Sprintf("filler%02d", i), map[string]any{"externalId": fmt.Sprintf("ext-filler%02d", i)})
	}
	leads := group(scimToken, "Leads", "", bob)
	group(scimToken, "Engineering", "ext-eng", alice, bob, leads, erin)

	// carol logged in (audited), then was deleted: deactivated instead.
	call(platformToken, "POST", "/api/v1/users/"+carol+"/interactions", map[string]any{"type": "login", "at": "2026-11-30T10:00:00Z"}, 204)
	call(scimToken, "DELETE", "/scim/v2/Users/"+carol, nil, 204)
	// dave was assigned to a campaign and unassigned again: audited, active.
	call(platformToken, "PUT", "/api/v1/campaigns/c1/participants/"+dave, nil, 204)
	call(platformToken, "DELETE", "/api/v1/campaigns/c1/participants/"+dave, nil, 204)
	call(platformToken, "PUT", "/api/v1/campaigns/c2/participants/"+dave, nil, 204)
	// erin was anonymized; frank deleted for real.
	call(scimToken, "POST", "/scim/v2/Users/"+erin+"/.anonymize", nil, 200)
	call(scimToken, "DELETE", "/scim/v2/Users/"+frank, nil, 204)
	// a PATCH and a rename
	call(scimToken, "PATCH", "/scim/v2/Users/"+bob, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "Bob Builder"}}}, 200)

	// acme: the same userName as in default, and a group.
	acmeAlice := user(acmeToken, "alice@example.com", map[string]any{"externalId": "ext-alice"})
	group(acmeToken, "Engineering", "", acmeAlice)

	ids := map[string]string{"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin, "frank": frank,
		"leads": leads, "acmeAlice": acmeAlice}
	srv.Close()
	if err := store.Close(); err != nil {
		panic(err)
	}
	if _, _, err := storage.Compact(path); err != nil {
		panic(err)
	}
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(out, raw, 0o600); err != nil {
		panic(err)
	}
	idsJSON, _ := json.MarshalIndent(ids, "", "  ")
	fmt.Printf("%s\nwritten %s (%d bytes) at %s\n", idsJSON, out, len(raw), time.Now().UTC().Format(time.RFC3339))
}
