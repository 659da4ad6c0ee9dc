package storage

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Operator actions on tenants and tokens, each recorded in the affected tenant's audit trail in
// the same commit as the change itself: the trail never misses a change, nor records one that
// did not happen. Changes to tokens and tenant states go through updateAuth, like their
// unaudited counterparts, so that the authentication cache forgets what they change.

// Audit trail operations of the operator actions.
const (
	OpTenantCreate  = "tenant-create"
	OpTenantDisable = "tenant-disable"
	OpTenantEnable  = "tenant-enable"
	OpTokenCreate   = "token-create"
	OpTokenRevoke   = "token-revoke"
)

// recordIn appends ev to tenant's trail inside tx.
func recordIn(tx *bolt.Tx, tenant string, now time.Time, actor Actor, ev Event) error {
	b, err := tenantBucket(tx, tenant)
	if err != nil {
		return err
	}
	ev.ActorID, ev.ActorName = actor.ID, actor.Name
	return (&Tx{tx: tx, b: b, now: now, tenant: tenant}).RecordEvent(ev)
}

// CreateTenant adds a tenant with its buckets, recording a tenant-create event in its trail.
// It fails with Conflict when id exists.
func (s *Store) CreateTenant(actor Actor, id, name string) (Tenant, error) {
	if !ValidTenantID(id) {
		return Tenant{}, Errorf(Invalid, "a tenant id is 1 to 64 characters of a-z, 0-9, '-' and '_'")
	}
	t := Tenant{ID: id, Name: strings.TrimSpace(name), Created: s.now()}
	if t.Name == "" {
		t.Name = id
	}
	err := s.updateAuth(func(tx *bolt.Tx) error {
		if tx.Bucket(bktTenants).Get([]byte(id)) != nil {
			return Errorf(Conflict, "the tenant already exists")
		}
		if err := createTenant(tx, t); err != nil {
			return err
		}
		return recordIn(tx, id, t.Created, actor, Event{Operation: OpTenantCreate, ResourceType: "Tenant", ResourceID: id})
	})
	return t, err
}

// SetTenantDisabled disables or re-enables a tenant (a disabled tenant's tokens stop working),
// recording tenant-disable or tenant-enable in its trail when the state changes. It returns the
// tenant as it now is.
func (s *Store) SetTenantDisabled(actor Actor, id string, disabled bool) (Tenant, error) {
	var t Tenant
	err := s.updateAuth(func(tx *bolt.Tx) error {
		var err error
		if t, err = getTenant(tx, id); err != nil {
			return err
		}
		if t.Disabled == disabled {
			return nil
		}
		t.Disabled = disabled
		raw, err := json.Marshal(t)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bktTenants).Put([]byte(id), raw); err != nil {
			return err
		}
		op := OpTenantEnable
		if disabled {
			op = OpTenantDisable
		}
		return recordIn(tx, id, s.now(), actor, Event{Operation: op, ResourceType: "Tenant", ResourceID: id})
	})
	return t, err
}

// CreateToken stores a token, recording a token-create event in its tenant's trail, and returns
// it with its secret, which is shown only this once.
func (s *Store) CreateToken(actor Actor, spec TokenSpec) (Token, string, error) {
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
	t := Token{ID: newID(), Tenant: spec.Tenant, Name: strings.TrimSpace(spec.Name), Scopes: slices.Clone(spec.Scopes),
		Created: s.now(), Expires: spec.Expires}
	hash := hashSecret(secret)
	t.Hash = hex.EncodeToString(hash)
	err := s.updateAuth(func(tx *bolt.Tx) error {
		if _, err := getTenant(tx, spec.Tenant); err != nil {
			return err
		}
		if tx.Bucket(bktTokens).Get(hash) != nil {
			return Errorf(Conflict, "that token already exists")
		}
		if err := putToken(tx, t, hash); err != nil {
			return err
		}
		return recordIn(tx, t.Tenant, t.Created, actor, Event{Operation: OpTokenCreate, ResourceType: "Token",
			ResourceID: t.ID, Attributes: t.Scopes})
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// RevokeToken revokes a token by id; it stops working on the next request. When tenant is not
// empty, a token of another tenant is reported as not found. A token-revoke event is recorded in
// the token's tenant's trail when the token was live until now.
func (s *Store) RevokeToken(actor Actor, tenant, id string) (Token, error) {
	var t Token
	err := s.updateAuth(func(tx *bolt.Tx) error {
		t = Token{}
		hash := tx.Bucket(bktTokenIDs).Get([]byte(id))
		if hash == nil {
			return errTokenNotFound
		}
		if err := json.Unmarshal(tx.Bucket(bktTokens).Get(hash), &t); err != nil {
			return err
		}
		if tenant != "" && t.Tenant != tenant {
			return errTokenNotFound
		}
		if t.Revoked != nil {
			return nil
		}
		now := s.now()
		t.Revoked = &now
		if err := putToken(tx, t, slices.Clone(hash)); err != nil {
			return err
		}
		return recordIn(tx, t.Tenant, now, actor, Event{Operation: OpTokenRevoke, ResourceType: "Token", ResourceID: t.ID})
	})
	return t, err
}

// TrailLength is the number of events in the tenant's audit trail.
func (t *Tx) TrailLength() int { return t.b.Bucket(bktTrail).Stats().KeyN }
