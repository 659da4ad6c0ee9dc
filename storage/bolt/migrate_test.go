package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// The collections as the domain declares them: those format 1 kept, and the manager index
// added since.
var (
	users = &storage.Collection{Name: "users", Indexes: []storage.Index{
		{Name: "userName", Attr: "userName", Unique: true, Fold: true, Keys: stringAt("userName")},
		{Name: "externalId", Attr: "externalId", Keys: stringAt("externalId")},
		{Name: "email", Attr: "emails.value", Fold: true, Keys: emailsOf},
		{Name: "manager", Attr: enterprise + ":manager.value", Keys: managerOf},
	}}
	groups = &storage.Collection{Name: "groups", Indexes: []storage.Index{
		{Name: "displayName", Attr: "displayName", Unique: true, Fold: true, Keys: stringAt("displayName")},
		{Name: "externalId", Attr: "externalId", Keys: stringAt("externalId")},
	}}
	domain = []*storage.Collection{users, groups}
)

const enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func stringAt(name string) func(map[string]any) []string {
	return func(doc map[string]any) []string {
		s, _ := doc[name].(string)
		return []string{s}
	}
}

func emailsOf(doc map[string]any) []string {
	list, _ := doc["emails"].([]any)
	var out []string
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			s, _ := m["value"].(string)
			out = append(out, s)
		}
	}
	return out
}

func managerOf(doc map[string]any) []string {
	ext, _ := doc[enterprise].(map[string]any)
	m, _ := ext["manager"].(map[string]any)
	s, _ := m["value"].(string)
	return []string{s}
}

// The format-1 fixture (testdata/README.md): its ids and the secrets of its tokens.
const (
	acmeAlice = "01a234bc-1be9-7000-93a7-80469df0d5b8"
	alice     = "01a234bc-1b46-7000-a385-1dc5f9a7e5d1"
	bob       = "01a234bc-1b43-7000-8491-24742b6233f2"
	carol     = "01a234bc-1b49-7000-af18-5baf0361bb8c"
	dave      = "01a234bc-1b4c-7000-a5cb-f32b615563ba"
	erin      = "01a234bc-1b52-7000-97d1-ab66a5b32ce5"
	frank     = "01a234bc-1b55-7000-b340-b794c1a106bc"
	leads     = "01a234bc-1bc5-7000-a48d-e766109d2099"

	scimToken     = "fixture-scim-token-0123456789abcdefghijklmnop"
	platformToken = "fixture-platform-token-0123456789abcdefghijkl"
	acmeToken     = "fixture-acme-token-0123456789abcdefghijklmnop"
	revokedToken  = "fixture-revoked-token-0123456789abcdefghijklm"
)

// copyFixture copies the format-1 fixture into a temporary directory and returns its path.
func copyFixture(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "data.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func formatOf(t *testing.T, s *Store) uint64 {
	t.Helper()
	var v uint64
	if err := s.view(func(tx *bbolt.Tx) error { v, _ = readFormat(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return v
}

// lookups is what the fixture's indexes answer, per tenant: "index=key" -> ids.
type lookups map[string][]string

func expectLookups(t *testing.T, s storage.Store, tenant string, c *storage.Collection, want lookups) {
	t.Helper()
	err := s.Read(context.Background(), tenant, func(tx storage.Tx) error {
		for q, ids := range want {
			index, key, _ := strings.Cut(q, "=")
			got, err := tx.Lookup(c, index, key)
			if err != nil {
				return fmt.Errorf("%s %s: %w", c.Name, q, err)
			}
			if !slices.Equal(got, ids) && len(got)+len(ids) > 0 {
				t.Errorf("tenant %s, %s %s: %v, want %v", tenant, c.Name, q, got, ids)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s storage.Store, tenant string, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.Read(context.Background(), tenant, fn); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, s storage.Store, tenant string, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.Write(context.Background(), tenant, fn); err != nil {
		t.Fatal(err)
	}
}

func expectClean(t *testing.T, s *Store, when string) {
	t.Helper()
	if problems, err := s.Check(); err != nil || len(problems) > 0 {
		t.Fatalf("check %s: %v %v", when, problems, err)
	}
}

// TestFormat1Fixture opens for writing a data file written by the last release of format 1: it
// is migrated, every lookup answers as before, the index declared since (manager) is built,
// and the file stays consistent when its format-1 records change.
func TestFormat1Fixture(t *testing.T) {
	path := copyFixture(t)
	s, err := Open(path, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := formatOf(t, s); v != formatVersion {
		t.Fatalf("format %d after opening, want %d", v, formatVersion)
	}
	expectClean(t, s, "after migrating")

	var eng string // the Engineering group of the default tenant
	read(t, s, "default", func(tx storage.Tx) error {
		ids, err := tx.Lookup(groups, "displayName", "ENGINEERING")
		if len(ids) != 1 {
			return fmt.Errorf("Engineering: %v %v", ids, err)
		}
		eng = ids[0]
		return nil
	})
	expectLookups(t, s, "default", users, lookups{
		"userName=alice@example.com": {alice}, "userName=ALICE@EXAMPLE.COM": {alice}, "userName=Bob": {bob},
		"userName=carol": {carol}, "userName=dave": {dave}, "userName=erin": nil, "userName=frank": nil,
		"externalId=ext-alice": {alice}, "externalId=ext-bob": {bob}, "externalId=ext-carol": {carol},
		"externalId=EXT-ALICE": nil, "externalId=ext-erin": nil, "externalId=ext-filler07": {"01a234bc-1b6a-7000-8e58-044b7a48a8aa"},
		"email=alice@example.com": {alice}, "email=ALICE@HOME.TEST": {alice}, "email=bob@example.com": {bob},
		"email=dave@example.com": {dave}, "email=erin@example.com": nil,
		"manager=" + bob: {alice, carol}, "manager=" + alice: nil,
	})
	expectLookups(t, s, "default", groups, lookups{
		"displayName=leads": {leads}, "displayName=Engineering": {eng}, "externalId=ext-eng": {eng}, "externalId=EXT-ENG": nil,
	})
	expectLookups(t, s, "acme", users, lookups{
		"userName=Alice@example.com": {acmeAlice}, "externalId=ext-alice": {acmeAlice}, "userName=bob": nil, "manager=" + bob: nil,
	})
	read(t, s, "acme", func(tx storage.Tx) error {
		ids, err := tx.Lookup(groups, "displayName", "engineering")
		if len(ids) != 1 || ids[0] == eng || err != nil {
			t.Errorf("acme's Engineering: %v %v", ids, err)
		}
		if tx.Count(users) != 1 || tx.Count(groups) != 1 {
			t.Errorf("acme counts %d %d", tx.Count(users), tx.Count(groups))
		}
		return nil
	})

	read(t, s, "default", func(tx storage.Tx) error {
		if tx.Count(users) != 45 || tx.Count(groups) != 2 || tx.Deletes(users) != 1 || tx.Deletes(groups) != 0 {
			t.Errorf("counts %d users, %d groups, deletes %d/%d; want 45, 2, 1/0", tx.Count(users), tx.Count(groups), tx.Deletes(users), tx.Deletes(groups))
		}
		var scanned []string
		if err := tx.Scan(users, storage.Position{}, func(r storage.Record) (bool, error) {
			scanned = append(scanned, r.ID)
			return true, nil
		}); err != nil {
			return err
		}
		if len(scanned) != 45 || !slices.IsSorted(scanned) || scanned[0] != bob {
			t.Errorf("scanned %d users, sorted %v, first %s", len(scanned), slices.IsSorted(scanned), scanned[0])
		}
		var last string
		if err := tx.Scan(users, storage.Position{Offset: 44}, func(r storage.Record) (bool, error) { last = r.ID; return false, nil }); err != nil {
			return err
		}
		if last != scanned[44] {
			t.Errorf("offset 44: %s, want %s", last, scanned[44])
		}
		r, err := tx.Get(users, carol)
		if err != nil || r.Version != 2 || !bytes.Contains(r.Doc, []byte(`"active":false`)) || r.Created.IsZero() || !r.Modified.After(r.Created) {
			t.Errorf("carol: %+v %v", r, err)
		}

		var members []storage.Member
		if err := tx.Members(eng, func(m storage.Member) error { members = append(members, m); return nil }); err != nil {
			return err
		}
		want := []storage.Member{{Value: bob, Type: "User"}, {Value: alice, Type: "User"}, {Value: leads, Type: "Group"}}
		if !slices.Equal(members, want) {
			t.Errorf("Engineering's members: %+v, want %+v (erin was removed when anonymized)", members, want)
		}
		for member, want := range map[string][]string{bob: {leads, eng}, alice: {eng}, leads: {eng}, erin: nil} {
			if got, err := tx.MemberOf(member); !slices.Equal(got, want) || err != nil {
				t.Errorf("MemberOf(%s): %v %v, want %v", member, got, err, want)
			}
		}

		f, err := tx.Facts(carol)
		if err != nil || f.Interactions != 1 || f.FirstInteractionAt == nil || f.FirstInteractionAt.Format("2006-01-02T15:04:05Z07:00") != "2026-11-30T10:00:00Z" {
			t.Errorf("carol's facts: %+v %v", f, err)
		}
		if f, err = tx.Facts(dave); err != nil || f.Campaigns != 2 || f.Interactions != 0 {
			t.Errorf("dave's facts: %+v %v", f, err)
		}
		if cs, err := storage.Campaigns(tx, dave); !slices.Equal(cs, []string{"c2"}) || err != nil {
			t.Errorf("dave's campaigns: %v %v", cs, err)
		}
		if f, err = tx.Facts(erin); err != nil || f.AnonymizedAt == nil {
			t.Errorf("erin's facts: %+v %v", f, err)
		}
		if f, err = tx.Facts(bob); err != nil || f != (storage.Facts{}) {
			t.Errorf("bob's facts: %+v %v", f, err)
		}

		n, err := tx.TrailLength()
		if err != nil || n != 59 {
			t.Errorf("trail length %d %v, want 59", n, err)
		}
		var evs []storage.Event
		if err := tx.Events(0, func(ev storage.Event) (bool, error) { evs = append(evs, ev); return true, nil }); err != nil {
			return err
		}
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) || ev.Tenant != "default" || ev.Outcome != "success" || (i > 0 && ev.Time.Before(evs[i-1].Time)) {
				t.Errorf("event %d: %+v", i, ev)
			}
		}
		if len(evs) != 59 || evs[0].Operation != "tenant-create" || evs[58].Operation != "patch" || evs[58].ResourceID != bob {
			t.Errorf("events from 0: %d, first %+v, last %+v", len(evs), evs[0], evs[len(evs)-1])
		}
		daves, next, err := tx.Trail(storage.TrailQuery{ResourceID: dave})
		var ops []string
		for _, ev := range daves {
			ops = append(ops, ev.Operation+":"+ev.Related)
		}
		if want := []string{"campaign-assign:c2", "campaign-unassign:c1", "campaign-assign:c1", "create:"}; !slices.Equal(ops, want) || next != 0 || err != nil {
			t.Errorf("dave's trail: %v (next %d, %v), want %v", ops, next, err, want)
		}
		return nil
	})
	read(t, s, "acme", func(tx storage.Tx) error {
		if n, err := tx.TrailLength(); n != 6 || err != nil {
			t.Errorf("acme's trail length %d %v, want 6", n, err)
		}
		return nil
	})

	err = s.ReadAdmin(context.Background(), func(a storage.AdminTx) error {
		tenants, err := a.Tenants()
		if err != nil || len(tenants) != 2 || tenants[0].ID != "acme" || tenants[0].Name != "Acme Corp" || tenants[1].ID != "default" {
			t.Errorf("tenants: %+v %v", tenants, err)
		}
		for secret, want := range map[string]struct {
			tenant, name, scopes string
			revoked              bool
		}{
			scimToken:     {"default", "SCIMSERVER_TOKEN", "scim", false},
			platformToken: {"default", "SCIMSERVER_PLATFORM_TOKEN", "platform", false},
			acmeToken:     {"acme", "okta", "scim admin", false},
			revokedToken:  {"acme", "old", "scim", true},
		} {
			h := sha256.Sum256([]byte(secret))
			tok, err := a.TokenByHash(h[:])
			if err != nil || tok.Tenant != want.tenant || tok.Name != want.name || strings.Join(tok.Scopes, " ") != want.scopes || (tok.Revoked != nil) != want.revoked {
				t.Errorf("token %s: %+v %v, want %+v", want.name, tok, err, want)
			}
			if byID, err := a.Token(tok.ID); err != nil || byID.Hash != tok.Hash {
				t.Errorf("token %s by id: %+v %v", want.name, byID, err)
			}
		}
		toks, err := a.Tokens("acme")
		if err != nil || len(toks) != 2 || toks[0].Name != "okta" || toks[1].Name != "old" {
			t.Errorf("acme's tokens: %+v %v", toks, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Format-1 records changed: the keys their documents gave are removed, not left behind.
	write(t, s, "default", func(tx storage.Tx) error {
		doc := map[string]any{"userName": "alice2@example.com", "emails": []any{map[string]any{"value": "new@example.com"}}}
		raw, _ := json.Marshal(doc)
		if _, err := tx.Update(users, storage.Record{ID: alice, Doc: raw, Keys: users.KeysOf(doc)}); err != nil {
			return err
		}
		if err := tx.Touch(users, bob); err != nil {
			return err
		}
		if err := tx.Touch(groups, leads); err != nil {
			return err
		}
		if err := tx.Delete(users, dave); err != nil {
			return err
		}
		for _, m := range [][2]string{{eng, leads}, {leads, bob}} {
			if _, err := tx.RemoveMember(m[0], m[1]); err != nil {
				return err
			}
		}
		return tx.Delete(groups, leads)
	})
	expectClean(t, s, "after format-1 records changed")
	expectLookups(t, s, "default", users, lookups{
		"userName=alice@example.com": nil, "userName=alice2@example.com": {alice}, "email=alice@home.test": nil,
		"email=alice@example.com": nil, "email=new@example.com": {alice}, "externalId=ext-alice": nil,
		"manager=" + bob: {carol}, "userName=bob": {bob}, "email=bob@example.com": {bob}, "externalId=ext-bob": {bob},
		"userName=dave": nil, "email=dave@example.com": nil,
	})
	expectLookups(t, s, "default", groups, lookups{"displayName=leads": nil, "displayName=engineering": {eng}})
	read(t, s, "default", func(tx storage.Tx) error {
		r, err := tx.Get(users, bob)
		if err != nil || r.Version != 5 || !bytes.Contains(r.Doc, []byte(`"Bob Builder"`)) {
			t.Errorf("bob after a touch: %+v %v", r, err)
		}
		if tx.Count(users) != 44 || tx.Deletes(users) != 2 || tx.Count(groups) != 1 || tx.Deletes(groups) != 1 {
			t.Errorf("counts after deletes: %d %d, %d %d", tx.Count(users), tx.Deletes(users), tx.Count(groups), tx.Deletes(groups))
		}
		return nil
	})
	// A touch does not rewrite a record, whatever its format: it is a stamp beside it.
	err = s.view(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bktData).Bucket([]byte("default")).Bucket([]byte("users")).Get([]byte(bob))
		if _, _, err := decodeRecord(raw); err != nil || raw[0] != recordFormat1 {
			return fmt.Errorf("bob after a touch: format %d, %v; want the format-1 record as it was", raw[0], err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestSecondOpenKeepsIndexes: a file opened again with the same declarations is not migrated or
// rebuilt again: an entry planted in an index survives (and Check still reports it), and the
// layout record is unchanged.
func TestSecondOpenKeepsIndexes(t *testing.T) {
	path := copyFixture(t)
	s, err := Open(path, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	var layoutBefore []byte
	err = s.update(func(tx *bbolt.Tx) error {
		layoutBefore = clone(tx.Bucket(bktMeta).Get(keyLayout))
		return tx.Bucket(bktData).Bucket([]byte("default")).Bucket([]byte("ix.users.manager")).Put(pair("planted", alice), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTestStore(t, path, domain)
	problems, err := s.Check()
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "planted") {
		t.Fatalf("after a second open: %v %v; want the planted entry reported", problems, err)
	}
	err = s.view(func(tx *bbolt.Tx) error {
		if got := tx.Bucket(bktMeta).Get(keyLayout); !bytes.Equal(got, layoutBefore) {
			return fmt.Errorf("the layout changed at the second open: %s, was %s", got, layoutBefore)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNewerFormatRefused: a file of a format this version does not know is not opened, for
// writing or for reading, and is left as it was.
func TestNewerFormatRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	s, err := Open(path, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], formatVersion+1)
		return tx.Bucket(bktMeta).Put(keyFormat, v[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadFile(path)
	for _, readOnly := range []bool{false, true} {
		_, err := Open(path, Options{Collections: domain, ReadOnly: readOnly})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("format %d", formatVersion+1)) || !strings.Contains(err.Error(), "upgrade scimserver") {
			t.Errorf("open (read-only %v) of a newer format: %v", readOnly, err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused open changed the file")
	}
}

// TestFormat1ReadOnly: a format-1 file opened read-only (a backup verified, say) is read as it
// is: lookups through the indexes it has work, one it lacks fails clearly, and the file is not
// changed.
func TestFormat1ReadOnly(t *testing.T) {
	path := copyFixture(t)
	before, _ := os.ReadFile(path)
	s, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := formatOf(t, s); v != 1 {
		t.Errorf("a read-only open changed the format to %d", v)
	}
	expectLookups(t, s, "default", users, lookups{
		"userName=ALICE@example.com": {alice}, "externalId=ext-carol": {carol}, "email=alice@home.test": {alice},
	})
	expectLookups(t, s, "default", groups, lookups{"displayName=LEADS": {leads}})
	read(t, s, "default", func(tx storage.Tx) error {
		if _, err := tx.Lookup(users, "manager", bob); storage.ErrorCode(err) != storage.Unavailable {
			t.Errorf("a lookup through an index the file lacks: %v", err)
		}
		if r, err := tx.Get(users, dave); err != nil || !bytes.Contains(r.Doc, []byte(`"dave"`)) {
			t.Errorf("dave: %+v %v", r, err)
		}
		if tx.Count(users) != 45 || tx.Deletes(users) != 1 {
			t.Errorf("%d users, %d deleted; want 45 and 1", tx.Count(users), tx.Deletes(users))
		}
		return nil
	})
	if err := s.Write(context.Background(), "default", func(storage.Tx) error { return nil }); storage.ErrorCode(err) != storage.Unavailable {
		t.Errorf("a write to a read-only store: %v", err)
	}
	expectClean(t, s, "of a read-only format-1 file")
	s.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a read-only open changed the file")
	}
}

// TestDroppedIndexRemoved: an index no longer declared loses its buckets in every tenant and its
// place in the layout; declared again, it is built anew.
func TestDroppedIndexRemoved(t *testing.T) {
	path := copyFixture(t)
	s, err := Open(path, Options{Collections: domain})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fewer := &storage.Collection{Name: "users", Indexes: slices.DeleteFunc(slices.Clone(users.Indexes), func(ix storage.Index) bool { return ix.Name == "manager" })}
	s, err = Open(path, Options{Collections: []*storage.Collection{fewer, groups}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.view(func(tx *bbolt.Tx) error {
		for _, tenant := range []string{"default", "acme"} {
			if tx.Bucket(bktData).Bucket([]byte(tenant)).Bucket([]byte("ix.users.manager")) != nil {
				return fmt.Errorf("tenant %s keeps the dropped index's bucket", tenant)
			}
		}
		l, err := loadLayout(tx)
		if err != nil {
			return err
		}
		if l.Collections["users"].Indexes["manager"] != nil || l.Collections["users"].Indexes["email"] == nil {
			return fmt.Errorf("layout after dropping manager: %+v", l.Collections["users"].Indexes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expectClean(t, s, "after dropping an index")
	// A change while the index is not declared, then the index again: built from the records.
	write(t, s, "default", func(tx storage.Tx) error {
		doc := map[string]any{"userName": "carol", "externalId": "ext-carol", enterprise: map[string]any{"manager": map[string]any{"value": alice}}}
		raw, _ := json.Marshal(doc)
		_, err := tx.Update(fewer, storage.Record{ID: carol, Doc: raw, Keys: fewer.KeysOf(doc)})
		return err
	})
	s.Close()
	s = openTestStore(t, path, domain)
	expectLookups(t, s, "default", users, lookups{"manager=" + bob: {alice}, "manager=" + alice: {carol}})
	expectClean(t, s, "after declaring the index again")
}

// TestMigrationIsOneTransaction: a migration that cannot finish (a new unique index over values
// two records share) fails the open with a clear error and leaves the file as it was, still of
// format 1 and readable by the declarations it had.
func TestMigrationIsOneTransaction(t *testing.T) {
	path := copyFixture(t)
	before, _ := os.ReadFile(path)
	department := storage.Index{Name: "department", Unique: true, Keys: func(doc map[string]any) []string {
		ext, _ := doc[enterprise].(map[string]any)
		s, _ := ext["department"].(string)
		return []string{s}
	}}
	strict := &storage.Collection{Name: "users", Indexes: append(slices.Clone(users.Indexes), department)}
	_, err := Open(path, Options{Collections: []*storage.Collection{strict, groups}})
	if err == nil || !strings.Contains(err.Error(), "cannot build the unique index users.department") {
		t.Fatalf("open with a unique index over shared values: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed migration changed the file")
	}
	s := openTestStore(t, path, domain)
	if v := formatOf(t, s); v != formatVersion {
		t.Errorf("format %d after a later open", v)
	}
	expectClean(t, s, "after a failed migration and a good one")
}

// TestFormat4Stamps: a version stamp as format 4 wrote it (count and time, no collection) still
// counts in the record's version; it proves nothing about the collection, so a touch still
// finds out from the records, and then writes the stamp naming the collection.
func TestFormat4Stamps(t *testing.T) {
	s := openTemp(t)
	uid, gid := storage.NewID(), storage.NewID()
	err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
		if _, err := tx.Insert(users, named(uid, "u")); err != nil {
			return err
		}
		_, err := tx.Insert(groups, group(gid, "g"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktData).Bucket([]byte(defaultTenant)).Bucket(bktMemberOf)
		for _, id := range []string{uid, gid} {
			var v [16]byte
			binary.BigEndian.PutUint64(v[:], 2)
			binary.BigEndian.PutUint64(v[8:], uint64(at.UnixNano()))
			if err := b.Put(prefixOf(id), v[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	version := func(c *storage.Collection, id string) uint64 {
		t.Helper()
		var r storage.Record
		read(t, s, defaultTenant, func(tx storage.Tx) (err error) { r, err = tx.Get(c, id); return err })
		return r.Version
	}
	if v := version(users, uid); v != 3 {
		t.Fatalf("a user with a format-4 stamp of 2: version %d, want 3", v)
	}
	touch := func(c *storage.Collection, id string) error {
		return s.Write(bg, defaultTenant, func(tx storage.Tx) error { return tx.Touch(c, id) })
	}
	for i := range 2 { // before the stamps are rewritten, and after
		if err := touch(users, gid); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("round %d: a touch of a stamped group as a user: %v, want not found", i, err)
		}
		if err := touch(groups, uid); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("round %d: a touch of a stamped user as a group: %v, want not found", i, err)
		}
		if err := touch(users, uid); err != nil {
			t.Fatal(err)
		}
		if err := touch(groups, gid); err != nil {
			t.Fatal(err)
		}
	}
	if u, g := version(users, uid), version(groups, gid); u != 5 || g != 5 {
		t.Errorf("after two touches each: user version %d, group %d; want 5 and 5", u, g)
	}
	err = s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktData).Bucket([]byte(defaultTenant)).Bucket(bktMemberOf).Get(prefixOf(uid))
		if len(v) != 16+len("users") || string(v[16:]) != "users" {
			return fmt.Errorf("the user's stamp after a touch: %q, want 16 bytes and its collection", v)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	expectClean(t, s, "after touches of format-4 stamps")
}

// TestFormat5Members: a file whose members are keyed by member id (format 5) reads as before
// when opened read-only, and so does one whose members a stopped open left half rekeyed;
// opened for writing, its members are keyed by the order they joined, in batches, with the same
// members and displays, reverse entries that hold their places, changes that work as before and
// a check with nothing to report; after a compaction, new members still get places of their own.
func TestFormat5Members(t *testing.T) {
	defer func(n int) { membersBatch = n }(membersBatch)
	membersBatch = 2
	path := filepath.Join(t.TempDir(), "data.db")
	s := openAt(t, path)
	us := createUsers(t, s, 5, storage.NewID)
	g1, g2 := storage.NewID(), storage.NewID()
	write(t, s, defaultTenant, func(tx storage.Tx) error {
		for _, g := range []string{g1, g2} {
			if _, err := tx.Insert(groups, group(g, "g-"+g)); err != nil {
				return err
			}
		}
		for _, m := range []struct {
			group string
			m     storage.Member
		}{
			{g1, storage.Member{Value: us[4], Type: "User", Display: "Four"}}, {g1, storage.Member{Value: us[0], Type: "User", Display: "Zero"}},
			{g1, storage.Member{Value: us[2], Type: "User"}}, {g1, storage.Member{Value: g2, Type: "Group"}},
			{g2, storage.Member{Value: us[1], Type: "User", Display: "One"}}, {g2, storage.Member{Value: us[0], Type: "User"}},
		} {
			if err := tx.AddMember(m.group, m.m); err != nil {
				return err
			}
		}
		return nil
	})
	sorted := func(ms ...storage.Member) []storage.Member {
		slices.SortFunc(ms, func(a, b storage.Member) int { return strings.Compare(a.Value, b.Value) })
		return ms
	}
	want := map[string][]storage.Member{
		g1: sorted(storage.Member{Value: us[4], Type: "User", Display: "Four"}, storage.Member{Value: us[0], Type: "User", Display: "Zero"},
			storage.Member{Value: us[2], Type: "User"}, storage.Member{Value: g2, Type: "Group"}),
		g2: sorted(storage.Member{Value: us[1], Type: "User", Display: "One"}, storage.Member{Value: us[0], Type: "User"}),
	}
	// Back to format 5: members keyed by group and member id, reverse entries empty.
	err := s.update(func(tx *bbolt.Tx) error {
		tb := tx.Bucket(bktData).Bucket([]byte(defaultTenant))
		members, memberOf := tb.Bucket(bktMembers), tb.Bucket(bktMemberOf)
		var keys, values [][]byte
		if err := members.ForEach(func(k, v []byte) error {
			keys, values = append(keys, clone(k)), append(values, clone(v))
			return nil
		}); err != nil {
			return err
		}
		for i, k := range keys {
			gid, _, _ := bytes.Cut(k, []byte{0})
			sm, err := decodeMember(values[i])
			if err != nil {
				return err
			}
			old := fmt.Appendf(nil, `{"t":%q`, sm.Type)
			if sm.Display != "" {
				old = fmt.Appendf(old, `,"d":%q`, sm.Display)
			}
			if err := errors.Join(members.Delete(k), members.Put(pair(string(gid), sm.Value), append(old, '}')),
				memberOf.Put(pair(sm.Value, string(gid)), nil)); err != nil {
				return err
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], 5)
		return errors.Join(members.SetSequence(0), tx.Bucket(bktMeta).Put(keyFormat, v[:]))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	members := func(s *Store, g string) []storage.Member {
		t.Helper()
		var out []storage.Member
		read(t, s, defaultTenant, func(tx storage.Tx) error {
			out = nil
			return tx.Members(g, func(m storage.Member) error { out = append(out, m); return nil })
		})
		return out
	}
	expect := func(s *Store, when string) {
		t.Helper()
		for g, w := range want {
			if got := sorted(members(s, g)...); !slices.Equal(got, w) {
				t.Errorf("%s: members of %s %+v, want %+v", when, g, got, w)
			}
		}
		read(t, s, defaultTenant, func(tx storage.Tx) error {
			if m, ok, err := tx.Member(g1, us[4]); !ok || err != nil || m.Display != "Four" {
				t.Errorf("%s: Member(g1, us[4]) %+v %v %v", when, m, ok, err)
			}
			if _, ok, err := tx.Member(g2, us[4]); ok || err != nil {
				t.Errorf("%s: Member(g2, us[4]) of a non-member: %v %v", when, ok, err)
			}
			if got, err := tx.MemberOf(us[0]); err != nil || !slices.Equal(got, slices.Sorted(slices.Values([]string{g1, g2}))) {
				t.Errorf("%s: MemberOf(us[0]) %v %v", when, got, err)
			}
			return nil
		})
		expectClean(t, s, when)
	}

	ro, err := Open(path, Options{Collections: domain, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := formatOf(t, ro); v != 5 {
		t.Errorf("a read-only open changed the format to %d", v)
	}
	expect(ro, "read-only, format 5")
	ro.Close()

	// An open that stopped after the migration's first batch: format 6, marked, half rekeyed.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], formatVersion)
		if err := errors.Join(tx.Bucket(bktMeta).Put(keyFormat, v[:]), tx.Bucket(bktMeta).Put(keyMembersByID, []byte{1})); err != nil {
			return err
		}
		done, err := rekeyMembers(tx, 3)
		if done {
			return errors.New("one batch of 3 rekeyed all 6 memberships")
		}
		return err
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	if ro, err = Open(path, Options{Collections: domain, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	expect(ro, "read-only, half rekeyed")
	ro.Close()

	s = openTestStore(t, path, domain)
	if v := formatOf(t, s); v != formatVersion {
		t.Fatalf("format %d after opening, want %d", v, formatVersion)
	}
	expect(s, "migrated")
	err = s.view(func(tx *bbolt.Tx) error {
		if tx.Bucket(bktMeta).Get(keyMembersByID) != nil {
			return errors.New("the migration's mark is still there")
		}
		tb := tx.Bucket(bktData).Bucket([]byte(defaultTenant))
		return tb.Bucket(bktMembers).ForEach(func(k, v []byte) error {
			gid, seq, _ := bytes.Cut(k, []byte{0})
			sm, err := decodeMember(v)
			if rev := tb.Bucket(bktMemberOf).Get(pair(sm.Value, string(gid))); err != nil || len(seq) != 8 || !bytes.Equal(rev, seq) {
				return fmt.Errorf("migrated member %q = %q: its reverse entry holds %x", k, v, rev)
			}
			return nil
		})
	})
	if err != nil {
		t.Error(err)
	}
	write(t, s, defaultTenant, func(tx storage.Tx) error {
		if ok, err := tx.RemoveMember(g1, us[2]); !ok || err != nil {
			return fmt.Errorf("remove a migrated member: %v %v", ok, err)
		}
		return tx.AddMember(g1, storage.Member{Value: us[3], Type: "User"})
	})
	if got := members(s, g1); len(got) != 4 || got[3].Value != us[3] || slices.ContainsFunc(got, func(m storage.Member) bool { return m.Value == us[2] }) {
		t.Errorf("after a removal and an add, the members of g1: %+v, want us[3] last and no us[2]", got)
	}
	expectClean(t, s, "after changes")

	s.Close()
	if _, _, err := Compact(path); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path, domain)
	write(t, s, defaultTenant, func(tx storage.Tx) error {
		return tx.AddMember(g2, storage.Member{Value: us[2], Type: "User"})
	})
	if got := members(s, g2); len(got) != 3 || got[2].Value != us[2] {
		t.Errorf("after a compaction, a new member of g2: %+v, want 3 with us[2] last", got)
	}
	if got := members(s, g1); len(got) != 4 {
		t.Errorf("after a compaction and an add to g2, g1 has %+v", got)
	}
	expectClean(t, s, "after a compaction")
}
