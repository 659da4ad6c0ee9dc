package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchScale shrinks the stores benchmarks build when SCIMSERVER_BENCH_SMALL is set, so CI can
// run every benchmark once (-benchtime=1x) in seconds.
func benchScale(n int) int {
	if os.Getenv("SCIMSERVER_BENCH_SMALL") != "" {
		return max(n/100, 10)
	}
	return n
}

func benchStore(b *testing.B, users int) (*Store, []string) {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Bootstrap(EnvTokens{}, nil); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 0, users)
	for start := 0; start < users; start += 10000 {
		err := s.Write(DefaultTenant, func(tx *Tx) error {
			for i := start; i < min(start+10000, users); i++ {
				u, err := tx.CreateUser(User{ID: NewID(), Doc: []byte(`{"userName":"u"}`),
					Keys: UserKeys{UserName: fmt.Sprintf("user%07d@example.com", i), ExternalID: fmt.Sprintf("ext%07d", i),
						Emails: []string{fmt.Sprintf("user%07d@example.com", i)}}})
				if err != nil {
					return err
				}
				ids = append(ids, u.ID)
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
			name := NewID()
			err := s.Write(DefaultTenant, func(tx *Tx) error {
				_, err := tx.CreateUser(User{ID: NewID(), Doc: []byte(`{}`), Keys: UserKeys{UserName: name}})
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
				err := s.Read(DefaultTenant, func(tx *Tx) error {
					ids, err := tx.LookupUsers(ByUserName, fmt.Sprintf("USER%07d@example.com", i%n))
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
				err := s.Read(DefaultTenant, func(tx *Tx) error {
					after, skip := tx.UserPosition(pos)
					return tx.ScanUsers(after, skip, func(User) (bool, error) { seen++; return seen < 100, nil })
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
			gid := NewID()
			err := s.Write(DefaultTenant, func(tx *Tx) error {
				if _, err := tx.CreateGroup(Group{ID: gid, Keys: GroupKeys{DisplayName: "g"}}); err != nil {
					return err
				}
				for _, id := range ids[:size] {
					if err := tx.AddMember(gid, Member{Value: id}); err != nil {
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
				if err := s.Write(DefaultTenant, func(tx *Tx) error { return tx.AddMember(gid, Member{Value: id}) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
