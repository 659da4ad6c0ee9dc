package storagetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
)

var adminTests = []test{
	{"tenants", testTenants},
	{"unknown tenant", testUnknownTenant},
	{"tenant data through In", testAdminIn},
	{"tenant isolation", testIsolation},
	{"tokens", testTokens},
	{"token hashes", testTokenHashes},
}

func sameTenant(a, b storage.Tenant) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Created.Equal(b.Created) && a.Disabled == b.Disabled
}

func testTenants(t *testing.T, open Opener) {
	e := newEnv(t, open)
	created := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	acme := storage.Tenant{ID: "acme", Name: "Acme Corp", Created: created}
	e.admin(func(a storage.AdminTx) error { return a.PutTenant(acme) })
	err := e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		got, err := a.Tenant("acme")
		if err != nil || !sameTenant(got, acme) {
			return fmt.Errorf("Tenant(acme): %+v %v", got, err)
		}
		all, err := a.Tenants()
		if err != nil {
			return err
		}
		var names []string
		for _, tn := range all {
			names = append(names, tn.ID)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"acme", tenantA, tenantB}) {
			return fmt.Errorf("the tenants: %v", names)
		}
		if _, err := a.Tenant("nope"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("the tenant of an unknown id: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A new tenant is empty and usable at once.
	err = e.s.Read(ctx, "acme", func(tx storage.Tx) error {
		n, err := tx.TrailLength()
		if tx.Count(People) != 0 || tx.Count(Teams) != 0 || n != 0 || err != nil || tx.Tenant() != "acme" {
			return fmt.Errorf("a new tenant holds %d people, %d teams, %d events (%v)", tx.Count(People), tx.Count(Teams), n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	id := storage.NewID()
	err = e.s.Write(ctx, "acme", func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, id, obj{"userName": "a"})); err != nil {
			return err
		}
		return tx.Append(storage.Event{Operation: "create", ResourceID: id, Outcome: "success"})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Updating the tenant keeps its data.
	acme.Name, acme.Disabled = "Acme", true
	e.admin(func(a storage.AdminTx) error { return a.PutTenant(acme) })
	err = e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		got, err := a.Tenant("acme")
		if err != nil || !sameTenant(got, acme) {
			return fmt.Errorf("after an update, Tenant(acme): %+v %v", got, err)
		}
		tx, err := a.In("acme")
		if err != nil {
			return err
		}
		n, err := tx.TrailLength()
		if !tx.Exists(People, id) || n != 1 || err != nil {
			return fmt.Errorf("updating the tenant lost its data: record %v, %d events", tx.Exists(People, id), n)
		}
		ids, err := tx.Lookup(People, "userName", "A")
		if err != nil || !slices.Equal(ids, []string{id}) {
			return fmt.Errorf("updating the tenant lost its index: %v %v", ids, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testUnknownTenant(t *testing.T, open Opener) {
	e := newEnv(t, open)
	ran := false
	wantCode(t, "Read of an unknown tenant", e.s.Read(ctx, "nope", func(storage.Tx) error { ran = true; return nil }), storage.NotFound)
	wantCode(t, "Write of an unknown tenant", e.s.Write(ctx, "nope", func(tx storage.Tx) error {
		ran = true
		_, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": "x"}))
		return err
	}), storage.NotFound)
	if ran {
		t.Error("a transaction over an unknown tenant ran its function")
	}
	err := e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		_, err := a.In("nope")
		return err
	})
	wantCode(t, "ReadAdmin In of an unknown tenant", err, storage.NotFound)
	err = e.s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		_, err := a.In("nope")
		return err
	})
	wantCode(t, "WriteAdmin In of an unknown tenant", err, storage.NotFound)
	err = e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		if tenants, err := a.Tenants(); err != nil || len(tenants) != 2 {
			return fmt.Errorf("tenants after failed transactions over unknown ones: %+v %v", tenants, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// testAdminIn: an operator's change and a tenant's data commit together, or not at all.
func testAdminIn(t *testing.T, open Opener) {
	e := newEnv(t, open)
	id := storage.NewID()
	e.admin(func(a storage.AdminTx) error {
		if err := a.PutTenant(storage.Tenant{ID: "new", Name: "New", Created: a.Now()}); err != nil {
			return err
		}
		tx, err := a.In("new")
		if err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, id, obj{"userName": "first"})); err != nil {
			return err
		}
		if err := tx.Append(storage.Event{Operation: "tenant.create", Outcome: "success"}); err != nil {
			return err
		}
		// A second view of the same tenant in the same transaction sees the first's changes,
		// and touching the record it inserted leaves it at version 1.
		again, err := a.In("new")
		if err != nil {
			return err
		}
		if !again.Exists(People, id) {
			return fmt.Errorf("a second In does not see the first's insert")
		}
		return again.Touch(People, id)
	})
	var events []storage.Event
	err := e.s.Read(ctx, "new", func(tx storage.Tx) error {
		r, err := tx.Get(People, id)
		if err != nil || r.Version != 1 {
			return fmt.Errorf("the record inserted through In: %+v %v", r, err)
		}
		return tx.Events(0, func(ev storage.Event) (bool, error) { events = append(events, ev); return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Tenant != "new" || events[0].Operation != "tenant.create" {
		t.Errorf("the event appended through In: %+v", events)
	}
	// A failing admin transaction leaves neither the tenant, its token nor its data.
	err = e.s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		if err := a.PutTenant(storage.Tenant{ID: "doomed", Created: a.Now()}); err != nil {
			return err
		}
		if err := a.PutToken(storage.Token{ID: "tok-doomed", Tenant: "doomed", Created: a.Now(), Hash: hashOf("doomed")}); err != nil {
			return err
		}
		tx, err := a.In("doomed")
		if err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": "x"})); err != nil {
			return err
		}
		tx, err = a.In(tenantA)
		if err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": "y"})); err != nil {
			return err
		}
		return errSentinel
	})
	if err != errSentinel {
		t.Errorf("WriteAdmin returned %v, not the error of fn", err)
	}
	err = e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		if _, err := a.Tenant("doomed"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("a failed admin transaction left its tenant: %v", err)
		}
		if _, err := a.Token("tok-doomed"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("a failed admin transaction left its token: %v", err)
		}
		if _, err := a.In("doomed"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("a failed admin transaction left its tenant's data: %v", err)
		}
		tx, err := a.In(tenantA)
		if err != nil {
			return err
		}
		if tx.Count(People) != 0 {
			return fmt.Errorf("a failed admin transaction left a record in another tenant")
		}
		// Writes through a read transaction's In fail.
		if _, err := tx.Insert(People, rec(People, storage.NewID(), obj{"userName": "z"})); err == nil {
			return fmt.Errorf("an insert through ReadAdmin's In succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.read(func(tx storage.Tx) error {
		if tx.Count(People) != 0 {
			t.Error("Insert through ReadAdmin's In stored a record")
		}
		return nil
	})
}

// testIsolation: nothing of one tenant is visible in, or in the way of, another.
func testIsolation(t *testing.T, open Opener) {
	e := newEnv(t, open)
	person, team := storage.NewID(), storage.NewID()
	e.write(func(tx storage.Tx) error {
		if _, err := tx.Insert(People, rec(People, person, obj{"userName": "same", "externalId": "x", "emails": emails("s@x"), "tags": strs("t")})); err != nil {
			return err
		}
		if _, err := tx.Insert(Teams, rec(Teams, team, obj{"displayName": "Team"})); err != nil {
			return err
		}
		if err := tx.AddMember(team, storage.Member{Value: person, Type: "User"}); err != nil {
			return err
		}
		if err := tx.PutFacts(person, storage.Facts{Interactions: 1}); err != nil {
			return err
		}
		if _, _, err := tx.AddParticipant("c1", person); err != nil {
			return err
		}
		return tx.Append(storage.Event{Operation: "create", ResourceID: person, Outcome: "success"})
	})
	check := func(tx storage.Tx) error {
		var problems []string
		bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		if tx.Exists(People, person) || tx.Exists(Teams, team) {
			bad("records")
		}
		if _, err := tx.Get(People, person); storage.ErrorCode(err) != storage.NotFound {
			bad("Get: %v", err)
		}
		if tx.Count(People) != 0 || tx.Count(Teams) != 0 || tx.Deletes(People) != 0 {
			bad("counts")
		}
		for ix, key := range map[string]string{"userName": "same", "externalId": "x", "email": "s@x", "tag": "t"} {
			if ids, err := tx.Lookup(People, ix, key); len(ids) != 0 || err != nil {
				bad("index %s: %v %v", ix, ids, err)
			}
		}
		n := 0
		if err := tx.Scan(People, storage.Position{}, func(storage.Record) (bool, error) { n++; return true, nil }); err != nil || n != 0 {
			bad("Scan: %d %v", n, err)
		}
		if err := tx.ScanIndex(Teams, "displayName", false, 0, func(string) (bool, error) { n++; return true, nil }); err != nil || n != 0 {
			bad("ScanIndex: %d %v", n, err)
		}
		if err := tx.Members(team, func(storage.Member) error { n++; return nil }); err != nil || n != 0 {
			bad("Members: %d %v", n, err)
		}
		if _, ok, _ := tx.Member(team, person); ok {
			bad("Member")
		}
		if gs, err := tx.MemberOf(person); len(gs) != 0 || err != nil {
			bad("MemberOf: %v %v", gs, err)
		}
		if f, err := tx.Facts(person); f.Interactions != 0 || err != nil {
			bad("Facts: %+v %v", f, err)
		}
		if cs, err := storage.Campaigns(tx, person); len(cs) != 0 || err != nil {
			bad("Campaigns: %v %v", cs, err)
		}
		if l, err := tx.TrailLength(); l != 0 || err != nil {
			bad("TrailLength: %d %v", l, err)
		}
		if evs, _, err := tx.Trail(storage.TrailQuery{ResourceID: person}); len(evs) != 0 || err != nil {
			bad("Trail: %v %v", evs, err)
		}
		if err := tx.Events(0, func(storage.Event) (bool, error) { n++; return true, nil }); err != nil || n != 0 {
			bad("Events: %d %v", n, err)
		}
		if len(problems) > 0 {
			return fmt.Errorf("tenant %s sees tenant %s's %v", tx.Tenant(), tenantA, problems)
		}
		return nil
	}
	if err := e.s.Read(ctx, tenantB, check); err != nil {
		t.Error(err)
	}
	// The same keys, ids and memberships are free in the other tenant.
	err := e.s.Write(ctx, tenantB, func(tx storage.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		if _, err := tx.Insert(People, rec(People, person, obj{"userName": "SAME"})); err != nil {
			return err
		}
		if err := tx.AddMember(team, storage.Member{Value: person, Type: "User", Display: "b"}); err != nil {
			return err
		}
		if _, first, err := tx.AddParticipant("c1", person); err != nil || !first {
			return fmt.Errorf("a first assignment in tenant b: %v %v", first, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.members(team); len(got) != 1 || got[0].Display != "" {
		t.Errorf("tenant a's membership after tenant b's: %+v", got)
	}
	if got := e.get(People, person); !bytes.Contains(got.Doc, []byte(`"same"`)) {
		t.Errorf("tenant a's record after tenant b's insert: %s", got.Doc)
	}
}

func hashOf(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func rawHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func sameToken(a, b storage.Token) bool {
	same := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.ID == b.ID && a.Tenant == b.Tenant && a.Name == b.Name && slices.Equal(a.Scopes, b.Scopes) &&
		a.Created.Equal(b.Created) && same(a.Expires, b.Expires) && same(a.Revoked, b.Revoked) && a.Hash == b.Hash
}

func testTokens(t *testing.T, open Opener) {
	e := newEnv(t, open)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	expires := base.Add(24 * time.Hour)
	// Ids and hashes sort in another order than creation.
	tokens := []storage.Token{
		{ID: "tok-c", Tenant: tenantA, Name: "okta", Scopes: []string{"scim"}, Created: base, Hash: hashOf("secret-1")},
		{ID: "tok-a", Tenant: tenantB, Name: "entra", Scopes: []string{"scim", "admin"}, Created: base.Add(time.Minute), Expires: &expires, Hash: hashOf("secret-2")},
		{ID: "tok-b", Tenant: tenantA, Name: "platform", Scopes: []string{"platform"}, Created: base.Add(2 * time.Minute), Hash: hashOf("secret-3")},
	}
	e.admin(func(a storage.AdminTx) error {
		for _, tok := range tokens {
			if err := a.PutToken(tok); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(a storage.AdminTx) error {
		for i, tok := range tokens {
			got, err := a.TokenByHash(rawHash(fmt.Sprintf("secret-%d", i+1)))
			if err != nil || !sameToken(got, tok) {
				return fmt.Errorf("TokenByHash of %s: %+v %v", tok.ID, got, err)
			}
			if got, err = a.Token(tok.ID); err != nil || !sameToken(got, tok) {
				return fmt.Errorf("Token(%s): %+v %v", tok.ID, got, err)
			}
		}
		if _, err := a.TokenByHash(rawHash("secret-4")); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("TokenByHash of an unknown secret: %v", err)
		}
		if _, err := a.Token("tok-z"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("the token of an unknown id: %v", err)
		}
		for tenant, want := range map[string][]storage.Token{
			"":      tokens,
			tenantA: {tokens[0], tokens[2]},
			tenantB: {tokens[1]},
			"none":  nil,
		} {
			got, err := a.Tokens(tenant)
			if err != nil || !slices.EqualFunc(got, want, sameToken) {
				return fmt.Errorf("Tokens(%q): %+v %v", tenant, got, err)
			}
		}
		return nil
	}
	if err := e.s.ReadAdmin(ctx, check); err != nil {
		t.Fatal(err)
	}
	finder, _ := e.s.(storage.TokenFinder)
	find := func(when string) {
		t.Helper()
		if finder == nil {
			return
		}
		for i, tok := range tokens {
			got, tenant, err := finder.FindToken(ctx, rawHash(fmt.Sprintf("secret-%d", i+1)))
			if err != nil || !sameToken(got, tok) || tenant == nil || tenant.ID != tok.Tenant {
				t.Errorf("%s: FindToken of %s: %+v, tenant %+v, %v", when, tok.ID, got, tenant, err)
			}
		}
		if _, _, err := finder.FindToken(ctx, rawHash("secret-4")); storage.ErrorCode(err) != storage.NotFound {
			t.Errorf("%s: FindToken of an unknown secret: %v", when, err)
		}
	}
	find("stored")
	// Revoking is an update: found by its id, its hash unchanged.
	revoked := base.Add(time.Hour)
	tokens[0].Revoked = &revoked
	tokens[0].Name = "okta (old)"
	e.admin(func(a storage.AdminTx) error { return a.PutToken(tokens[0]) })
	if err := e.s.ReadAdmin(ctx, check); err != nil {
		t.Fatalf("after revoking: %v", err)
	}
	find("after revoking")
	if finder != nil { // the tenant comes as it is now, or not at all
		orphan := storage.Token{ID: "tok-o", Tenant: "gone", Name: "orphan", Scopes: []string{"scim"}, Created: base, Hash: hashOf("secret-o")}
		e.admin(func(a storage.AdminTx) error { return a.PutToken(orphan) })
		if got, tenant, err := finder.FindToken(ctx, rawHash("secret-o")); err != nil || !sameToken(got, orphan) || tenant != nil {
			t.Errorf("FindToken of a token whose tenant does not exist: %+v, tenant %+v, %v", got, tenant, err)
		}
		e.admin(func(a storage.AdminTx) error {
			tenant, err := a.Tenant(tenantB)
			if err != nil {
				return err
			}
			tenant.Disabled = true
			return a.PutTenant(tenant)
		})
		if _, tenant, err := finder.FindToken(ctx, rawHash("secret-2")); err != nil || tenant == nil || !tenant.Disabled {
			t.Errorf("FindToken after its tenant was disabled: tenant %+v, %v", tenant, err)
		}
	}
}

// testTokenHashes: a token's hash never changes, and no two tokens share one.
func testTokenHashes(t *testing.T, open Opener) {
	e := newEnv(t, open)
	tok := storage.Token{ID: "tok-1", Tenant: tenantA, Name: "one", Scopes: []string{"scim"}, Created: time.Now().UTC(), Hash: hashOf("one")}
	e.admin(func(a storage.AdminTx) error { return a.PutToken(tok) })
	changed := tok
	changed.Hash = hashOf("other")
	wantCode(t, "a token's hash changed", e.s.WriteAdmin(ctx, func(a storage.AdminTx) error { return a.PutToken(changed) }), storage.Conflict)
	twin := tok
	twin.ID = "tok-2"
	wantCode(t, "a second token with a hash in use", e.s.WriteAdmin(ctx, func(a storage.AdminTx) error { return a.PutToken(twin) }), storage.Conflict)
	err := e.s.ReadAdmin(ctx, func(a storage.AdminTx) error {
		got, err := a.TokenByHash(rawHash("one"))
		if err != nil || !sameToken(got, tok) {
			return fmt.Errorf("the token after refused changes: %+v %v", got, err)
		}
		if _, err := a.TokenByHash(rawHash("other")); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("a refused hash change left the new hash: %v", err)
		}
		if _, err := a.Token("tok-2"); storage.ErrorCode(err) != storage.NotFound {
			return fmt.Errorf("a refused twin was stored: %v", err)
		}
		if all, err := a.Tokens(""); err != nil || len(all) != 1 {
			return fmt.Errorf("tokens after refused changes: %+v %v", all, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
