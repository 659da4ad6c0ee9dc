package postgres

import (
	"context"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// RefreshStatistics is the statistics refresh the store runs every analyzeEvery.
var RefreshStatistics = (*Store).refreshStatistics

// OpenTenant opens the store at url with opts and gives it the tenant "t"; the store is closed
// when tb ends.
func OpenTenant(tb testing.TB, url string, opts Options) *Store {
	tb.Helper()
	ctx := context.Background()
	s, err := Open(ctx, url, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.WriteAdmin(ctx, func(a storage.AdminTx) error {
		return a.PutTenant(storage.Tenant{ID: "t", Name: "t", Created: a.Now()})
	}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// AnalyzeLock is the first key of the statistics refresh's advisory lock.
const AnalyzeLock = analyzeLock
