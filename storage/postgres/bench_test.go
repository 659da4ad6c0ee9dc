package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

// benchScale shrinks the stores benchmarks build when SCIMSERVER_BENCH_SMALL is set, so CI can
// run every benchmark once (-benchtime=1x) in seconds.
func benchScale(n int) int {
	if os.Getenv("SCIMSERVER_BENCH_SMALL") != "" {
		return max(n/100, 10)
	}
	return n
}

// BenchmarkPage reads 100 records at the start of the id order of n and 1% before its end: those
// are found through the counted blocks, so the two must cost about the same.
func BenchmarkPage(b *testing.B) {
	n := benchScale(1_000_000)
	ctx := context.Background()
	s := postgres.OpenTenant(b, pgtest.URL(b), postgres.Options{Collections: []*storage.Collection{storagetest.People}})
	for start := 0; start < n; start += 10000 {
		err := s.Write(ctx, "t", func(tx storage.Tx) error {
			for i := start; i < min(start+10000, n); i++ {
				name := fmt.Sprintf("user%07d@example.com", i)
				r := storage.Record{ID: storage.NewID(), Doc: []byte(`{"userName":"u"}`), Keys: [][]string{nil, {name}, {name}, nil}}
				if _, err := tx.Insert(storagetest.People, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Analyze(ctx); err != nil {
		b.Fatal(err)
	}
	for _, pos := range []int{0, n - n/100} {
		b.Run(fmt.Sprintf("at=%d", pos), func(b *testing.B) {
			for b.Loop() {
				seen := 0
				err := s.Read(ctx, "t", func(tx storage.Tx) error {
					return tx.Scan(storagetest.People, storage.Position{Offset: pos}, func(storage.Record) (bool, error) { seen++; return seen < 100, nil })
				})
				if err != nil || seen != 100 {
					b.Fatalf("page at %d: %d records, %v", pos, seen, err)
				}
			}
		})
	}
}
