package scimserver

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
)

// personal creates a user with distinctive personal values and returns its id and the values.
func personal(t *testing.T, s *Service, tag string) (string, []string) {
	t.Helper()
	vals := []string{"Xylo" + tag + "@corp.example", "Xylogiven" + tag, "Xylofamily" + tag, "Xylowork" + tag + "@corp.example"}
	id := create(t, s, s.users, map[string]any{
		"userName":    vals[0],
		"name":        map[string]any{"givenName": vals[1], "familyName": vals[2]},
		"emails":      []any{map[string]any{"value": vals[3], "type": "work"}},
		enterpriseURN: map[string]any{"department": "Assessment"},
	})
	return id, vals
}

// anonymizeIn runs the anonymization transaction alone, as a process that died before its
// scrub would have.
func anonymizeIn(t *testing.T, s *Service, id string, pre *erasure) {
	t.Helper()
	if err := s.write(bg, DefaultTenant, func(tx storage.Tx) error {
		_, err := s.anonymizeTx(tx, testActor, id, pre)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOwedScrubRunsAtStart: an anonymization whose scrub never ran (the process died between
// the commit and the scrub) is scrubbed when the file is next opened, and the user's scrubbedAt
// and trail record it.
func TestOwedScrubRunsAtStart(t *testing.T) {
	if onPostgres {
		t.Skip("bbolt only: the overwrite of the data file's free pages")
	}
	path := filepath.Join(t.TempDir(), "data.db")
	store, err := bolt.Open(path, bolt.Options{Collections: Collections(), ErasureCleared: ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	s := New(store, Options{})
	if err := s.Bootstrap(bg, EnvTokens{}, nil); err != nil {
		t.Fatal(err)
	}
	id, vals := personal(t, s, "55")
	anonymizeIn(t, s, id, nil)
	if n, _, err := store.PendingErasures(); err != nil || n != 1 {
		t.Fatalf("the anonymization did not leave its erasure pending: %d %v", n, err)
	}
	store.Close()
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, []byte(vals[1])) {
		t.Fatal("the erased values are gone from the file before the scrub: the test shows nothing")
	}

	store, err = bolt.Open(path, bolt.Options{Collections: Collections(), ErasureCleared: ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n, _, err := store.PendingErasures(); err != nil || n != 0 {
		t.Fatalf("the owed scrub did not run at start: %d %v", n, err)
	}
	raw, _ := os.ReadFile(path)
	for _, v := range vals {
		if bytes.Contains(raw, []byte(v)) || bytes.Contains(raw, []byte(storage.Fold(v))) {
			t.Errorf("the file still holds %q", v)
		}
	}
	a, err := New(store, Options{}).UserAudit(bg, DefaultTenant, id, TrailQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if a.AnonymizedAt == nil || a.ScrubbedAt == nil || a.ScrubbedAt.Before(*a.AnonymizedAt) {
		t.Fatalf("anonymizedAt %v, scrubbedAt %v", a.AnonymizedAt, a.ScrubbedAt)
	}
	if len(a.Trail) == 0 || a.Trail[0].Operation != opScrub {
		t.Errorf("the newest event of the trail is not the scrub: %+v", a.Trail)
	}
}

// TestPrefetchedErasureOnlyWhenCurrent: the anonymization worked out ahead of the write (so the
// single writer finds every page it needs in memory) is applied only to the version it was
// worked out from, and only while its new userName is free; otherwise the write works it out
// afresh, keeping what changed meanwhile.
func TestPrefetchedErasureOnlyWhenCurrent(t *testing.T) {
	s, _ := newService(t)
	read := func(id string) map[string]any {
		t.Helper()
		r, err := s.Get(bg, DefaultTenant, s.users, id, View{}, Conditions{})
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(r.JSON, &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	// The user changed after the read ahead: a kept attribute keeps its new value.
	a, _ := personal(t, s, "12")
	pre := s.prefetchErasure(bg, DefaultTenant, a)
	if pre == nil {
		t.Fatal("nothing worked out ahead")
	}
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"` +
		enterpriseURN + `:department","value":"Moved"}]}`
	if _, err := s.Patch(bg, DefaultTenant, testActor, s.users, a, []byte(patch), Conditions{}, "", nil); err != nil {
		t.Fatal(err)
	}
	anonymizeIn(t, s, a, pre)
	doc := read(a)
	if dept := doc[enterpriseURN].(map[string]any)["department"]; dept != "Moved" || doc["userName"] == pre.doc["userName"] {
		t.Fatalf("a stale read-ahead was applied: department %v, userName %v", dept, doc["userName"])
	}
	// Its userName was taken meanwhile: another one is drawn.
	b, _ := personal(t, s, "13")
	pre = s.prefetchErasure(bg, DefaultTenant, b)
	create(t, s, s.users, map[string]any{"userName": pre.doc["userName"]})
	anonymizeIn(t, s, b, pre)
	if name, _ := read(b)["userName"].(string); name == pre.doc["userName"] || !strings.HasPrefix(name, "anonymized-") {
		t.Fatalf("userName after a clash: %v", name)
	}
	// Current: applied as worked out.
	c, _ := personal(t, s, "14")
	pre = s.prefetchErasure(bg, DefaultTenant, c)
	anonymizeIn(t, s, c, pre)
	if name := read(c)["userName"]; name != pre.doc["userName"] {
		t.Fatalf("userName %v, want the one worked out ahead, %v", name, pre.doc["userName"])
	}
	if problems, err := checkStore(s.store); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}
