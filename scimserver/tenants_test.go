package scimserver

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
)

// TestEnvTokens: the environment's three secrets become the default tenant's tokens with their
// own scopes; surrounding whitespace is trimmed as it is from a presented token; a shared value,
// or one no client could present, is refused before anything changes.
func TestEnvTokens(t *testing.T) {
	const (
		scim     = "env-scim-token-0123456789abcdefghijklmnopqrstu"
		platform = "env-platform-token-0123456789abcdefghijklmnop"
		admin    = "env-admin-token-0123456789abcdefghijklmnopqrs"
	)
	s, _ := newService(t)
	if err := s.Bootstrap(bg, EnvTokens{SCIM: scim + "\n", Platform: " " + platform, Admin: admin + "\r\n"}, nil); err != nil {
		t.Fatal(err)
	}
	for secret, scope := range map[string]string{scim: ScopeSCIM, platform: ScopePlatform, admin: ScopeAdmin} {
		tok, err := s.Authenticate(bg, PresentedSecret(secret+"\n"))
		if err != nil || !slices.Equal(tok.Scopes, []string{scope}) {
			t.Errorf("%s token: %v %v", scope, tok, err)
		}
	}
	env := EnvTokens{SCIM: scim + "\n", Admin: "\t" + admin}
	if trimmed, err := env.Clean(); err != nil || !slices.Equal(trimmed, []string{"SCIMSERVER_TOKEN", "SCIMSERVER_ADMIN_TOKEN"}) || env.SCIM != scim || env.Admin != admin {
		t.Errorf("clean: %v %v %q", trimmed, err, env)
	}

	before, _ := s.Tokens(bg, DefaultTenant)
	for _, c := range []struct {
		env  EnvTokens
		want string
	}{
		{EnvTokens{SCIM: scim, Platform: scim}, "SCIMSERVER_TOKEN and SCIMSERVER_PLATFORM_TOKEN have the same value"},
		{EnvTokens{SCIM: scim, Admin: scim + "\n"}, "SCIMSERVER_TOKEN and SCIMSERVER_ADMIN_TOKEN have the same value"},
		{EnvTokens{Platform: "short"}, "SCIMSERVER_PLATFORM_TOKEN: a token must be at least 32 characters long"},
		{EnvTokens{SCIM: "   \n"}, "SCIMSERVER_TOKEN: a token must be at least 32 characters long"},
		{EnvTokens{Admin: "env-admin token-0123456789abcdefghijklmnopqrs"}, "SCIMSERVER_ADMIN_TOKEN: a token cannot contain whitespace"},
		{EnvTokens{SCIM: "env-scim\x00token-0123456789abcdefghijklmnopqrs"}, "SCIMSERVER_TOKEN: a token cannot contain whitespace or control characters"},
		// The value of another token (here the platform one) cannot become the SCIM token.
		{EnvTokens{SCIM: platform}, "SCIMSERVER_TOKEN: that value is the secret of another token"},
	} {
		err := s.Bootstrap(bg, c.env, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.env, err, c.want)
		}
		if strings.Contains(err.Error(), scim) || strings.Contains(err.Error(), platform) {
			t.Errorf("the error quotes a secret: %v", err)
		}
	}
	if after, _ := s.Tokens(bg, DefaultTenant); len(after) != len(before) {
		t.Errorf("refused values changed the tokens: %d, then %d", len(before), len(after))
	}
}

// TestBootstrapShowsBeforeCommitting: the first token's secret is handed over before the token
// exists; when that fails, no token is made and the next start tries again.
func TestBootstrapShowsBeforeCommitting(t *testing.T) {
	s, _ := newService(t) // bootstrapped without show: a token exists
	if err := s.Bootstrap(bg, EnvTokens{}, func(string) error { t.Fatal("a second bootstrap showed a secret"); return nil }); err != nil {
		t.Fatal(err)
	}
	store2, err := bolt.Open(t.TempDir()+"/d.db", bolt.Options{Collections: Collections(), ErasureCleared: ErasureCleared})
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	s2 := New(store2, Options{})
	failed := errors.New("the file cannot be written")
	if err := s2.Bootstrap(bg, EnvTokens{}, func(string) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("bootstrap with a failing show: %v", err)
	}
	if toks, _ := s2.Tokens(bg, DefaultTenant); len(toks) != 0 {
		t.Fatalf("a token was made although its secret was never shown: %v", toks)
	}
	var shown string
	if err := s2.Bootstrap(bg, EnvTokens{}, func(secret string) error { shown = secret; return nil }); err != nil {
		t.Fatal(err)
	}
	if tok, err := s2.Authenticate(bg, shown); err != nil || !HasScope(tok, ScopeSCIM) {
		t.Fatalf("the shown secret: %v %v", tok, err)
	}
}

// TestAuthFailureReasons: a refused secret says why, and which token it matched, for the log.
func TestAuthFailureReasons(t *testing.T) {
	s, store := newService(t)
	if _, err := s.CreateTenant(bg, testActor, "acme", ""); err != nil {
		t.Fatal(err)
	}
	mk := func(tenant string, expires *time.Time) (Token, string) {
		tok, secret, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: tenant, Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		return tok, secret
	}
	revoked, revokedSecret := mk(DefaultTenant, nil)
	if _, err := s.RevokeToken(bg, testActor, "", revoked.ID); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Second)
	expired, expiredSecret := mk(DefaultTenant, &past)
	disabled, disabledSecret := mk("acme", nil)
	if _, err := s.SetTenantDisabled(bg, testActor, "acme", true); err != nil {
		t.Fatal(err)
	}
	// A token whose tenant does not exist (the store's data, not something the service makes).
	orphanSecret := "scim_orphan-0123456789abcdefghijklmnopqrstuvwx"
	orphan := Token{ID: newTokenID(), Tenant: "gone", Name: "orphan", Scopes: []string{ScopeSCIM}, Created: time.Now().UTC(),
		Hash: hex.EncodeToString(hashSecret(orphanSecret))}
	if err := store.WriteAdmin(bg, func(a storage.AdminTx) error { return a.PutToken(orphan) }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		secret, reason, tokenID string
	}{
		{"scim_no-such-token-0123456789abcdefghijklmnopqr", AuthUnknown, ""},
		{revokedSecret, AuthRevoked, revoked.ID},
		{expiredSecret, AuthExpired, expired.ID},
		{disabledSecret, AuthTenantDisabled, disabled.ID},
		{orphanSecret, AuthTenantDisabled, orphan.ID},
	} {
		_, err := s.Authenticate(bg, c.secret)
		var af *AuthFailure
		if !errors.As(err, &af) || af.Reason != c.reason || af.Token.ID != c.tokenID || ErrorCode(err) != Unauthorized {
			t.Errorf("%s: %v (%+v), want %q of token %q", c.reason, err, af, c.reason, c.tokenID)
		}
	}
}

// TestAuthenticateWithoutTheStore: a store that cannot be read is the store's error, not a
// refused token (the log says which).
func TestAuthenticateWithoutTheStore(t *testing.T) {
	s, store := newService(t)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Authenticate(bg, "scim_some-token-0123456789abcdefghijklmnopqrstu")
	var af *AuthFailure
	if err == nil || errors.As(err, &af) {
		t.Fatalf("Authenticate over a closed store: %v (%+v), want the store's error", err, af)
	}
}

// TestAdminScopeGoesAlone: an admin token cannot also be an identity provider's or the
// platform's token.
func TestAdminScopeGoesAlone(t *testing.T) {
	s, _ := newService(t)
	for _, scopes := range [][]string{{ScopeSCIM, ScopeAdmin}, {ScopeAdmin, ScopePlatform}, {"root"}} {
		if _, _, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant, Scopes: scopes}); ErrorCode(err) != Invalid {
			t.Errorf("scopes %v: %v", scopes, err)
		}
	}
	for _, scopes := range [][]string{{ScopeAdmin}, {ScopeSCIM, ScopePlatform}} {
		if _, _, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant, Scopes: scopes}); err != nil {
			t.Errorf("scopes %v: %v", scopes, err)
		}
	}
}

// TestTokens: tokens authenticate until revoked, expired or their tenant is disabled; a token of
// another tenant cannot be revoked through this one; SCIMSERVER_TOKEN replaces the token it set
// before.
func TestTokens(t *testing.T) {
	s, _ := newService(t)
	toks, err := s.Tokens(bg, DefaultTenant)
	if err != nil || len(toks) != 1 || !HasScope(toks[0], ScopeSCIM) {
		t.Fatalf("bootstrap token: %v %v", toks, err)
	}
	tok, secret, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant, Name: "okta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 43 || tok.Hash == secret {
		t.Fatalf("secret %q, hash %q", secret, tok.Hash)
	}
	if got, err := s.Authenticate(bg, secret); err != nil || got.ID != tok.ID {
		t.Fatalf("authenticate: %v %v", got, err)
	}
	if _, err := s.Authenticate(bg, secret+"x"); ErrorCode(err) != Unauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := s.RevokeToken(bg, testActor, "other", tok.ID); ErrorCode(err) != NotFound {
		t.Fatalf("revoke through another tenant: %v", err)
	}
	if _, err := s.RevokeToken(bg, testActor, DefaultTenant, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bg, secret); ErrorCode(err) != Unauthorized {
		t.Fatalf("revoked token still works: %v", err)
	}
	past := time.Now().Add(-time.Minute)
	_, expired, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant, Expires: &past})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bg, expired); ErrorCode(err) != Unauthorized {
		t.Fatalf("expired token works: %v", err)
	}
	if _, _, err := s.CreateToken(bg, testActor, TokenSpec{Tenant: "nope"}); ErrorCode(err) != NotFound {
		t.Fatalf("token for a missing tenant: %v", err)
	}
	// A disabled tenant's tokens stop working, also one remembered from before.
	_, live, _ := s.CreateToken(bg, testActor, TokenSpec{Tenant: DefaultTenant})
	if _, err := s.Authenticate(bg, live); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTenantDisabled(bg, testActor, DefaultTenant, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(bg, live); ErrorCode(err) != Unauthorized {
		t.Fatalf("disabled tenant: %v", err)
	}
	// SCIMSERVER_TOKEN replaces the token it set before.
	s2, _ := newService(t)
	first := "first-token-0123456789abcdefghijklmnopqrstuvwxyz"
	second := "second-token-0123456789abcdefghijklmnopqrstuvwxyz"
	if err := s2.Bootstrap(bg, EnvTokens{SCIM: first}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s2.Bootstrap(bg, EnvTokens{SCIM: second}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Authenticate(bg, first); ErrorCode(err) != Unauthorized {
		t.Fatalf("old env token still works: %v", err)
	}
	if _, err := s2.Authenticate(bg, second); err != nil {
		t.Fatalf("env token: %v", err)
	}
}
