package httpapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/postgres"
)

// benchEnv is a server over a store seeded with n users, driven in-process (no sockets), so the
// figures measure the server rather than the loopback network.
type benchEnv struct {
	store storage.Store
	srv   *Server
	ids   []string
}

func newBench(b *testing.B, n int) *benchEnv {
	b.Helper()
	store, svc := openService(b, filepath.Join(b.TempDir(), "bench.db"))
	b.Cleanup(func() { store.Close() })
	srv, err := New(svc, Options{Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{store: store, srv: srv}
	e.ids = seedUsers(b, store, n)
	if pg, ok := store.(*postgres.Store); ok && n > 0 {
		// As the engine itself does within a minute (or autovacuum, where it runs); not on empty
		// tables, whose statistics would then tell the planner they stay empty as they grow.
		if err := pg.Analyze(bg); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// seedUsers stores n typical Entra/Okta users directly, 5,000 to a transaction.
func seedUsers(tb testing.TB, store storage.Store, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 5000 {
		err := store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
			for i := start; i < min(start+5000, n); i++ {
				userName := fmt.Sprintf("user%07d@example.com", i)
				id, err := putRecord(tx, users, map[string]any{"userName": userName, "active": true, "externalId": fmt.Sprintf("ext-%07d", i),
					"displayName": fmt.Sprintf("User %d", i), "name": map[string]any{"givenName": "Given", "familyName": fmt.Sprintf("Family%d", i)},
					"emails":      []any{map[string]any{"value": userName, "type": "work", "primary": true}},
					enterpriseURN: map[string]any{"department": "Engineering", "employeeNumber": fmt.Sprint(i)}})
				if err != nil {
					return err
				}
				if len(ids) < n {
					ids = append(ids, id)
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

func (e *benchEnv) serve(b *testing.B, method, path string, body []byte, want int) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/scim+json")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

func BenchmarkCreateUser(b *testing.B) {
	e := newBench(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new%d@example.com","name":{"givenName":"N","familyName":"F"},"emails":[{"value":"new%d@example.com","type":"work"}]}`, i, i)
		e.serve(b, "POST", "/scim/v2/Users", body, 201)
		i++
	}
}

// benchSizes are the store sizes the read benchmarks run at: SCIMSERVER_BENCH_USERS (a
// comma-separated list, e.g. "10000,1000000") or 10,000 and 100,000.
func benchSizes() []int {
	list := os.Getenv("SCIMSERVER_BENCH_USERS")
	if list == "" {
		return []int{benchScale(10_000), benchScale(100_000)}
	}
	var sizes []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			panic("SCIMSERVER_BENCH_USERS: not a list of positive numbers: " + list)
		}
		sizes = append(sizes, benchScale(n))
	}
	return sizes
}

// benchScale shrinks the stores benchmarks build when SCIMSERVER_BENCH_SMALL is set, so CI can
// run every benchmark once (-benchtime=1x) in seconds.
func benchScale(n int) int {
	if os.Getenv("SCIMSERVER_BENCH_SMALL") != "" {
		return max(n/100, 10)
	}
	return n
}

// benchReads serves GET path(e, i) for i stepping through the users, at each store size.
func benchReads(b *testing.B, path func(e *benchEnv, i int) string) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			e := newBench(b, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i += 7919 {
				e.serve(b, "GET", path(e, i), nil, 200)
			}
		})
	}
}

func BenchmarkGetUser(b *testing.B) {
	benchReads(b, func(e *benchEnv, i int) string { return "/scim/v2/Users/" + e.ids[i%len(e.ids)] })
}

func BenchmarkFilterUserName(b *testing.B) {
	benchReads(b, func(e *benchEnv, i int) string {
		return "/scim/v2/Users?filter=" + url.QueryEscape(fmt.Sprintf(`userName eq "USER%07d@example.com"`, i%len(e.ids)))
	})
}

// BenchmarkAddMembers adds 100 members per PATCH to a group of 1,000 members and to one of
// 100,000, both in the same file of 141,000 users; what a PATCH costs must not depend on the
// group's size. Members, old and new, are users picked at random, as an identity provider's
// are: user ids follow the order of creation, so members taken in id order would all land at
// the end of the group's keys and side by side in the reverse index. Each run (a -count runs a
// size again) starts from the group's own members, and when the users to add run out they are
// taken out again, untimed: every PATCH adds users who are not members to a group of about its
// size.
func BenchmarkAddMembers(b *testing.B) {
	sizes := []int{benchScale(1_000), benchScale(100_000)}
	fresh := benchScale(100 * 200) // users to add: 200 PATCHes to each group before a reset
	e := newBench(b, sizes[0]+sizes[1]+2*fresh)
	ids := slices.Clone(e.ids)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	gids := make([]string, len(sizes))
	adds := make([][]string, len(sizes))
	for i, size := range sizes {
		gids[i] = e.newGroupOf(b, fmt.Sprintf("g%d", size), ids[:size])
		adds[i], ids = ids[size:size+fresh], ids[size+fresh:]
	}
	added := make([]int, len(sizes)) // of adds[i], the users the group has now
	for i, size := range sizes {
		b.Run(fmt.Sprintf("group=%d", size), func(b *testing.B) {
			e.dropMembers(b, gids[i], adds[i][:added[i]])
			added[i] = 0
			b.ReportAllocs()
			for b.Loop() {
				if added[i]+100 > len(adds[i]) {
					b.StopTimer()
					e.dropMembers(b, gids[i], adds[i][:added[i]])
					added[i] = 0
					b.StartTimer()
				}
				var ms []any
				for _, id := range adds[i][added[i] : added[i]+100] {
					ms = append(ms, map[string]any{"value": id})
				}
				added[i] += 100
				body, _ := json.Marshal(patchOp(op("add", "members", ms)))
				e.serve(b, "PATCH", "/scim/v2/Groups/"+gids[i], body, http.StatusNoContent)
			}
		})
	}
}

// dropMembers ends the memberships of ids in group gid, directly in the store.
func (e *benchEnv) dropMembers(b *testing.B, gid string, ids []string) {
	b.Helper()
	err := e.store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		for _, id := range ids {
			if ok, err := tx.RemoveMember(gid, id); err != nil || !ok {
				return cmp.Or(err, fmt.Errorf("%s is not a member of %s", id, gid))
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAddMembersParallel adds 100 users per PATCH to 20 groups from 8 concurrent clients,
// over 100,000 users: every 204 durable, no member added twice, so that every member joins its
// first group.
func BenchmarkAddMembersParallel(b *testing.B) {
	e := newBench(b, benchScale(100_000))
	gids := e.newGroups(b, 20)
	perm := rand.New(rand.NewPCG(1, 2)).Perm(len(e.ids))
	e.parallel(b, 8, func(n int64) {
		i := int(n - 1)
		if (i+1)*100 > len(perm) {
			b.Error("ran out of users to add; raise the seed")
			return
		}
		e.addMembers(b, gids[i%len(gids)], perm[i*100:(i+1)*100])
	})
}

// BenchmarkAddMembersToManyGroups adds the same 1,000 users (of 100,000) to group after group,
// 100 per PATCH in a new order for each group, from 8 concurrent clients, as a directory pushing
// its groups of the same staff does: most members already belong to other groups.
func BenchmarkAddMembersToManyGroups(b *testing.B) {
	e := newBench(b, benchScale(100_000))
	const pool = 1_000
	gids := e.newGroups(b, (b.N+9)/10)
	perms := make([][]int, len(gids))
	for g := range perms {
		perms[g] = rand.New(rand.NewPCG(1, uint64(g))).Perm(min(pool, len(e.ids)))
	}
	e.parallel(b, 8, func(n int64) {
		i := int(n - 1)
		perm, from := perms[i/10], i%10*100
		if from+100 > len(perm) {
			b.Error("fewer than 1,000 users; raise the seed")
			return
		}
		e.addMembers(b, gids[i/10], perm[from:from+100])
	})
}

// newGroups stores n empty groups.
func (e *benchEnv) newGroups(b *testing.B, n int) []string {
	gids := make([]string, n)
	for g := range gids {
		gids[g] = e.newGroupOf(b, fmt.Sprintf("g%02d", g), nil)
	}
	return gids
}

// addMembers adds the users at the indexes given to group gid with one PATCH.
func (e *benchEnv) addMembers(b *testing.B, gid string, users []int) {
	ms := make([]any, 0, len(users))
	for _, u := range users {
		ms = append(ms, map[string]any{"value": e.ids[u]})
	}
	body, _ := json.Marshal(patchOp(op("add", "members", ms)))
	e.serve(b, "PATCH", "/scim/v2/Groups/"+gid, body, http.StatusNoContent)
}

// newGroupOf stores a group with the members given.
func (e *benchEnv) newGroupOf(b *testing.B, name string, members []string) string {
	b.Helper()
	var gid string
	err := e.store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		var err error
		gid, err = putGroup(tx, name, members)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return gid
}

// BenchmarkGetGroup reads a group of 1,000 members with its member list, as Okta does.
func BenchmarkGetGroup(b *testing.B) {
	e := newBench(b, benchScale(1_000))
	gid := e.newGroupOf(b, "big", e.ids)
	b.ReportAllocs()
	for b.Loop() {
		e.serve(b, "GET", "/scim/v2/Groups/"+gid, nil, 200)
	}
}

// BenchmarkGetGroupWithoutMembers reads a group the way Entra ID does; its cost must not depend
// on the number of members.
func BenchmarkGetGroupWithoutMembers(b *testing.B) {
	for _, size := range []int{benchScale(1_000), benchScale(100_000)} {
		b.Run(fmt.Sprintf("group=%d", size), func(b *testing.B) {
			e := newBench(b, size)
			gid := e.newGroupOf(b, "big", e.ids[:size])
			b.ReportAllocs()
			for b.Loop() {
				e.serve(b, "GET", "/scim/v2/Groups/"+gid+"?excludedAttributes=members", nil, 200)
			}
		})
	}
}

// BenchmarkAnonymizeUserIn1000Groups anonymizes users who each belong to 1,000 groups.
func BenchmarkAnonymizeUserIn1000Groups(b *testing.B) {
	n := benchScale(1000)
	e := newBench(b, 64)
	var gids []string
	err := e.store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		for i := 0; i < n; i++ {
			gid, err := putGroup(tx, fmt.Sprintf("g%04d", i), e.ids)
			if err != nil {
				return err
			}
			gids = append(gids, gid)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(e.ids) {
			b.Fatal("ran out of users; raise the seed")
		}
		e.serve(b, "POST", "/scim/v2/Users/"+e.ids[i]+"/.anonymize?attributes=id", nil, 200)
		i++
	}
}

// BenchmarkCreateUserParallel posts users from 32 concurrent clients, as an initial import
// does; every 201 is durable, and the writes share commits.
func BenchmarkCreateUserParallel(b *testing.B) {
	e := newBench(b, 0)
	e.parallel32(b, func(i int64) {
		body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"p%d@example.com","externalId":"ext-%d","active":true,"displayName":"P %d","name":{"givenName":"P","familyName":"F%d"},"emails":[{"value":"p%d@example.com","type":"work","primary":true}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"D","employeeNumber":"%d"}}`, i, i, i, i, i, i)
		e.serve(b, "POST", "/scim/v2/Users", body, 201)
	})
}

// BenchmarkPatchUserParallel sends Entra ID's PATCH (a replace of several attributes, one of
// them active as the string "False"/"True") from 32 concurrent clients to 10,000 users: every
// 200 durable, with the user rendered.
func BenchmarkPatchUserParallel(b *testing.B) {
	e := newBench(b, benchScale(10_000))
	e.parallel32(b, func(i int64) {
		body := fmt.Appendf(nil, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"%s"},{"op":"Replace","path":"displayName","value":"P %d"},{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"D%d"}]}`,
			[]string{"False", "True"}[i%2], i, i%7)
		e.serve(b, "PATCH", "/scim/v2/Users/"+e.ids[int(i*7919)%len(e.ids)], body, 200)
	})
}

// parallel32 runs op from 32 concurrent clients, as an identity provider's import does, with
// i counting the operations from 1.
func (e *benchEnv) parallel32(b *testing.B, op func(i int64)) { e.parallel(b, 32, op) }

// parallel runs op from about as many concurrent clients as it is given (a multiple of
// GOMAXPROCS), with i counting the operations from 1; the time before it is not counted. Over
// bbolt it also reports the commits of those operations: writes per commit, and page writes
// (besides the meta page) per operation, what the disk is asked for.
func (e *benchEnv) parallel(b *testing.B, clients int, op func(i int64)) {
	var commits, writes, pages atomic.Int64
	s, onBolt := e.store.(*bolt.Store)
	if onBolt {
		s.ObserveCommits(func(c storage.Commit) {
			commits.Add(1)
			writes.Add(int64(c.Writes))
			pages.Add(int64(c.PageWrites))
		})
	}
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	var n atomic.Int64
	b.ReportAllocs()
	stop := profileTimed(b)
	b.ResetTimer() // not the seeding
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op(n.Add(1))
		}
	})
	stop()
	if onBolt && commits.Load() > 0 {
		b.ReportMetric(float64(writes.Load())/float64(commits.Load()), "writes/commit")
		b.ReportMetric(float64(pages.Load())/float64(b.N), "pages/op")
	}
}

// profileTimed writes a CPU profile of the timed part alone to the file that
// SCIMSERVER_BENCH_CPUPROFILE names (with ".postgres" added in the PostgreSQL pass), if it is
// set: -cpuprofile would also profile the seeding, which costs more than the operations
// measured. It returns what ends the profile.
func profileTimed(b *testing.B) func() {
	path := os.Getenv("SCIMSERVER_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	if onPostgres {
		path += ".postgres"
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkChangesPage reads the change feed 1,000 changes a page (a consumer catching up on a
// backlog): the cost per change served.
func BenchmarkChangesPage(b *testing.B) {
	const backlog = 10_000
	e := newBench(b, 0)
	err := e.store.Write(bg, scimserver.DefaultTenant, func(tx storage.Tx) error {
		for i := range backlog {
			if err := tx.Append(storage.Event{ActorID: "t", ActorName: "okta", Operation: "patch", ResourceType: "User",
				ResourceID: storage.NewID(), Attributes: []string{"emails", "name"}, Version: uint64(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	pages := 0
	for b.Loop() {
		i := pages
		pages++
		req := httptest.NewRequest("GET", fmt.Sprintf("/api/v1/changes?limit=1000&after=%d", i%(backlog/1000)*1000), nil)
		req.Header.Set("Authorization", "Bearer "+testPlatformToken)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"nextCursor"`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(pages*1000)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkRemoveMembersWhere removes members by filters on their display (matching none) from
// a group of 100,000 members while another client creates users one after another: it reports
// the PATCH's time and the longest create meanwhile, which a match made on the single writer
// holds up. "replay" re-adds a member without a display before one such filter, which replays
// the operations against the whole group.
func BenchmarkRemoveMembersWhere(b *testing.B) {
	e := newBench(b, benchScale(100_000))
	gid := e.newGroupOf(b, "big", e.ids)
	for _, n := range []int{1, 10, 100, -1} {
		name := fmt.Sprintf("filters=%d", n)
		if n < 0 {
			name = "replay"
		}
		b.Run(name, func(b *testing.B) {
			var ops []map[string]any
			if n < 0 {
				ops = append(ops, op("add", "members", []any{map[string]any{"value": e.ids[0]}}))
			}
			for i := range max(n, 1) {
				ops = append(ops, op("remove", fmt.Sprintf(`members[display eq "nobody %d"]`, i), nil))
			}
			body, _ := json.Marshal(patchOp(ops...))
			stop, longest := make(chan struct{}), make(chan time.Duration)
			go func() {
				var most time.Duration
				for i := 0; ; i++ {
					select {
					case <-stop:
						longest <- most
						return
					default:
					}
					req := httptest.NewRequest("POST", "/scim/v2/Users", strings.NewReader(fmt.Sprintf(
						`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"beside-%d-%d@example.com"}`, n, i)))
					req.Header.Set("Authorization", "Bearer "+testToken)
					rec := httptest.NewRecorder()
					start := time.Now()
					e.srv.ServeHTTP(rec, req)
					most = max(most, time.Since(start))
					if rec.Code != http.StatusCreated {
						b.Errorf("create beside: %d %s", rec.Code, rec.Body)
					}
				}
			}()
			for b.Loop() {
				e.serve(b, "PATCH", "/scim/v2/Groups/"+gid, body, http.StatusNoContent)
			}
			close(stop)
			b.ReportMetric(float64((<-longest).Microseconds())/1000, "ms-longest-create")
		})
	}
}
