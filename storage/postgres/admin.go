package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// adminTx is a transaction over tenants and tokens.
type adminTx struct {
	s     *Store
	ctx   context.Context
	q     *conn
	write bool
	now   time.Time
	views map[string]*tx // In's views, one per tenant, flushed at commit
}

var _ storage.AdminTx = (*adminTx)(nil)

func (a *adminTx) Now() time.Time { return a.now }

func (a *adminTx) mustWrite() error {
	if !a.write {
		return storage.Errorf(storage.Invalid, "a read transaction cannot write")
	}
	return nil
}

func (a *adminTx) Tenants() ([]storage.Tenant, error) {
	rows, err := a.q.Query(a.ctx, "SELECT doc FROM tenants ORDER BY id")
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Tenant, error) {
		var t storage.Tenant
		var raw []byte
		if err := row.Scan(&raw); err != nil {
			return t, err
		}
		return t, json.Unmarshal(raw, &t)
	})
	return out, dbError(err)
}

func (a *adminTx) Tenant(id string) (storage.Tenant, error) {
	var t storage.Tenant
	var raw []byte
	err := a.q.QueryRow(a.ctx, "SELECT doc FROM tenants WHERE id = $1", []byte(id)).Scan(&raw)
	if err == pgx.ErrNoRows {
		return t, storage.Errorf(storage.NotFound, "the tenant does not exist")
	}
	if err != nil {
		return t, dbError(err)
	}
	return t, json.Unmarshal(raw, &t)
}

func (a *adminTx) PutTenant(t storage.Tenant) error {
	if err := a.mustWrite(); err != nil {
		return err
	}
	if t.ID == "" || len(t.ID) > 255 {
		return storage.Errorf(storage.Invalid, "a tenant id is 1 to 255 bytes")
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = a.q.Exec(a.ctx, "INSERT INTO tenants (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
		[]byte(t.ID), raw)
	return dbError(err)
}

// token reads the token the query finds.
func (a *adminTx) token(query string, arg []byte) (storage.Token, error) {
	return scanToken(a.q.QueryRow(a.ctx, query, arg))
}

// scanToken reads a token's doc from row, and whatever more reads.
func scanToken(row pgx.Row, more ...any) (storage.Token, error) {
	var t storage.Token
	var raw []byte
	err := row.Scan(append([]any{&raw}, more...)...)
	if err == pgx.ErrNoRows {
		return t, storage.Errorf(storage.NotFound, "no such token")
	}
	if err != nil {
		return t, dbError(err)
	}
	return t, json.Unmarshal(raw, &t)
}

// tokenWithTenant reads a token by its hash, and its tenant (NULL when it does not exist).
const tokenWithTenant = "SELECT k.doc, t.doc FROM tokens k LEFT JOIN tenants t ON t.id = k.tenant WHERE k.hash = $1"

var _ storage.TokenFinder = (*Store)(nil)

// FindToken reads a token and its tenant with one statement, which sees one snapshot.
func (s *Store) FindToken(ctx context.Context, hash []byte) (storage.Token, *storage.Tenant, error) {
	if s.closed.Load() {
		return storage.Token{}, nil, errClosed
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var tenantDoc []byte
	t, err := scanToken(s.pool.QueryRow(ctx, tokenWithTenant, hash), &tenantDoc)
	if err != nil && s.closed.Load() {
		return storage.Token{}, nil, errClosed // closed while it ran
	}
	if err != nil || tenantDoc == nil {
		return t, nil, err
	}
	var tenant storage.Tenant
	return t, &tenant, json.Unmarshal(tenantDoc, &tenant)
}

func (a *adminTx) TokenByHash(hash []byte) (storage.Token, error) {
	return a.token("SELECT doc FROM tokens WHERE hash = $1", hash)
}

func (a *adminTx) Token(id string) (storage.Token, error) {
	return a.token("SELECT doc FROM tokens WHERE id = $1", []byte(id))
}

func (a *adminTx) Tokens(tenant string) ([]storage.Token, error) {
	rows, err := a.q.Query(a.ctx, "SELECT doc FROM tokens WHERE $1 = '\\x'::bytea OR tenant = $1 ORDER BY created, hash", []byte(tenant))
	if err != nil {
		return nil, dbError(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Token, error) {
		var t storage.Token
		var raw []byte
		if err := row.Scan(&raw); err != nil {
			return t, err
		}
		return t, json.Unmarshal(raw, &t)
	})
	return out, dbError(err)
}

// PutToken checks under the admin lock that the token keeps its hash and shares it with no
// other token; the table's constraints stand behind the check.
func (a *adminTx) PutToken(t storage.Token) error {
	if err := a.mustWrite(); err != nil {
		return err
	}
	hash, err := hex.DecodeString(t.Hash)
	if err != nil || len(hash) == 0 || t.ID == "" {
		return storage.Errorf(storage.Invalid, "a token needs an id and a hash")
	}
	var sameID, sameHash *bool
	err = a.q.QueryRow(a.ctx, `SELECT (SELECT hash = $2 FROM tokens WHERE id = $1), (SELECT id = $1 FROM tokens WHERE hash = $2)`,
		[]byte(t.ID), hash).Scan(&sameID, &sameHash)
	if err != nil {
		return dbError(err)
	}
	if sameID != nil && !*sameID {
		return storage.Errorf(storage.Conflict, "a token's hash cannot change")
	}
	if sameHash != nil && !*sameHash {
		return storage.Errorf(storage.Conflict, "that token already exists")
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = a.q.Exec(a.ctx, `INSERT INTO tokens (id, hash, tenant, created, doc) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, created = excluded.created, doc = excluded.doc`,
		[]byte(t.ID), hash, []byte(t.Tenant), t.Created.UnixNano(), raw)
	return dbError(err)
}

// In returns the transaction's view of tenant, the same view each time: in a write it holds the
// tenant's row lock, and what one call changed the next sees and does not version again.
func (a *adminTx) In(tenant string) (storage.Tx, error) {
	if t := a.views[tenant]; t != nil {
		return t, nil
	}
	t, err := a.s.open(a.ctx, a.q, tenant, a.write, a.now)
	if err != nil {
		return nil, err
	}
	a.views[tenant] = t
	return t, nil
}
