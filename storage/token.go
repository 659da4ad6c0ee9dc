package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

// Token scopes.
const (
	ScopeSCIM     = "scim"     // identity providers: /scim/v2
	ScopePlatform = "platform" // the platform's own API: /api/v1
	ScopeAdmin    = "admin"    // operators: /api/v1/admin
)

// validScope reports whether s names a scope.
func validScope(s string) bool { return s == ScopeSCIM || s == ScopePlatform || s == ScopeAdmin }

// CheckScopes refuses an unknown scope, and admin together with another: admin is a server-wide
// operator credential (every tenant, every token, backups), which must never travel as an
// identity provider's or the platform's token.
func CheckScopes(scopes []string) error {
	for _, sc := range scopes {
		if !validScope(sc) {
			return Errorf(Invalid, "unknown scope (use scim, platform or admin)")
		}
	}
	if slices.Contains(scopes, ScopeAdmin) && slices.ContainsFunc(scopes, func(sc string) bool { return sc != ScopeAdmin }) {
		return Errorf(Invalid, "the admin scope is server-wide and goes alone, not with scim or platform")
	}
	return nil
}

// Token is a bearer credential of one tenant. Only the SHA-256 of its secret is stored: the secret
// has 256 bits of entropy, so a slow hash would add nothing but latency to every request.
type Token struct {
	ID      string     `json:"id"`
	Tenant  string     `json:"tenant"`
	Name    string     `json:"name"`
	Scopes  []string   `json:"scopes"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
	Hash    string     `json:"hash"`
}

// HasScope reports whether the token carries scope.
func (t Token) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// NewSecret returns a fresh bearer secret: 32 bytes from crypto/rand, base64url.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "scim_" + base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TokenSpec describes a token to create.
type TokenSpec struct {
	Tenant  string
	Name    string
	Scopes  []string
	Expires *time.Time
	// Secret, when set, is used instead of a generated one (SCIMSERVER_TOKEN); it must be at
	// least 32 characters.
	Secret string
}

func putToken(tx *bolt.Tx, t Token, hash []byte) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bktTokens).Put(hash, raw); err != nil {
		return err
	}
	return tx.Bucket(bktTokenIDs).Put([]byte(t.ID), hash)
}

// EnsureToken makes secret a live token of tenant named name with scopes, revoking an older
// token of that name (how SCIMSERVER_TOKEN replaces the token it set before).
func (s *Store) EnsureToken(spec TokenSpec) (Token, error) {
	if err := checkSecret(spec.Secret); err != nil {
		return Token{}, err
	}
	hash := hashSecret(spec.Secret)
	var out Token
	err := s.updateAuth(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bktTokens).Get(hash); raw != nil {
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if out.Tenant != spec.Tenant || out.Revoked != nil || out.Name != spec.Name {
				return Errorf(Conflict, "that value is the secret of another token, or of a revoked one; choose a new one")
			}
			return nil
		}
		now := s.now()
		// Revoke the token this name had before (collected first: bbolt forbids changing a
		// bucket while iterating it).
		var replaced []Token
		if err := tx.Bucket(bktTokens).ForEach(func(k, v []byte) error {
			var old Token
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			if old.Tenant == spec.Tenant && old.Name == spec.Name && old.Revoked == nil {
				replaced = append(replaced, old)
			}
			return nil
		}); err != nil {
			return err
		}
		actor := Actor{ID: "environment", Name: spec.Name}
		for _, old := range replaced {
			old.Revoked = &now
			hash, err := hex.DecodeString(old.Hash)
			if err != nil {
				return err
			}
			if err := putToken(tx, old, hash); err != nil {
				return err
			}
			if err := recordIn(tx, old.Tenant, now, actor, Event{Operation: OpTokenRevoke, ResourceType: "Token", ResourceID: old.ID}); err != nil {
				return err
			}
		}
		out = Token{ID: newID(), Tenant: spec.Tenant, Name: spec.Name, Scopes: spec.Scopes, Created: now,
			Hash: hex.EncodeToString(hash)}
		if err := putToken(tx, out, hash); err != nil {
			return err
		}
		return recordIn(tx, out.Tenant, now, actor, Event{Operation: OpTokenCreate, ResourceType: "Token",
			ResourceID: out.ID, Attributes: out.Scopes})
	})
	return out, err
}

// Reasons an AuthFailure gives.
const (
	AuthUnknown        = "unknown token"
	AuthRevoked        = "revoked"
	AuthExpired        = "expired"
	AuthTenantDisabled = "tenant disabled"
)

// AuthFailure says why a presented secret was refused, and which token it matched, if any. It is
// for the operator's log only: a client is told none of it. It is a NotFound *Error to callers
// that only ask for the code.
type AuthFailure struct {
	Reason string
	Token  Token // the zero Token when the secret matched none
}

func (e *AuthFailure) Error() string { return e.Reason }
func (e *AuthFailure) Unwrap() error { return errBadToken }

var errBadToken = &Error{Code: NotFound, Message: "invalid token"}

// PresentedSecret is the secret a bearer credential carries: surrounding whitespace is not part
// of it, whether it arrives in a request or in the environment (EnvTokens.Clean).
func PresentedSecret(s string) string { return strings.TrimSpace(s) }

// Authenticate returns the live token whose secret is presented, or an *AuthFailure. Live
// tokens are remembered in memory until any token or tenant changes (every such change goes
// through this process, which holds the file's lock), so a revocation still takes effect on the
// next request.
func (s *Store) Authenticate(secret string) (Token, error) {
	hash := hashSecret(secret)
	if t, ok := s.auth.get(string(hash), s.now()); ok {
		return t, nil
	}
	gen := s.auth.generation()
	var t Token
	err := s.view(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktTokens).Get(hash)
		if raw == nil {
			return &AuthFailure{Reason: AuthUnknown}
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		stored, err := hex.DecodeString(t.Hash)
		if err != nil || subtle.ConstantTimeCompare(stored, hash) != 1 {
			return &AuthFailure{Reason: AuthUnknown}
		}
		switch {
		case t.Revoked != nil:
			return &AuthFailure{Reason: AuthRevoked, Token: t}
		case t.Expires != nil && !s.now().Before(*t.Expires):
			return &AuthFailure{Reason: AuthExpired, Token: t}
		}
		tenant, err := getTenant(tx, t.Tenant)
		if err != nil || tenant.Disabled {
			return &AuthFailure{Reason: AuthTenantDisabled, Token: t}
		}
		return nil
	})
	if err == nil {
		s.auth.put(string(hash), t, gen)
	}
	return t, err
}

// authCache holds live tokens by secret hash. Entries are valid for one generation; every
// change to tokens or tenants starts a new one.
type authCache struct {
	mu  sync.RWMutex
	gen uint64
	m   map[string]Token
}

const maxCachedTokens = 10_000

func (c *authCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *authCache) get(hash string, now time.Time) (Token, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.m[hash]
	if !ok || (t.Expires != nil && !now.Before(*t.Expires)) {
		return Token{}, false
	}
	return t, true
}

// put remembers t, unless the tokens changed since the caller's read began at generation gen.
func (c *authCache) put(hash string, t Token, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]Token{}
	}
	c.m[hash] = t
}

// invalidate forgets every token; called around every token or tenant change.
func (c *authCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

// updateAuth runs a write that changes tokens or tenants, invalidating the cache before (so no
// read begun earlier can fill it) and after (so nothing cached meanwhile survives).
func (s *Store) updateAuth(fn func(*bolt.Tx) error) error {
	s.auth.invalidate()
	defer s.auth.invalidate()
	return s.update(fn)
}

// Tokens lists the tokens of tenant ("" for all tenants), without secrets.
func (s *Store) Tokens(tenant string) ([]Token, error) {
	var out []Token
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			if tenant == "" || t.Tenant == tenant {
				out = append(out, t)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Token) int { return a.Created.Compare(b.Created) })
	return out, err
}

// bootstrapActor is who the trail names for what the first start creates.
var bootstrapActor = Actor{ID: "bootstrap", Name: "first start"}

// EnvTokens are the default tenant's secrets that the environment sets: SCIMSERVER_TOKEN (scope
// scim), SCIMSERVER_PLATFORM_TOKEN (platform) and SCIMSERVER_ADMIN_TOKEN (admin). Each becomes the
// token named after its variable; a new value revokes the one set before.
type EnvTokens struct {
	SCIM, Platform, Admin string
}

// envToken is one of the EnvTokens.
type envToken struct {
	name, scope string
	secret      *string
}

func (e *EnvTokens) list() []envToken {
	return []envToken{{"SCIMSERVER_TOKEN", ScopeSCIM, &e.SCIM}, {"SCIMSERVER_PLATFORM_TOKEN", ScopePlatform, &e.Platform},
		{"SCIMSERVER_ADMIN_TOKEN", ScopeAdmin, &e.Admin}}
}

// Clean removes surrounding whitespace from each secret, as from a presented one (a value read
// from a file often ends in a newline), and refuses a value that could never authenticate and a
// value two variables share: one token has one set of scopes. It returns the names of the
// variables whose values it trimmed.
func (e *EnvTokens) Clean() (trimmed []string, err error) {
	seen := map[string]string{}
	for _, v := range e.list() {
		if *v.secret == "" {
			continue
		}
		if s := PresentedSecret(*v.secret); s != *v.secret {
			*v.secret = s
			trimmed = append(trimmed, v.name)
		}
		if err := checkSecret(*v.secret); err != nil {
			return trimmed, Errorf(Invalid, "%s: %s", v.name, err)
		}
		if other, ok := seen[*v.secret]; ok {
			return trimmed, Errorf(Invalid, "%s and %s have the same value; give each its own", other, v.name)
		}
		seen[*v.secret] = v.name
	}
	return trimmed, nil
}

// checkSecret refuses a secret a client could not present: too short to be safe, or holding
// whitespace or control characters, which do not survive an Authorization header.
func checkSecret(secret string) error {
	if len(secret) < 32 {
		return Errorf(Invalid, "a token must be at least 32 characters long")
	}
	if strings.IndexFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return Errorf(Invalid, "a token cannot contain whitespace or control characters")
	}
	return nil
}

// Bootstrap makes sure the default tenant exists and holds the environment's tokens (after
// env.Clean). When the environment sets no SCIM token and the tenant has none, one is generated:
// its secret goes to show before the token is committed, so that a secret that could not be
// shown never becomes a live token (the next start tries again). show may be nil.
func (s *Store) Bootstrap(env EnvTokens, show func(secret string) error) error {
	if _, err := env.Clean(); err != nil {
		return err
	}
	if _, err := s.Tenant(DefaultTenant); ErrorCode(err) == NotFound {
		if _, err := s.CreateTenant(bootstrapActor, DefaultTenant, "Default tenant"); err != nil && ErrorCode(err) != Conflict {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, v := range env.list() {
		if *v.secret == "" {
			continue
		}
		if _, err := s.EnsureToken(TokenSpec{Tenant: DefaultTenant, Name: v.name, Scopes: []string{v.scope}, Secret: *v.secret}); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	if env.SCIM != "" {
		return nil
	}
	toks, err := s.Tokens(DefaultTenant)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.HasScope(ScopeSCIM) {
			return nil
		}
	}
	secret := NewSecret()
	if show != nil {
		if err := show(secret); err != nil {
			return err
		}
	}
	_, _, err = s.CreateToken(bootstrapActor, TokenSpec{Tenant: DefaultTenant, Name: "bootstrap", Scopes: []string{ScopeSCIM}, Secret: secret})
	return err
}
