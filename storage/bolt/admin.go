package bolt

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/scimserver/scimserver/storage"
)

// adminTx is a transaction over tenants and tokens.
type adminTx struct {
	s   *Store
	tx  *bbolt.Tx
	now time.Time
}

var _ storage.AdminTx = (*adminTx)(nil)

func (a *adminTx) Now() time.Time { return a.now }

func (a *adminTx) Tenants() ([]storage.Tenant, error) {
	var out []storage.Tenant
	err := a.tx.Bucket(bktTenants).ForEach(func(_, v []byte) error {
		var t storage.Tenant
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

func (a *adminTx) Tenant(id string) (storage.Tenant, error) {
	var t storage.Tenant
	raw := a.tx.Bucket(bktTenants).Get([]byte(id))
	if raw == nil {
		return t, storage.Errorf(storage.NotFound, "the tenant does not exist")
	}
	return t, json.Unmarshal(raw, &t)
}

func (a *adminTx) PutTenant(t storage.Tenant) error {
	if !a.tx.Writable() {
		return storage.Errorf(storage.Invalid, "a read transaction cannot write")
	}
	if t.ID == "" || len(t.ID) > 255 {
		return storage.Errorf(storage.Invalid, "a tenant id is 1 to 255 bytes")
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := a.tx.Bucket(bktTenants).Put([]byte(t.ID), raw); err != nil {
		return err
	}
	tb, err := a.tx.Bucket(bktData).CreateBucketIfNotExists([]byte(t.ID))
	if err != nil {
		return err
	}
	return a.s.layout.prepareTenant(tb)
}

func (a *adminTx) TokenByHash(hash []byte) (storage.Token, error) {
	var t storage.Token
	raw := a.tx.Bucket(bktTokens).Get(hash)
	if raw == nil {
		return t, storage.Errorf(storage.NotFound, "no such token")
	}
	return t, json.Unmarshal(raw, &t)
}

func (a *adminTx) Token(id string) (storage.Token, error) {
	hash := a.tx.Bucket(bktTokenIDs).Get([]byte(id))
	if hash == nil {
		return storage.Token{}, storage.Errorf(storage.NotFound, "no such token")
	}
	return a.TokenByHash(hash)
}

func (a *adminTx) Tokens(tenant string) ([]storage.Token, error) {
	var out []storage.Token
	err := a.tx.Bucket(bktTokens).ForEach(func(_, v []byte) error {
		var t storage.Token
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		if tenant == "" || t.Tenant == tenant {
			out = append(out, t)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b storage.Token) int { return a.Created.Compare(b.Created) })
	return out, err
}

func (a *adminTx) PutToken(t storage.Token) error {
	if !a.tx.Writable() {
		return storage.Errorf(storage.Invalid, "a read transaction cannot write")
	}
	hash, err := hex.DecodeString(t.Hash)
	if err != nil || len(hash) == 0 || t.ID == "" {
		return storage.Errorf(storage.Invalid, "a token needs an id and a hash")
	}
	if old := a.tx.Bucket(bktTokenIDs).Get([]byte(t.ID)); old != nil && string(old) != string(hash) {
		return storage.Errorf(storage.Conflict, "a token's hash cannot change")
	}
	if raw := a.tx.Bucket(bktTokens).Get(hash); raw != nil {
		var other storage.Token
		if err := json.Unmarshal(raw, &other); err != nil {
			return err
		}
		if other.ID != t.ID {
			return storage.Errorf(storage.Conflict, "that token already exists")
		}
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := a.tx.Bucket(bktTokens).Put(hash, raw); err != nil {
		return err
	}
	return a.tx.Bucket(bktTokenIDs).Put([]byte(t.ID), hash)
}

func (a *adminTx) In(tenant string) (storage.Tx, error) { return a.s.tenantTx(a.tx, tenant, a.now) }
