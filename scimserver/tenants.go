package scimserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

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

// CheckScopes refuses an unknown scope, and admin together with another: admin is a server-wide
// operator credential (every tenant, every token, backups), which must never travel as an
// identity provider's or the platform's token.
func CheckScopes(scopes []string) error {
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return invalid("invalidValue", "unknown scope (use scim, platform or admin)")
		}
	}
	if slices.Contains(scopes, ScopeAdmin) && slices.ContainsFunc(scopes, func(sc string) bool { return sc != ScopeAdmin }) {
		return invalid("invalidValue", "the admin scope is server-wide and goes alone, not with scim or platform")
	}
	return nil
}

// checkSecret refuses a secret a client could not present: too short to be safe, or holding
// whitespace or control characters, which do not survive an Authorization header.
func checkSecret(secret string) error {
	if len(secret) < 32 {
		return invalid("invalidValue", "a token must be at least 32 characters long")
	}
	if strings.IndexFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return invalid("invalidValue", "a token cannot contain whitespace or control characters")
	}
	return nil
}

// PresentedSecret is the secret a bearer credential carries: surrounding whitespace is not part
// of it, whether it arrives in a request or in the environment (EnvTokens.Clean).
func PresentedSecret(s string) string { return strings.TrimSpace(s) }

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
	if err := CheckScopes(spec.Scopes); err != nil {
		return Token{}, "", err
	}
	secret := spec.Secret
	if secret == "" {
		secret = NewSecret()
	} else if err := checkSecret(secret); err != nil {
		return Token{}, "", err
	}
	t := Token{ID: newTokenID(), Tenant: spec.Tenant, Name: strings.TrimSpace(spec.Name), Scopes: slices.Clone(spec.Scopes),
		Expires: spec.Expires, Hash: hex.EncodeToString(hashSecret(secret))}
	err := s.writeAuth(ctx, func(a storage.AdminTx) error { return putNewToken(a, actor, &t) })
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// putNewToken stores a new token of an existing tenant, created now, with its audit event.
func putNewToken(a storage.AdminTx, actor Actor, t *Token) error {
	if _, err := a.Tenant(t.Tenant); err != nil {
		return found(err, "tenant")
	}
	t.Created = a.Now()
	if err := a.PutToken(*t); err != nil {
		return err
	}
	return appendIn(a, t.Tenant, actor, storage.Event{Operation: opTokenCreate, ResourceType: "Token", ResourceID: t.ID, Attributes: t.Scopes})
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
	if err := checkSecret(spec.Secret); err != nil {
		return Token{}, err
	}
	hash := hashSecret(spec.Secret)
	actor := Actor{ID: "environment", Name: spec.Name}
	var out Token
	err := s.writeAuth(ctx, func(a storage.AdminTx) error {
		if t, err := a.TokenByHash(hash); err == nil {
			if t.Tenant != spec.Tenant || t.Revoked != nil || t.Name != spec.Name {
				return Errorf(Conflict, "", "that value is the secret of another token, or of a revoked one; choose a new one")
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
			return trimmed, invalid("invalidValue", v.name+": "+err.Error())
		}
		if other, ok := seen[*v.secret]; ok {
			return trimmed, invalid("invalidValue", other+" and "+v.name+" have the same value; give each its own")
		}
		seen[*v.secret] = v.name
	}
	return trimmed, nil
}

// bootstrapActor is who the trail names for what the first start creates.
var bootstrapActor = Actor{ID: "bootstrap", Name: "first start"}

// Bootstrap makes sure the default tenant exists and holds the environment's tokens (after
// env.Clean). When the environment sets no SCIM token and the tenant has none, one is generated:
// its secret goes to show before the token is committed, so that a secret that could not be
// shown never becomes a live token (the next start tries again). show may be nil.
func (s *Service) Bootstrap(ctx context.Context, env EnvTokens, show func(secret string) error) error {
	if _, err := env.Clean(); err != nil {
		return err
	}
	if _, err := s.Tenant(ctx, DefaultTenant); ErrorCode(err) == NotFound {
		if _, err := s.CreateTenant(ctx, bootstrapActor, DefaultTenant, "Default tenant"); err != nil && ErrorCode(err) != Conflict {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, v := range env.list() {
		if *v.secret == "" {
			continue
		}
		if _, err := s.EnsureToken(ctx, TokenSpec{Tenant: DefaultTenant, Name: v.name, Scopes: []string{v.scope}, Secret: *v.secret}); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	if env.SCIM != "" {
		return nil
	}
	// One transaction finds no SCIM token and creates the first, so that of servers starting
	// together on one empty database exactly one creates it (and shows its secret).
	secret := NewSecret()
	return s.writeAuth(ctx, func(a storage.AdminTx) error {
		toks, err := a.Tokens(DefaultTenant)
		if err != nil {
			return err
		}
		for _, t := range toks {
			if HasScope(t, ScopeSCIM) {
				return nil
			}
		}
		if show != nil {
			if err := show(secret); err != nil {
				return err
			}
		}
		t := Token{ID: newTokenID(), Tenant: DefaultTenant, Name: "bootstrap", Scopes: []string{ScopeSCIM}, Hash: hex.EncodeToString(hashSecret(secret))}
		return putNewToken(a, bootstrapActor, &t)
	})
}

// Reasons an AuthFailure gives.
const (
	AuthUnknown        = "unknown token"
	AuthRevoked        = "revoked"
	AuthExpired        = "expired"
	AuthTenantDisabled = "tenant disabled"
)

// AuthFailure says why a presented secret was refused, and which token it matched, if any. It is
// for the operator's log only: a client is told none of it. Its code is Unauthorized.
type AuthFailure struct {
	Reason string
	Token  Token // the zero Token when the secret matched none
}

func (e *AuthFailure) Error() string { return e.Reason }
func (e *AuthFailure) Unwrap() error { return errBadToken }

var errBadToken = &Error{Code: Unauthorized, Message: "a valid bearer token is required"}

// Authenticate returns the live token whose secret is presented, or an *AuthFailure. Live
// tokens are remembered until any token or tenant changes through this service, so a revocation
// takes effect on the next request.
func (s *Service) Authenticate(ctx context.Context, secret string) (Token, error) {
	hash := hashSecret(secret)
	now := s.opts.Now()
	if t, ok := s.auth.get(string(hash), now); ok && !s.opts.SharedStore {
		s.uses.touch(t.ID, now)
		return t, nil
	}
	gen := s.auth.generation()
	t, tenant, err := s.findToken(ctx, hash)
	switch {
	case storage.ErrorCode(err) == storage.NotFound:
		return Token{}, &AuthFailure{Reason: AuthUnknown}
	case err != nil:
		return Token{}, err
	}
	switch TokenState(t, now) {
	case "revoked":
		return Token{}, &AuthFailure{Reason: AuthRevoked, Token: t}
	case "expired":
		return Token{}, &AuthFailure{Reason: AuthExpired, Token: t}
	}
	if tenant == nil || tenant.Disabled {
		return Token{}, &AuthFailure{Reason: AuthTenantDisabled, Token: t}
	}
	s.auth.put(string(hash), t, gen)
	s.uses.touch(t.ID, now)
	return t, nil
}

// findToken reads the token whose secret hashes to hash and its tenant (nil when it does not
// exist), together: in one statement where the engine can (storage.TokenFinder), else in one
// transaction.
func (s *Service) findToken(ctx context.Context, hash []byte) (Token, *storage.Tenant, error) {
	if f, ok := s.store.(storage.TokenFinder); ok {
		return f.FindToken(ctx, hash)
	}
	var t Token
	var tenant *storage.Tenant
	err := s.store.ReadAdmin(ctx, func(a storage.AdminTx) error {
		var err error
		if t, err = a.TokenByHash(hash); err != nil {
			return err
		}
		switch found, err := a.Tenant(t.Tenant); {
		case err == nil:
			tenant = &found
		case storage.ErrorCode(err) != storage.NotFound:
			return err
		}
		return nil
	})
	return t, tenant, err
}

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
