package bolt

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/scimserver/scimserver/storage"
)

// benchScale shrinks the stores benchmarks build when SCIMSERVER_BENCH_SMALL is set, so CI can
// run every benchmark once (-benchtime=1x) in seconds.
func benchScale(n int) int {
	if os.Getenv("SCIMSERVER_BENCH_SMALL") != "" {
		return max(n/100, 10)
	}
	return n
}

func benchStore(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	s := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 10000 {
		err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
			ids = ids[:start]
			for i := start; i < min(start+10000, n); i++ {
				name := fmt.Sprintf("user%07d@example.com", i)
				r := storage.Record{ID: storage.NewID(), Doc: []byte(`{"userName":"u"}`),
					Keys: [][]string{{name}, {fmt.Sprintf("ext%07d", i)}, {name}, nil}}
				if _, err := tx.Insert(users, r); err != nil {
					return err
				}
				ids = append(ids, r.ID)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s, ids
}

// BenchmarkCreateUserParallel measures durable creates from many writers sharing commits.
func BenchmarkCreateUserParallel(b *testing.B) {
	s, _ := benchStore(b, 0)
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := storage.Record{ID: storage.NewID(), Doc: []byte(`{}`), Keys: [][]string{{storage.NewID()}, nil, nil, nil}}
			err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
				_, err := tx.Insert(users, r)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	commits, writes := s.CommitStats()
	if commits > 0 {
		b.ReportMetric(float64(writes)/float64(commits), "writes/commit")
	}
}

func BenchmarkLookupUserName(b *testing.B) {
	for _, n := range []int{benchScale(10_000), benchScale(1_000_000)} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			s, _ := benchStore(b, n)
			i := 0
			for b.Loop() {
				err := s.Read(bg, defaultTenant, func(tx storage.Tx) error {
					ids, err := tx.Lookup(users, "userName", fmt.Sprintf("USER%07d@example.com", i%n))
					if err == nil && len(ids) != 1 {
						err = fmt.Errorf("lookup found %d", len(ids))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
	}
}

// BenchmarkPage reads 100 users at the start and at the end of the id order; the last ones are
// found through the order's blocks, so the two must cost about the same.
func BenchmarkPage(b *testing.B) {
	n := benchScale(1_000_000)
	s, _ := benchStore(b, n)
	for _, pos := range []int{0, n - 100} {
		b.Run(fmt.Sprintf("at=%d", pos), func(b *testing.B) {
			for b.Loop() {
				seen := 0
				err := s.Read(bg, defaultTenant, func(tx storage.Tx) error {
					return tx.Scan(users, storage.Position{Offset: pos}, func(storage.Record) (bool, error) { seen++; return seen < 100, nil })
				})
				if err != nil || seen != 100 {
					b.Fatalf("page at %d: %d users, %v", pos, seen, err)
				}
			}
		})
	}
}

// BenchmarkAddMember adds one member to groups of different sizes: the cost must not grow.
func BenchmarkAddMember(b *testing.B) {
	for _, size := range []int{benchScale(1_000), benchScale(100_000)} {
		b.Run(fmt.Sprintf("group=%d", size), func(b *testing.B) {
			s, ids := benchStore(b, size+benchScale(20_000))
			gid := storage.NewID()
			err := s.Write(bg, defaultTenant, func(tx storage.Tx) error {
				if _, err := tx.Insert(groups, group(gid, "g")); err != nil {
					return err
				}
				for _, id := range ids[:size] {
					if err := tx.AddMember(gid, storage.Member{Value: id, Type: "User"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			next := size
			for b.Loop() {
				if next == len(ids) {
					b.Fatal("ran out of users")
				}
				id := ids[next]
				next++
				if err := s.Write(bg, defaultTenant, func(tx storage.Tx) error { return tx.AddMember(gid, storage.Member{Value: id, Type: "User"}) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPageWrites measures what the data file's writes cost per page (ns/op is per page),
// at random places in a 200 MiB file as a commit's scattered pages land: one write per page,
// against runs of adjacent pages copied together and written at once, as the bbolt fork
// writes them (third_party/bbolt/PATCH.md).
func BenchmarkPageWrites(b *testing.B) {
	const page = 4096
	span := benchScale(50000)
	f, err := os.Create(filepath.Join(b.TempDir(), "pages"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// Written once first, as a data file's pages are, so that no case pays for the first.
	pages := make([][]byte, 4)
	for i := range pages {
		pages[i] = make([]byte, page)
	}
	buf := make([]byte, len(pages)*page)
	for off := 0; off < span*page; off += len(buf) {
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			b.Fatal(err)
		}
	}
	for _, run := range []int{1, 2, 4} {
		for _, together := range []bool{false, true} {
			if run == 1 && together {
				continue
			}
			name := fmt.Sprintf("run=%d/each", run)
			if together {
				name = fmt.Sprintf("run=%d/together", run)
			}
			b.Run(name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				for i := 0; i < b.N; i += run {
					off := int64(rng.IntN(span-run)) * page
					if together {
						for k := range run {
							copy(buf[k*page:], pages[k])
						}
						_, err = f.WriteAt(buf[:run*page], off)
					} else {
						for k := 0; k < run && err == nil; k++ {
							_, err = f.WriteAt(pages[k], off+int64(k)*page)
						}
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
