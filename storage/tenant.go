package storage

import (
	"encoding/json"
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
	for _, o := range orders {
		if err := o.build(tb); err != nil {
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

// TenantRecord returns the tenant the transaction is over.
func (t *Tx) TenantRecord() (Tenant, error) { return getTenant(t.tx, t.tenant) }

func getTenant(tx *bolt.Tx, id string) (Tenant, error) {
	var t Tenant
	raw := tx.Bucket(bktTenants).Get([]byte(id))
	if raw == nil {
		return t, errTenantNotFound
	}
	return t, json.Unmarshal(raw, &t)
}

// tenantBucket returns the buckets of a tenant inside tx.
func tenantBucket(tx *bolt.Tx, tenant string) (*bolt.Bucket, error) {
	b := tx.Bucket(bktData).Bucket([]byte(tenant))
	if b == nil {
		return nil, errTenantNotFound
	}
	return b, nil
}
