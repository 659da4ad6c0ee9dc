package storage

import (
	"encoding/json"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultTenant is the tenant created on first start.
const DefaultTenant = "default"

// Tenant is one organisation's instance of the platform; every record belongs to exactly one.
type Tenant struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Disabled bool      `json:"disabled,omitempty"`
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

// CreateTenant adds a tenant with its buckets. It fails with Conflict when id exists.
func (s *Store) CreateTenant(id, name string) (Tenant, error) {
	if !ValidTenantID(id) {
		return Tenant{}, Errorf(Invalid, "a tenant id is 1 to 64 characters of a-z, 0-9, '-' and '_'")
	}
	t := Tenant{ID: id, Name: strings.TrimSpace(name), Created: s.now()}
	if t.Name == "" {
		t.Name = id
	}
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bktTenants).Get([]byte(id)) != nil {
			return Errorf(Conflict, "tenant %q already exists", id)
		}
		return createTenant(tx, t)
	})
	return t, err
}

func createTenant(tx *bolt.Tx, t Tenant) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bktTenants).Put([]byte(t.ID), raw); err != nil {
		return err
	}
	tb, err := tx.Bucket(bktData).CreateBucketIfNotExists([]byte(t.ID))
	if err != nil {
		return err
	}
	for _, name := range tenantBuckets {
		if _, err := tb.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Tenants lists every tenant in id order.
func (s *Store) Tenants() ([]Tenant, error) {
	var out []Tenant
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktTenants).ForEach(func(_, v []byte) error {
			var t Tenant
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// Tenant returns one tenant.
func (s *Store) Tenant(id string) (Tenant, error) {
	var t Tenant
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		t, err = getTenant(tx, id)
		return err
	})
	return t, err
}

func getTenant(tx *bolt.Tx, id string) (Tenant, error) {
	var t Tenant
	raw := tx.Bucket(bktTenants).Get([]byte(id))
	if raw == nil {
		return t, Errorf(NotFound, "tenant %q does not exist", id)
	}
	return t, json.Unmarshal(raw, &t)
}

// SetTenantDisabled disables or re-enables a tenant; a disabled tenant's tokens stop working.
func (s *Store) SetTenantDisabled(id string, disabled bool) error {
	return s.updateAuth(func(tx *bolt.Tx) error {
		t, err := getTenant(tx, id)
		if err != nil {
			return err
		}
		t.Disabled = disabled
		raw, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return tx.Bucket(bktTenants).Put([]byte(id), raw)
	})
}

// tenantBucket returns the buckets of a tenant inside tx.
func tenantBucket(tx *bolt.Tx, tenant string) (*bolt.Bucket, error) {
	b := tx.Bucket(bktData).Bucket([]byte(tenant))
	if b == nil {
		return nil, Errorf(NotFound, "tenant %q does not exist", tenant)
	}
	return b, nil
}
