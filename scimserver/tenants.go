package scimserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scimserver/scimserver/storage"
)

// Tenants and their tokens. Each tenant is one organisation's instance of the platform; each
// bearer token belongs to one tenant and carries scopes. Every change is recorded in the affected
// tenant's audit trail in the same commit.

// DefaultTenant is the tenant created on first start.
const DefaultTenant = "default"

// Token scopes.
const (
	ScopeSCIM     = "scim"     // identity providers: /scim/v2
	ScopePlatform = "platform" // the platform's own API: /api/v1
	ScopeAdmin    = "admin"    // operators: /api/v1/admin
)

// Scopes lists every scope.
var Scopes = []string{ScopeSCIM, ScopePlatform, ScopeAdmin}

// Tenant and Token are stored as the storage contract defines them.
type (
	Tenant = storage.Tenant
	Token  = storage.Token
)

// HasScope reports whether t carries scope.
func HasScope(t Token, scope string) bool { return slices.Contains(t.Scopes, scope) }

// TokenState is "active", "revoked" or "expired" at now.
func TokenState(t Token, now time.Time) string {
	switch {
	case t.Revoked != nil:
		return "revoked"
	case t.Expires != nil && !now.Before(*t.Expires):
		return "expired"
	}
	return "active"
}

// ValidTenantID reports whether id can name a tenant: 1 to 64 of a-z, 0-9, '-', '_'.
func ValidTenantID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// TenantInfo is a tenant with its figures.
type TenantInfo struct {
	Tenant
	Users  int
	Groups int
}

// Tenants lists every tenant with its numbers of users and groups.
func (s *Service) Tenants(ctx context.Context) ([]TenantInfo, error) {
	var out []TenantInfo
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		ts, err := a.Tenants()
		if err != nil {
			return err
		}
		out = make([]TenantInfo, 0, len(ts))
		for _, t := range ts {
			info, err := s.describe(a, t)
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// Tenant returns one tenant with its figures.
func (s *Service) Tenant(ctx context.Context, id string) (TenantInfo, error) {
	var out TenantInfo
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		t, err := a.Tenant(id)
		if err != nil {
			return found(err, "tenant")
		}
		out, err = s.describe(a, t)
		return err
	})
	return out, err
}

func (s *Service) describe(a storage.AdminTx, t Tenant) (TenantInfo, error) {
	tx, err := a.In(t.ID)
	if err != nil {
		return TenantInfo{}, err
	}
	return TenantInfo{Tenant: t, Users: tx.Count(s.users.Collection), Groups: tx.Count(s.groups.Collection)}, nil
}

// CreateTenant adds a tenant; Conflict when the id is taken.
func (s *Service) CreateTenant(ctx context.Context, actor Actor, id, name string) (Tenant, error) {
	if !ValidTenantID(id) {
		return Tenant{}, invalid("invalidValue", "a tenant id is 1 to 64 characters of a-z, 0-9, '-' and '_'")
	}
	t := Tenant{ID: id, Name: strings.TrimSpace(name)}
	if t.Name == "" {
		t.Name = id
	}
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		if _, err := a.Tenant(id); err == nil {
			return Errorf(Conflict, "", "the tenant already exists")
		} else if storage.ErrorCode(err) != storage.NotFound {
			return err
		}
		t.Created = a.Now()
		if err := a.PutTenant(t); err != nil {
			return err
		}
		return appendIn(a, t.ID, actor, storage.Event{Operation: opTenantCreate, ResourceType: "Tenant", ResourceID: id})
	})
	return t, err
}

// SetTenantDisabled disables or enables a tenant: a disabled tenant's tokens stop working from
// the next request on. It returns the tenant as it now is.
func (s *Service) SetTenantDisabled(ctx context.Context, actor Actor, id string, disabled bool) (Tenant, error) {
	var t Tenant
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		var err error
		if t, err = a.Tenant(id); err != nil {
			return found(err, "tenant")
		}
		if t.Disabled == disabled {
			return nil
		}
		t.Disabled = disabled
		if err := a.PutTenant(t); err != nil {
			return err
		}
		op := opTenantEnable
		if disabled {
			op = opTenantDisable
		}
		return appendIn(a, id, actor, storage.Event{Operation: op, ResourceType: "Tenant", ResourceID: id})
	})
	return t, err
}

// appendIn records an operator's change in the affected tenant's trail.
func appendIn(a storage.AdminTx, tenant string, actor Actor, ev storage.Event) error {
	tx, err := a.In(tenant)
	if err != nil {
		return err
	}
	ev.ActorID, ev.ActorName = actor.ID, actor.Name
	return tx.Append(ev)
}

// Tokens lists a tenant's tokens ("" for every tenant's), without secrets.
func (s *Service) Tokens(ctx context.Context, tenant string) ([]Token, error) {
	var out []Token
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		if tenant != "" {
			if _, err := a.Tenant(tenant); err != nil {
				return found(err, "tenant")
			}
		}
		var err error
		out, err = a.Tokens(tenant)
		return err
	})
	return out, err
}

// TokenSpec describes a token to create.
type TokenSpec struct {
	Tenant  string
	Name    string
	Scopes  []string // default: scim
	Expires *time.Time
	// Secret, when set, is used instead of a generated one (from the environment); at least 32
	// characters.
	Secret string
}

// minSecretLen is the shortest secret an operator may choose.
const minSecretLen = 32

// NewSecret returns a fresh bearer secret: 32 bytes from crypto/rand, base64url.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return "scim_" + base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is what is stored of a secret. The secret has 256 bits of entropy, so a slow hash
// would add nothing but latency to every request.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newTokenID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateToken stores a token and returns it with its secret, shown only this once.
func (s *Service) CreateToken(ctx context.Context, actor Actor, spec TokenSpec) (Token, string, error) {
	if len(spec.Scopes) == 0 {
		spec.Scopes = []string{ScopeSCIM}
	}
	for _, sc := range spec.Scopes {
		if !slices.Contains(Scopes, sc) {
			return Token{}, "", invalid("invalidValue", "unknown scope (use scim, platform or admin)")
		}
	}
	secret := spec.Secret
	if secret == "" {
		secret = NewSecret()
	} else if len(secret) < minSecretLen {
		return Token{}, "", invalid("invalidValue", "a token must be at least 32 characters long")
	}
	t := Token{ID: newTokenID(), Tenant: spec.Tenant, Name: strings.TrimSpace(spec.Name), Scopes: slices.Clone(spec.Scopes),
		Expires: spec.Expires, Hash: hex.EncodeToString(hashSecret(secret))}
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		if _, err := a.Tenant(spec.Tenant); err != nil {
			return found(err, "tenant")
		}
		t.Created = a.Now()
		if err := a.PutToken(t); err != nil {
			return err
		}
		return appendIn(a, t.Tenant, actor, storage.Event{Operation: opTokenCreate, ResourceType: "Token", ResourceID: t.ID, Attributes: t.Scopes})
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// RevokeToken revokes a token by id; it stops working on the next request. With tenant set, a
// token of another tenant is NotFound.
func (s *Service) RevokeToken(ctx context.Context, actor Actor, tenant, id string) (Token, error) {
	var t Token
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		var err error
		if t, err = a.Token(id); err != nil {
			return found(err, "token")
		}
		if tenant != "" && t.Tenant != tenant {
			return notFound("token")
		}
		if t.Revoked != nil {
			return nil
		}
		now := a.Now()
		t.Revoked = &now
		if err := a.PutToken(t); err != nil {
			return err
		}
		return appendIn(a, t.Tenant, actor, storage.Event{Operation: opTokenRevoke, ResourceType: "Token", ResourceID: t.ID})
	})
	return t, err
}

// EnsureToken makes spec.Secret a live token of the tenant with that name and scopes, revoking
// an older live token of the same name (how a token set in the environment replaces the one it
// set before).
func (s *Service) EnsureToken(ctx context.Context, spec TokenSpec) (Token, error) {
	if len(spec.Secret) < minSecretLen {
		return Token{}, invalid("invalidValue", "a token must be at least 32 characters long")
	}
	hash := hashSecret(spec.Secret)
	actor := Actor{ID: "environment", Name: spec.Name}
	var out Token
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		if t, err := a.TokenByHash(hash); err == nil {
			if t.Tenant != spec.Tenant || t.Revoked != nil {
				return Errorf(Conflict, "", "that token belongs to another tenant or was revoked")
			}
			out = t
			return nil
		} else if storage.ErrorCode(err) != storage.NotFound {
			return err
		}
		toks, err := a.Tokens(spec.Tenant)
		if err != nil {
			return err
		}
		now := a.Now()
		for _, old := range toks {
			if old.Name == spec.Name && old.Revoked == nil {
				old.Revoked = &now
				if err := a.PutToken(old); err != nil {
					return err
				}
				if err := appendIn(a, old.Tenant, actor, storage.Event{Operation: opTokenRevoke, ResourceType: "Token", ResourceID: old.ID}); err != nil {
					return err
				}
			}
		}
		out = Token{ID: newTokenID(), Tenant: spec.Tenant, Name: spec.Name, Scopes: spec.Scopes, Created: now,
			Hash: hex.EncodeToString(hash)}
		if err := a.PutToken(out); err != nil {
			return err
		}
		return appendIn(a, out.Tenant, actor, storage.Event{Operation: opTokenCreate, ResourceType: "Token", ResourceID: out.ID, Attributes: out.Scopes})
	})
	return out, err
}

// bootstrapActor is who the trail names for what the first start creates.
var bootstrapActor = Actor{ID: "bootstrap", Name: "first start"}

// Bootstrap makes sure the default tenant exists and has a SCIM token. With scimSecret (from
// the environment) that secret becomes the token; otherwise, when the tenant has no SCIM token
// yet, a new one is generated and its secret returned, to be shown once. platformSecret, when
// set, becomes the default tenant's platform token.
func (s *Service) Bootstrap(ctx context.Context, scimSecret, platformSecret string) (string, error) {
	if _, err := s.Tenant(ctx, DefaultTenant); ErrorCode(err) == NotFound {
		if _, err := s.CreateTenant(ctx, bootstrapActor, DefaultTenant, "Default tenant"); err != nil && ErrorCode(err) != Conflict {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	if platformSecret != "" {
		if _, err := s.EnsureToken(ctx, TokenSpec{Tenant: DefaultTenant, Name: "SCIMSERVER_PLATFORM_TOKEN",
			Scopes: []string{ScopePlatform}, Secret: platformSecret}); err != nil {
			return "", err
		}
	}
	if scimSecret != "" {
		_, err := s.EnsureToken(ctx, TokenSpec{Tenant: DefaultTenant, Name: "SCIMSERVER_TOKEN",
			Scopes: []string{ScopeSCIM}, Secret: scimSecret})
		return "", err
	}
	toks, err := s.Tokens(ctx, DefaultTenant)
	if err != nil {
		return "", err
	}
	for _, t := range toks {
		if HasScope(t, ScopeSCIM) {
			return "", nil
		}
	}
	_, secret, err := s.CreateToken(ctx, bootstrapActor, TokenSpec{Tenant: DefaultTenant, Name: "bootstrap", Scopes: []string{ScopeSCIM}})
	return secret, err
}

// Authenticate returns the live token whose secret is presented. Every failure is the same
// Unauthorized error: a caller must not learn whether a token or its tenant exists. Live tokens
// are remembered until any token or tenant changes through this service, so a revocation takes
// effect on the next request.
func (s *Service) Authenticate(ctx context.Context, secret string) (Token, error) {
	hash := hashSecret(secret)
	now := s.opts.Now()
	if t, ok := s.auth.get(string(hash), now); ok {
		s.uses.touch(t.ID, now)
		return t, nil
	}
	gen := s.auth.generation()
	var t Token
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		var err error
		if t, err = a.TokenByHash(hash); err != nil {
			return err
		}
		if TokenState(t, now) != "active" {
			return errBadToken
		}
		tenant, err := a.Tenant(t.Tenant)
		if err != nil || tenant.Disabled {
			return errBadToken
		}
		return nil
	})
	if err != nil {
		if ErrorCode(err) == Unavailable {
			return Token{}, err
		}
		return Token{}, errBadToken
	}
	s.auth.put(string(hash), t, gen)
	s.uses.touch(t.ID, now)
	return t, nil
}

var errBadToken = &Error{Code: Unauthorized, Message: "a valid bearer token is required"}

// writeAuth runs a write that changes tokens or tenants, forgetting the remembered tokens
// before (so no read begun earlier can fill the cache) and after (so nothing cached meanwhile
// survives).
func (s *Service) writeAuth(ctx context.Context, fn func(storage.AdminTx) error) error {
	s.auth.invalidate()
	defer s.auth.invalidate()
	return s.store.WriteAdmin(ctx, fn)
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
