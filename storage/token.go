package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Token scopes.
const (
	ScopeSCIM     = "scim"     // identity providers: /scim/v2
	ScopePlatform = "platform" // the platform's own API: /api/v1
	ScopeAdmin    = "admin"    // operators: /api/v1/admin
)

// ValidScope reports whether s names a scope.
func ValidScope(s string) bool { return s == ScopeSCIM || s == ScopePlatform || s == ScopeAdmin }

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
	if len(spec.Secret) < 32 {
		return Token{}, Errorf(Invalid, "a token must be at least 32 characters long")
	}
	hash := hashSecret(spec.Secret)
	var out Token
	err := s.updateAuth(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bktTokens).Get(hash); raw != nil {
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if out.Tenant != spec.Tenant || out.Revoked != nil {
				return Errorf(Conflict, "that token belongs to another tenant or was revoked")
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

// Authenticate returns the live token whose secret is presented. Every failure is the same
// NotFound error: a caller must not learn whether a token or its tenant exists. Live tokens are
// remembered in memory until any token or tenant changes (every such change goes through this
// process, which holds the file's lock), so a revocation still takes effect on the next request.
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
			return errBadToken
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return err
		}
		stored, err := hex.DecodeString(t.Hash)
		if err != nil || subtle.ConstantTimeCompare(stored, hash) != 1 {
			return errBadToken
		}
		if t.Revoked != nil || (t.Expires != nil && !s.now().Before(*t.Expires)) {
			return errBadToken
		}
		tenant, err := getTenant(tx, t.Tenant)
		if err != nil || tenant.Disabled {
			return errBadToken
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

var errBadToken = &Error{Code: NotFound, Message: "invalid token"}

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

// Bootstrap makes sure the default tenant exists and has a SCIM token. With envSecret (from
// SCIMSERVER_TOKEN) that secret becomes the token; otherwise, when the tenant has no token yet, a
// new one is generated and its secret returned so that it can be shown once.
func (s *Store) Bootstrap(envSecret, platformSecret string) (string, error) {
	if _, err := s.Tenant(DefaultTenant); ErrorCode(err) == NotFound {
		if _, err := s.CreateTenant(bootstrapActor, DefaultTenant, "Default tenant"); err != nil && ErrorCode(err) != Conflict {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	if platformSecret != "" {
		if _, err := s.EnsureToken(TokenSpec{Tenant: DefaultTenant, Name: "SCIMSERVER_PLATFORM_TOKEN",
			Scopes: []string{ScopePlatform}, Secret: platformSecret}); err != nil {
			return "", err
		}
	}
	if envSecret != "" {
		_, err := s.EnsureToken(TokenSpec{Tenant: DefaultTenant, Name: "SCIMSERVER_TOKEN",
			Scopes: []string{ScopeSCIM}, Secret: envSecret})
		return "", err
	}
	toks, err := s.Tokens(DefaultTenant)
	if err != nil {
		return "", err
	}
	for _, t := range toks {
		if t.HasScope(ScopeSCIM) {
			return "", nil
		}
	}
	_, secret, err := s.CreateToken(bootstrapActor, TokenSpec{Tenant: DefaultTenant, Name: "bootstrap", Scopes: []string{ScopeSCIM}})
	return secret, err
}
