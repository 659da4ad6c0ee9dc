package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phase measures one phase, which may take several steps, with a fixed set of workers.
type phase struct {
	name    string
	start   time.Time
	workers []*worker
}

func newPhase(name string, workers int, seed uint64) *phase {
	p := &phase{name: name, start: time.Now()}
	salt := fnv64(name)
	for i := range workers {
		p.workers = append(p.workers, &worker{id: i, rng: rand.New(rand.NewPCG(seed, salt+uint64(i)))})
	}
	return p
}

// spread runs fn once on every worker at the same time and waits for all of them.
func (p *phase) spread(fn func(w *worker)) {
	var wg sync.WaitGroup
	for _, w := range p.workers {
		wg.Go(func() { fn(w) })
	}
	wg.Wait()
}

// each calls fn for i in [0, n), handing the next i to whichever worker is free, until done or
// ctx is cancelled.
func (p *phase) each(ctx context.Context, n int, fn func(w *worker, i int)) {
	var next atomic.Int64
	p.spread(func(w *worker) {
		for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
			fn(w, i)
		}
	})
}

func (p *phase) result() PhaseResult {
	recs := make([]*recorder, len(p.workers))
	for i, w := range p.workers {
		recs[i] = &w.rec
	}
	return summarize(p.name, time.Since(p.start), recs)
}

// loadPhases lists the phases of a run in the order they run; later phases use what the
// earlier ones created.
var loadPhases = []struct {
	name string
	run  func(*load, context.Context) PhaseResult
}{
	{"discover", (*load).discover},
	{"create", (*load).create},
	{"get", (*load).get},
	{"lookup-username", (*load).lookupUserName},
	{"lookup-externalid", (*load).lookupExternalID},
	{"patch-entra", (*load).patchEntra},
	{"patch-okta", (*load).patchOkta},
	{"groups", (*load).groupsPhase},
	{"page", (*load).page},
	{"mix", (*load).mix},
	{"stall", (*load).stall},
}

type user struct{ id, userName, externalID string }

type group struct{ id, displayName string }

// load is one run against a SCIM server: what the phases created, which later phases use and
// verify.
type load struct {
	cfg   config
	c     *client
	runID string
	users []user
	// groups and userGroups are set by the groups phase. userGroups[u] lists the groups user u
	// is a member of; in the mix phase only the worker owning u changes that entry.
	groups     []group
	userGroups [][]int
	// feed follows the change feed during the create phase; created is what that phase made.
	feed    *feedRun
	created []user
}

func (l *load) newPhase(name string) *phase { return newPhase(name, l.cfg.concurrency, l.cfg.seed) }

func (l *load) randomUser(w *worker) int { return w.rng.IntN(len(l.users)) }

// ownedUser picks a random user of those worker w owns (index ≡ w.id modulo the number of
// workers). Writers touch only their own users so that no two requests race on one resource
// and every answer can be checked exactly.
func (l *load) ownedUser(w *worker, workers int) (int, bool) {
	n := (len(l.users) - w.id + workers - 1) / workers
	if n <= 0 {
		return 0, false
	}
	return w.id + workers*w.rng.IntN(n), true
}

func (l *load) create(ctx context.Context) PhaseResult {
	workers := l.cfg.concurrency
	if l.cfg.createConcurrency > 0 {
		workers = l.cfg.createConcurrency
	}
	p := newPhase("create", workers, l.cfg.seed)
	made := make([]user, l.cfg.users)
	p.each(ctx, l.cfg.users, func(w *worker, i int) {
		u := user{userName: fmt.Sprintf("scimload-%s-%07d@example.com", l.runID, i), externalID: newGUID()}
		w.call(ctx, l.c, "create", http.MethodPost, "/Users", mustJSON(userBody(u, i)), http.StatusCreated, func(b []byte) error {
			got, err := decode[scimUser](b)
			if err != nil {
				return err
			}
			if got.ID == "" || got.UserName != u.userName || got.ExternalID != u.externalID {
				return fmt.Errorf("answered id %q userName %q externalId %q for userName %q externalId %q",
					got.ID, got.UserName, got.ExternalID, u.userName, u.externalID)
			}
			u.id = got.ID
			made[i] = u
			if l.feed != nil {
				l.feed.acked(got.ID)
			}
			return nil
		})
	})
	for _, u := range made {
		if u.id != "" {
			l.users = append(l.users, u)
			l.created = append(l.created, u)
		}
	}
	return p.result()
}

// discover learns the users a server already holds by reading every page of /Users, in place
// of creating them, so that the read phases can be measured again on a large file that an
// earlier run built. Every page must answer the startIndex asked and every id come once. The
// lookups expect each externalId to belong to one user, as scimload's own users' do; users
// without one are looked up by userName only. With --discover-max it reads only the first pages.
func (l *load) discover(ctx context.Context) PhaseResult {
	p := l.newPhase("discover")
	total := -1
	var mu sync.Mutex
	seen := map[string]int{}
	read := func(w *worker, start int) {
		path := fmt.Sprintf("/Users?startIndex=%d&count=%d&attributes=userName,externalId", start, pageSize)
		w.call(ctx, l.c, "page", http.MethodGet, path, nil, http.StatusOK, func(b []byte) error {
			lr, err := decode[listResponse[scimUser]](b)
			if err != nil {
				return err
			}
			if lr.TotalResults == nil || lr.Resources == nil || lr.StartIndex != start {
				return fmt.Errorf("startIndex %d or totalResults or Resources missing, asked for startIndex %d", lr.StartIndex, start)
			}
			mu.Lock()
			defer mu.Unlock()
			if total < 0 {
				total = *lr.TotalResults
			}
			for _, u := range *lr.Resources {
				if seen[u.ID]++; seen[u.ID] == 1 {
					l.users = append(l.users, user{id: u.ID, userName: u.UserName, externalID: u.ExternalID})
				}
			}
			return nil
		})
	}
	read(p.workers[0], 1)
	want := total
	if l.cfg.discoverMax > 0 {
		want = min(total, l.cfg.discoverMax)
	}
	if want > pageSize {
		p.each(ctx, (want-1)/pageSize, func(w *worker, i int) { read(w, 1+(i+1)*pageSize) })
	}
	if ctx.Err() == nil && want == total && total >= 0 && len(l.users) != total {
		p.workers[0].rec.fail("coverage", fmt.Errorf("%d distinct users listed, totalResults %d", len(l.users), total))
	}
	slices.SortFunc(l.users, func(a, b user) int { return strings.Compare(a.id, b.id) })
	return p.result()
}

var (
	givenNames  = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Leslie"}
	familyNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lamport"}
)

// userBody is a user as Okta and Entra ID provision one: names, a primary work email and the
// enterprise extension.
func userBody(u user, i int) map[string]any {
	given := givenNames[i%len(givenNames)]
	family := familyNames[i/len(givenNames)%len(familyNames)]
	return map[string]any{
		"schemas":     []string{userURN, enterpriseURN},
		"userName":    u.userName,
		"externalId":  u.externalID,
		"active":      true,
		"displayName": given + " " + family,
		"name":        map[string]string{"givenName": given, "familyName": family, "formatted": given + " " + family},
		"emails":      []map[string]any{{"value": u.userName, "type": "work", "primary": true}},
		"title":       "Engineer",
		enterpriseURN: map[string]string{"employeeNumber": strconv.Itoa(100000 + i), "department": fmt.Sprintf("Department %d", i%20)},
	}
}

func (l *load) get(ctx context.Context) PhaseResult {
	p := l.newPhase("get")
	p.each(ctx, l.cfg.ops, func(w *worker, _ int) { l.getUser(ctx, w, "get", l.randomUser(w)) })
	return p.result()
}

func (l *load) getUser(ctx context.Context, w *worker, kind string, i int) {
	u := l.users[i]
	w.call(ctx, l.c, kind, http.MethodGet, "/Users/"+url.PathEscape(u.id), nil, http.StatusOK, func(b []byte) error {
		got, err := decode[scimUser](b)
		if err != nil {
			return err
		}
		if got.ID != u.id || got.UserName != u.userName {
			return fmt.Errorf("answered id %q userName %q, want %q %q", got.ID, got.UserName, u.id, u.userName)
		}
		return nil
	})
}

func (l *load) lookupUserName(ctx context.Context) PhaseResult {
	return l.lookupPhase(ctx, "lookup-username", "userName")
}

func (l *load) lookupExternalID(ctx context.Context) PhaseResult {
	return l.lookupPhase(ctx, "lookup-externalid", "externalId")
}

// lookupPhase looks users up by attr; one lookup in ten is for a user that does not exist, as
// clients ask before they create.
func (l *load) lookupPhase(ctx context.Context, name, attr string) PhaseResult {
	p := l.newPhase(name)
	p.each(ctx, l.cfg.ops, func(w *worker, i int) {
		if i%10 == 9 {
			l.lookup(ctx, w, "miss", attr, newGUID(), "")
			return
		}
		u := l.users[l.randomUser(w)]
		if lookupValue(u, attr) == "" { // a discovered user without an externalId
			l.lookup(ctx, w, "miss", attr, newGUID(), "")
			return
		}
		l.lookup(ctx, w, "hit", attr, lookupValue(u, attr), u.id)
	})
	return p.result()
}

// lookupValue is the value clients search for. userName is matched case-insensitively (RFC 7643
// §4.1.1, and Entra ID does not preserve case), so it is asked in upper case; externalId is
// case-exact.
func lookupValue(u user, attr string) string {
	if attr == "userName" {
		return strings.ToUpper(u.userName)
	}
	return u.externalID
}

// lookup filters Users on attr eq value and checks that exactly the user wantID is found, or
// nobody when wantID is empty.
func (l *load) lookup(ctx context.Context, w *worker, kind, attr, value, wantID string) {
	path := "/Users?filter=" + url.QueryEscape(fmt.Sprintf("%s eq %q", attr, value))
	w.call(ctx, l.c, kind, http.MethodGet, path, nil, http.StatusOK, func(b []byte) error {
		lr, err := decode[listResponse[scimUser]](b)
		if err != nil {
			return err
		}
		ids, err := listIDs(lr, func(u scimUser) string { return u.ID })
		if err != nil {
			return err
		}
		var want []string
		if wantID != "" {
			want = []string{wantID}
		}
		if !slices.Equal(ids, want) {
			return fmt.Errorf("found %v, want %v", ids, want)
		}
		return nil
	})
}

// listIDs checks a list response's counts (totalResults equals the number of resources, and
// Resources is a list even when empty) and returns the resources' ids, sorted.
func listIDs[T any](lr listResponse[T], id func(T) string) ([]string, error) {
	if lr.TotalResults == nil || lr.Resources == nil {
		return nil, errors.New("totalResults or Resources missing")
	}
	res := *lr.Resources
	if *lr.TotalResults != len(res) || lr.ItemsPerPage != len(res) {
		return nil, fmt.Errorf("totalResults %d, itemsPerPage %d with %d resources", *lr.TotalResults, lr.ItemsPerPage, len(res))
	}
	ids := make([]string, 0, len(res))
	for _, r := range res {
		ids = append(ids, id(r))
	}
	slices.Sort(ids)
	return ids, nil
}

func (l *load) patchEntra(ctx context.Context) PhaseResult {
	return l.patchPhase(ctx, "patch-entra", l.entraDeactivate, l.entraReactivate)
}

func (l *load) patchOkta(ctx context.Context) PhaseResult {
	return l.patchPhase(ctx, "patch-okta", l.oktaDeactivate, l.oktaReactivate)
}

// patchPhase sends about --ops PATCH requests, running steps in turn on one owned user.
func (l *load) patchPhase(ctx context.Context, name string, steps ...func(context.Context, *worker, int)) PhaseResult {
	p := l.newPhase(name)
	p.spread(func(w *worker) {
		share := l.cfg.ops / len(p.workers)
		if w.id < l.cfg.ops%len(p.workers) {
			share++
		}
		for ; share > 0 && ctx.Err() == nil; share -= len(steps) {
			u, ok := l.ownedUser(w, len(p.workers))
			if !ok {
				return
			}
			for _, step := range steps {
				step(ctx, w, u)
			}
		}
	})
	return p.result()
}

// entraDeactivate sends Entra ID's legacy shape: capitalised op names and booleans as strings.
func (l *load) entraDeactivate(ctx context.Context, w *worker, u int) {
	family := fmt.Sprintf("Entra%08x", w.rng.Uint32())
	body := patchBody(
		patchOp{Op: "Replace", Path: "name.familyName", Value: family},
		patchOp{Op: "Replace", Path: "active", Value: "False"},
	)
	l.patchUser(ctx, w, "deactivate", u, body, func(got scimUser) error {
		return errors.Join(wantFamily(got, family), wantActive(got, false))
	})
}

func (l *load) entraReactivate(ctx context.Context, w *worker, u int) {
	body := patchBody(patchOp{Op: "Replace", Path: "active", Value: "True"})
	l.patchUser(ctx, w, "reactivate", u, body, func(got scimUser) error { return wantActive(got, true) })
}

// oktaDeactivate and oktaReactivate send Okta's shape: a path-less replace of active.
func (l *load) oktaDeactivate(ctx context.Context, w *worker, u int) {
	body := patchBody(patchOp{Op: "replace", Value: map[string]any{"active": false}})
	l.patchUser(ctx, w, "deactivate", u, body, func(got scimUser) error { return wantActive(got, false) })
}

func (l *load) oktaReactivate(ctx context.Context, w *worker, u int) {
	body := patchBody(patchOp{Op: "replace", Value: map[string]any{"active": true}})
	l.patchUser(ctx, w, "reactivate", u, body, func(got scimUser) error { return wantActive(got, true) })
}

// patchUser PATCHes user u and checks that the answer is that user, changed as want says; it
// reports whether it was.
func (l *load) patchUser(ctx context.Context, w *worker, kind string, u int, body []byte, want func(scimUser) error) bool {
	id := l.users[u].id
	_, ok := w.call(ctx, l.c, kind, http.MethodPatch, "/Users/"+url.PathEscape(id), body, http.StatusOK, func(b []byte) error {
		got, err := decode[scimUser](b)
		if err != nil {
			return err
		}
		if got.ID != id {
			return fmt.Errorf("answered user %q", got.ID)
		}
		return want(got)
	})
	return ok
}

func wantActive(u scimUser, active bool) error {
	if u.Active == nil || *u.Active != active {
		return fmt.Errorf("active is %s, want %t", mustJSON(u.Active), active)
	}
	return nil
}

func wantFamily(u scimUser, family string) error {
	if u.Name.FamilyName != family {
		return fmt.Errorf("name.familyName is %q, want %q", u.Name.FamilyName, family)
	}
	return nil
}

// memberBatch is the number of members one PATCH adds, as Entra ID batches them.
const memberBatch = 100

// groupsPhase creates groups, fills them with PATCHes of memberBatch members, removes a tenth
// of each group's members one by one with a filter path, and then checks every group and a
// sample of users against the membership it should have.
func (l *load) groupsPhase(ctx context.Context) PhaseResult {
	p := l.newPhase("groups")
	plan := rand.New(rand.NewPCG(l.cfg.seed, fnv64("groups-plan")))
	made := make([]group, l.cfg.groups)
	p.each(ctx, l.cfg.groups, func(w *worker, g int) {
		name := fmt.Sprintf("scimload-%s-group-%04d", l.runID, g)
		body := mustJSON(map[string]any{"schemas": []string{groupURN}, "displayName": name, "externalId": newGUID()})
		w.call(ctx, l.c, "create", http.MethodPost, "/Groups", body, http.StatusCreated, func(b []byte) error {
			got, err := decode[scimGroup](b)
			if err != nil {
				return err
			}
			if got.ID == "" || got.DisplayName != name || len(got.Members) != 0 {
				return fmt.Errorf("answered id %q displayName %q with %d members for %q", got.ID, got.DisplayName, len(got.Members), name)
			}
			made[g] = group{id: got.ID, displayName: name}
			return nil
		})
	})
	size := min(l.cfg.groupSize, len(l.users))
	var members [][]int // members[g]: the users group g gets, in the order they are added
	for _, g := range made {
		if g.id != "" {
			l.groups = append(l.groups, g)
			members = append(members, sample(plan, len(l.users), size))
		}
	}

	// Batches of one group go out concurrently, as from a busy client: a lost update would
	// show in the verification below.
	type batch struct{ g, from, to int }
	var batches []batch
	for g, m := range members {
		for from := 0; from < len(m); from += memberBatch {
			batches = append(batches, batch{g, from, min(from+memberBatch, len(m))})
		}
	}
	p.each(ctx, len(batches), func(w *worker, i int) {
		b := batches[i]
		value := make([]map[string]string, 0, b.to-b.from)
		for _, u := range members[b.g][b.from:b.to] {
			value = append(value, map[string]string{"value": l.users[u].id})
		}
		body := patchBody(patchOp{Op: "add", Path: "members", Value: value})
		w.call(ctx, l.c, "add-members", http.MethodPatch, "/Groups/"+url.PathEscape(l.groups[b.g].id), body, http.StatusNoContent, nil)
	})

	type removal struct{ g, u int }
	var removals []removal
	l.userGroups = make([][]int, len(l.users))
	removed := map[int]bool{}
	for g, m := range members {
		cut := len(m) / 10
		for _, u := range m[:cut] {
			removals = append(removals, removal{g, u})
			removed[u] = true
		}
		for _, u := range m[cut:] {
			l.userGroups[u] = append(l.userGroups[u], g)
		}
	}
	p.each(ctx, len(removals), func(w *worker, i int) {
		r := removals[i]
		l.removeMember(ctx, w, "remove-member", r.g, r.u)
	})

	// Check every group, and a sample of users: kept members, removed ones, and never-added
	// ones (when there are any).
	var kept, gone, never []int
	for _, u := range plan.Perm(len(l.users)) {
		switch {
		case removed[u]:
			gone = appendMax(gone, u, 20)
		case len(l.userGroups[u]) > 0:
			kept = appendMax(kept, u, 20)
		default:
			never = appendMax(never, u, 5)
		}
	}
	sample := slices.Concat(kept, gone, never)
	p.each(ctx, len(l.groups)+len(sample), func(w *worker, i int) {
		if i < len(l.groups) {
			l.verifyGroup(ctx, w, i, members[i][len(members[i])/10:])
			return
		}
		l.verifyMemberOf(ctx, w, sample[i-len(l.groups)])
	})
	return p.result()
}

func appendMax(s []int, v, n int) []int {
	if len(s) < n {
		return append(s, v)
	}
	return s
}

func (l *load) addMember(ctx context.Context, w *worker, kind string, g, u int) bool {
	body := patchBody(patchOp{Op: "add", Path: "members", Value: []map[string]string{{"value": l.users[u].id}}})
	_, ok := w.call(ctx, l.c, kind, http.MethodPatch, "/Groups/"+url.PathEscape(l.groups[g].id), body, http.StatusNoContent, nil)
	return ok
}

func (l *load) removeMember(ctx context.Context, w *worker, kind string, g, u int) bool {
	body := patchBody(patchOp{Op: "remove", Path: fmt.Sprintf("members[value eq %q]", l.users[u].id)})
	_, ok := w.call(ctx, l.c, kind, http.MethodPatch, "/Groups/"+url.PathEscape(l.groups[g].id), body, http.StatusNoContent, nil)
	return ok
}

// verifyGroup checks that group g without its members has no members attribute, and with them
// has exactly the users want.
func (l *load) verifyGroup(ctx context.Context, w *worker, g int, want []int) {
	grp := l.groups[g]
	path := "/Groups/" + url.PathEscape(grp.id)
	w.call(ctx, l.c, "verify", http.MethodGet, path+"?excludedAttributes=members", nil, http.StatusOK, func(b []byte) error {
		m, err := decode[map[string]json.RawMessage](b)
		if err != nil {
			return err
		}
		if _, ok := m["members"]; ok {
			return errors.New("members present although excluded")
		}
		if got, _ := decode[scimGroup](b); got.ID != grp.id || got.DisplayName != grp.displayName {
			return fmt.Errorf("answered id %q displayName %q", got.ID, got.DisplayName)
		}
		return nil
	})
	wantIDs := make([]string, 0, len(want))
	for _, u := range want {
		wantIDs = append(wantIDs, l.users[u].id)
	}
	slices.Sort(wantIDs)
	w.call(ctx, l.c, "verify", http.MethodGet, path, nil, http.StatusOK, func(b []byte) error {
		got, err := decode[scimGroup](b)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(got.Members))
		for _, m := range got.Members {
			ids = append(ids, m.Value)
		}
		slices.Sort(ids)
		if missing, extra := diff(wantIDs, ids), diff(ids, wantIDs); missing+extra > 0 {
			return fmt.Errorf("group %s has %d members: %d expected ones missing, %d unexpected", grp.displayName, len(ids), missing, extra)
		}
		return nil
	})
}

// diff counts the elements of sorted a that sorted b lacks.
func diff(a, b []string) int {
	n := 0
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			n++
		}
	}
	return n
}

// verifyMemberOf checks that a members filter finds exactly user u's groups.
func (l *load) verifyMemberOf(ctx context.Context, w *worker, u int) {
	uid := l.users[u].id
	var want []string
	for _, g := range l.userGroups[u] {
		want = append(want, l.groups[g].id)
	}
	slices.Sort(want)
	q := url.Values{"filter": {fmt.Sprintf("members[value eq %q]", uid)}, "excludedAttributes": {"members"}}
	w.call(ctx, l.c, "verify", http.MethodGet, "/Groups?"+q.Encode(), nil, http.StatusOK, func(b []byte) error {
		lr, err := decode[listResponse[scimGroup]](b)
		if err != nil {
			return err
		}
		ids, err := listIDs(lr, func(g scimGroup) string { return g.ID })
		if err != nil {
			return err
		}
		if !slices.Equal(ids, want) {
			return fmt.Errorf("user %s is in groups %v, want %v", uid, ids, want)
		}
		return nil
	})
}

// pageSize is the page the page phase asks for.
const pageSize = 100

// page walks all users page by page, as a client does for a full import, and checks that every
// created user is listed exactly once under a stable totalResults.
func (l *load) page(ctx context.Context) PhaseResult {
	p := newPhase("page", 1, l.cfg.seed)
	w := p.workers[0]
	seen := map[string]int{}
	total := -1
	var first, last time.Duration
	for start := 1; ctx.Err() == nil && (start == 1 || start <= total); start += pageSize {
		path := fmt.Sprintf("/Users?startIndex=%d&count=%d", start, pageSize)
		r, ok := w.call(ctx, l.c, "page", http.MethodGet, path, nil, http.StatusOK, func(b []byte) error {
			lr, err := decode[listResponse[scimUser]](b)
			if err != nil {
				return err
			}
			if lr.TotalResults == nil || lr.Resources == nil {
				return errors.New("totalResults or Resources missing")
			}
			if total < 0 {
				total = *lr.TotalResults
			}
			res := *lr.Resources
			for _, u := range res {
				seen[u.ID]++
			}
			want := min(pageSize, max(total-start+1, 0))
			switch {
			case *lr.TotalResults != total:
				return fmt.Errorf("totalResults %d, the first page said %d", *lr.TotalResults, total)
			case lr.StartIndex != start || lr.ItemsPerPage != len(res) || len(res) != want:
				return fmt.Errorf("startIndex %d, itemsPerPage %d, %d resources; want %d, %d, %d",
					lr.StartIndex, lr.ItemsPerPage, len(res), start, want, want)
			}
			return nil
		})
		if total < 0 {
			break // without a first page there is nothing to walk
		}
		if ok && start == 1 {
			first = r.latency
		}
		if ok && start+pageSize > total {
			last = r.latency
		}
	}
	if ctx.Err() == nil && total >= 0 {
		l.checkCoverage(w, seen, total)
	}
	res := p.result()
	res.FirstPageMs, res.LastPageMs = ms(first), ms(last)
	return res
}

// checkCoverage records an error for created users the walk missed and for ids it listed more
// than once.
func (l *load) checkCoverage(w *worker, seen map[string]int, total int) {
	missing, twice := 0, 0
	for _, u := range l.users {
		if seen[u.id] == 0 {
			missing++
		}
	}
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if missing > 0 {
		w.rec.fail("coverage", fmt.Errorf("%d of %d created users not listed", missing, len(l.users)))
	}
	if twice > 0 {
		w.rec.fail("coverage", fmt.Errorf("%d users listed more than once", twice))
	}
	if len(seen) != total {
		w.rec.fail("coverage", fmt.Errorf("%d distinct users listed, totalResults %d", len(seen), total))
	}
}

// mix runs a steady state for --duration: mostly reads by id and by userName (clients check
// before they write), some updates, a little group churn.
func (l *load) mix(ctx context.Context) PhaseResult {
	p := l.newPhase("mix")
	workers := len(p.workers)
	type op struct {
		weight int
		run    func(w *worker)
	}
	ops := []op{
		{50, func(w *worker) { l.getUser(ctx, w, "get", l.randomUser(w)) }},
		{25, func(w *worker) {
			u := l.users[l.randomUser(w)]
			l.lookup(ctx, w, "lookup-username", "userName", lookupValue(u, "userName"), u.id)
		}},
		{15, func(w *worker) {
			if u, ok := l.ownedUser(w, workers); ok {
				family := fmt.Sprintf("Mix%08x", w.rng.Uint32())
				body := patchBody(patchOp{Op: "replace", Path: "name.familyName", Value: family})
				l.patchUser(ctx, w, "patch", u, body, func(got scimUser) error { return wantFamily(got, family) })
			}
		}},
		{5, func(w *worker) {
			u := l.users[l.randomUser(w)]
			l.lookup(ctx, w, "lookup-externalid", "externalId", lookupValue(u, "externalId"), u.id)
		}},
	}
	if len(l.groups) > 0 {
		ops = append(ops, op{5, func(w *worker) { l.toggleMember(ctx, w, workers) }})
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	deadline := time.Now().Add(l.cfg.duration)
	p.spread(func(w *worker) {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			n := w.rng.IntN(total)
			for _, o := range ops {
				if n < o.weight {
					o.run(w)
					break
				}
				n -= o.weight
			}
		}
	})
	return p.result()
}

// toggleMember adds an owned user to a random group, or removes it if it is already a member.
func (l *load) toggleMember(ctx context.Context, w *worker, workers int) {
	u, ok := l.ownedUser(w, workers)
	if !ok {
		return
	}
	g := w.rng.IntN(len(l.groups))
	if i := slices.Index(l.userGroups[u], g); i >= 0 {
		if l.removeMember(ctx, w, "remove-member", g, u) {
			l.userGroups[u] = slices.Delete(l.userGroups[u], i, i+1)
		}
	} else if l.addMember(ctx, w, "add-member", g, u) {
		l.userGroups[u] = append(l.userGroups[u], g)
	}
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// newGUID returns a random (version 4) UUID, the shape of Entra ID's object ids.
func newGUID() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newRunID names a run; it prefixes every userName and displayName so runs never collide.
func newRunID() string {
	var b [4]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sample returns k distinct numbers from [0, n) in random order: a partial Fisher-Yates
// shuffle that remembers only the swapped positions, so it costs O(k) however large n is.
func sample(r *rand.Rand, n, k int) []int {
	swapped := make(map[int]int, k)
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i
	}
	out := make([]int, k)
	for i := 0; i < k; i++ {
		j := i + r.IntN(n-i)
		out[i], swapped[j] = at(j), at(i)
	}
	return out
}
