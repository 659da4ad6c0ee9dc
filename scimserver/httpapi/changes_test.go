package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimserver/scimserver/scimserver"
)

// feedChange is a change as the feed serves it.
type feedChange struct {
	Cursor       string    `json:"cursor"`
	Time         time.Time `json:"time"`
	ResourceType string    `json:"resourceType"`
	ResourceID   string    `json:"resourceId"`
	Operation    string    `json:"operation"`
	Version      string    `json:"version"`
	Attributes   []string  `json:"attributes"`
	Member       *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"member"`
	Campaign    string `json:"campaign"`
	Interaction string `json:"interaction"`
	Actor       string `json:"actor"`
}

func (c feedChange) String() string {
	s := c.Operation + " " + c.ResourceType + " " + c.ResourceID
	if c.Member != nil {
		s += " " + c.Member.Type + " " + c.Member.ID
	}
	return s
}

type feedPage struct {
	Changes    []feedChange `json:"changes"`
	NextCursor string       `json:"nextCursor"`
}

// feed reads one page of the change feed with token; query is the query string.
func (e *testEnv) feed(token, query string) feedPage {
	e.t.Helper()
	r := e.doAs(token, "GET", "/api/v1/changes?"+query, nil).must(e.t, http.StatusOK)
	raw, _ := json.Marshal(r)
	var p feedPage
	if err := json.Unmarshal(raw, &p); err != nil {
		e.t.Fatal(err)
	}
	if p.Changes == nil || p.NextCursor == "" {
		e.t.Fatalf("feed page without changes or nextCursor: %s", raw)
	}
	return p
}

// pollAsync reads one page of the feed in a goroutine (a long poll, typically); a failure is
// reported with t.Error, and the channel then gets an empty page.
func (e *testEnv) pollAsync(token, query string) <-chan feedPage {
	out := make(chan feedPage, 1)
	go func() {
		var p feedPage
		defer func() { out <- p }()
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/changes?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			e.t.Error(err)
			return
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != 200 {
			e.t.Errorf("long poll: %d %v", res.StatusCode, err)
		}
	}()
	return out
}

// feedAll reads the feed after the cursor after to its end, limit changes a page.
func (e *testEnv) feedAll(token, after string, limit int) []feedChange {
	e.t.Helper()
	var all []feedChange
	for {
		p := e.feed(token, "after="+after+"&limit="+strconv.Itoa(limit))
		all = append(all, p.Changes...)
		if len(p.Changes) == 0 {
			return all
		}
		after = p.NextCursor
	}
}

func describe(cs []feedChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// checkCursors asserts that the cursors of cs grow strictly.
func checkCursors(t *testing.T, cs []feedChange) {
	t.Helper()
	var last uint64
	for i, c := range cs {
		n, err := strconv.ParseUint(c.Cursor, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("change %d (%v) has cursor %q after %d", i, c, c.Cursor, last)
		}
		last = n
	}
}

func (e *testEnv) version(path string) string {
	e.t.Helper()
	return str(get(e.do("GET", path, nil).must(e.t, 200), "meta", "version"))
}

// TestChangesEveryOperation makes each kind of change once, through the SCIM and platform
// APIs, and reads the feed: one change each, in order, in the platform's words, with the
// version each write left, the attribute names and the actor — and no value.
func TestChangesEveryOperation(t *testing.T) {
	e := newEnv(t)
	start := e.feed(testPlatformToken, "")
	if len(start.Changes) != 0 {
		t.Fatalf("the feed without a cursor starts with history: %v", start.Changes)
	}
	personal := []string{"feed.person@example.com", "Feedgiven", "Feedfamily", "+15550100"}
	u := e.createUser(personal[0], map[string]any{"name": map[string]any{"givenName": personal[1], "familyName": personal[2]},
		"phoneNumbers": []any{map[string]any{"value": personal[3]}}})
	uv1 := e.version("/scim/v2/Users/" + u)
	e.do("PATCH", "/scim/v2/Users/"+u, patchOp(op("replace", "displayName", "Feed Display"))).must(t, 200)
	uv2 := e.version("/scim/v2/Users/" + u)
	g := e.createGroup("Feed group")
	e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("add", "members", []any{map[string]any{"value": u}}))).must(t, 204)
	gv := e.version("/scim/v2/Groups/" + g)
	e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("remove", `members[value eq "`+u+`"]`, nil))).must(t, 204)
	e.do("PATCH", "/scim/v2/Users/"+u, patchOp(op("replace", "active", false))).must(t, 200)
	e.do("PATCH", "/scim/v2/Users/"+u, patchOp(op("replace", "active", true))).must(t, 200)
	// An operator's change is in the trail but not in the feed.
	e.adminToken()
	e.api("POST", "/api/v1/users/"+u+"/interactions", map[string]any{"type": "login"}).must(t, 204)
	e.api("PUT", "/api/v1/campaigns/c-1/participants/"+u, nil).must(t, 204)
	e.api("DELETE", "/api/v1/campaigns/c-1/participants/"+u, nil).must(t, 204)
	e.do("DELETE", "/scim/v2/Users/"+u, nil).must(t, 204)
	v := e.createUser("feed.other@example.com", nil)
	e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("add", "members", []any{map[string]any{"value": v}}))).must(t, 204)
	e.api("POST", "/api/v1/users/"+v+"/anonymize", nil).must(t, 200)
	vv := e.version("/scim/v2/Users/" + v)
	w := e.createUser("feed.gone@example.com", nil)
	e.do("DELETE", "/scim/v2/Users/"+w, nil).must(t, 204)
	e.do("DELETE", "/scim/v2/Groups/"+g, nil).must(t, 204)

	got := e.feedAll(testPlatformToken, start.NextCursor, 1000)
	want := []string{
		"created User " + u, "updated User " + u, "created Group " + g, "member-added Group " + g + " User " + u,
		"member-removed Group " + g + " User " + u, "deactivated User " + u, "reactivated User " + u,
		"interaction User " + u, "campaign-assigned User " + u, "campaign-unassigned User " + u,
		"deactivated-instead-of-delete User " + u, "created User " + v, "member-added Group " + g + " User " + v,
		"member-removed Group " + g + " User " + v, "anonymized User " + v, "created User " + w, "deleted User " + w,
		"deleted Group " + g,
	}
	if !slices.Equal(describe(got), want) {
		t.Fatalf("feed:\n got %q\nwant %q", describe(got), want)
	}
	checkCursors(t, got)
	for i, check := range []struct {
		i    int
		ok   bool
		what string
	}{
		{0, got[0].Version == uv1 && uv1 == `W/"1"`, "a created user's version"},
		{1, got[1].Version == uv2 && slices.Equal(got[1].Attributes, []string{"displayName"}), "an update's version and attributes"},
		{3, got[3].Version == gv, "a membership's group version"},
		{5, slices.Equal(got[5].Attributes, []string{"active"}), "a deactivation's attributes"},
		{7, got[7].Interaction == "login" && got[7].Attributes == nil, "the interaction"},
		{8, got[8].Campaign == "c-1", "the campaign"},
		{14, got[14].Version == vv && slices.Contains(got[14].Attributes, "userName"), "the anonymization"},
		{16, got[16].Version == "", "a deleted user's version"},
		{0, got[0].Actor == "SCIMSERVER_TOKEN" && got[7].Actor == "SCIMSERVER_PLATFORM_TOKEN", "the actors"},
	} {
		if !check.ok {
			t.Errorf("check %d, %s: %+v", i, check.what, got[check.i])
		}
	}
	raw := e.api("GET", "/api/v1/changes?after=0&limit=1000", nil).raw
	for _, p := range personal {
		if strings.Contains(string(raw), p) {
			t.Errorf("the feed holds the value %q", p)
		}
	}
	// From the beginning: the same changes, after those of the setup.
	if all := e.feedAll(testPlatformToken, "0", 1000); !slices.Equal(describe(all), want) {
		t.Fatalf("feed from 0:\n got %q\nwant %q", describe(all), want)
	}
}

// TestChangesConcurrentWriters: writers race, a follower long-polls meanwhile. Every
// acknowledged write is in the feed exactly once, each writer's in the order it made them, each
// resource's versions in the order of the cursors (commit order), and the follower saw the same
// feed as a read from the beginning afterwards.
func TestChangesConcurrentWriters(t *testing.T) {
	e := newEnv(t)
	start := e.feed(testPlatformToken, "").NextCursor
	var (
		followed []feedChange
		stopAt   = make(chan string, 1)
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		after, target := start, ""
		for {
			select {
			case target = <-stopAt:
			default:
			}
			if target != "" && cursorAtLeast(after, target) {
				return
			}
			p := e.feed(testPlatformToken, "after="+after+"&wait=200ms&limit=7")
			followed = append(followed, p.Changes...)
			after = p.NextCursor
		}
	}()
	const writers, rounds = 4, 12
	acked := make([][]string, writers)
	var wg sync.WaitGroup
	for n := range writers {
		wg.Go(func() {
			for i := range rounds {
				id := str(e.do("POST", "/scim/v2/Users", userBody(fmt.Sprintf("w%d-%d@example.com", n, i), nil)).must(t, 201)["id"])
				acked[n] = append(acked[n], "created User "+id)
				e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "x"))).must(t, 200)
				acked[n] = append(acked[n], "updated User "+id)
				e.do("PATCH", "/scim/v2/Users/"+id, patchOp(op("replace", "displayName", "y"))).must(t, 200)
				acked[n] = append(acked[n], "updated User "+id)
				if i%3 == 0 {
					e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
					acked[n] = append(acked[n], "deleted User "+id)
				}
			}
		})
	}
	wg.Wait()
	head, err := e.svc.Head(bg, scimserver.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	stopAt <- strconv.FormatUint(head, 10)
	<-done

	all := e.feedAll(testPlatformToken, start, 50)
	checkCursors(t, all)
	total := 0
	for _, a := range acked {
		total += len(a)
	}
	if len(all) != total {
		t.Fatalf("%d changes in the feed, %d writes acknowledged", len(all), total)
	}
	byID := map[string]int{}
	for n, a := range acked {
		for _, c := range a {
			byID[c[strings.LastIndexByte(c, ' ')+1:]] = n
		}
	}
	mine := make([][]string, writers)
	versions := map[string]int{}
	for _, c := range all {
		n, ok := byID[c.ResourceID]
		if !ok {
			t.Fatalf("a change nobody made: %v", c)
		}
		mine[n] = append(mine[n], c.String())
		if c.Version != "" {
			v, _ := strconv.Atoi(strings.Trim(strings.TrimPrefix(c.Version, "W/"), `"`))
			if v <= versions[c.ResourceID] {
				t.Fatalf("%v: version %d after %d: the cursors are not in commit order", c, v, versions[c.ResourceID])
			}
			versions[c.ResourceID] = v
		}
	}
	for n := range writers {
		if !slices.Equal(mine[n], acked[n]) {
			t.Fatalf("writer %d:\n feed %q\n made %q", n, mine[n], acked[n])
		}
	}
	if !slices.Equal(describe(followed), describe(all)) {
		t.Fatalf("the follower saw %d changes, the feed holds %d", len(followed), len(all))
	}
	for i := range all {
		if followed[i].Cursor != all[i].Cursor {
			t.Fatalf("change %d: the follower saw cursor %s, the feed says %s", i, followed[i].Cursor, all[i].Cursor)
		}
	}
}

func cursorAtLeast(c, target string) bool {
	a, _ := strconv.ParseUint(c, 10, 64)
	b, _ := strconv.ParseUint(target, 10, 64)
	return a >= b
}

// TestChangesResume: a consumer that stops after any change and resumes from its cursor sees
// every later change exactly once, whatever its page size.
func TestChangesResume(t *testing.T) {
	e := newEnv(t)
	start := e.feed(testPlatformToken, "").NextCursor
	g := e.createGroup("Resume group")
	for i := range 8 {
		id := e.createUser(fmt.Sprintf("resume%d@example.com", i), nil)
		e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("add", "members", []any{map[string]any{"value": id}}))).must(t, 204)
		if i%2 == 0 {
			e.do("DELETE", "/scim/v2/Users/"+id, nil).must(t, 204)
		}
		e.adminToken() // stepped over
	}
	full := e.feedAll(testPlatformToken, start, 1000)
	if len(full) != 1+8*2+4*2 {
		t.Fatalf("%d changes: %q", len(full), describe(full))
	}
	for i := 0; i <= len(full); i++ {
		after := start
		if i > 0 {
			after = full[i-1].Cursor
		}
		for _, limit := range []int{1, 3, 1000} {
			got := e.feedAll(testPlatformToken, after, limit)
			if !slices.Equal(describe(got), describe(full[i:])) {
				t.Fatalf("resumed after change %d with pages of %d:\n got %q\nwant %q", i, limit, describe(got), describe(full[i:]))
			}
		}
	}
}

// TestChangesLongPoll: a long poll answers as soon as a commit brings a change, not when its
// wait ends; with nothing new it waits the whole wait, capped by the server, and answers the
// same cursor.
func TestChangesLongPoll(t *testing.T) {
	e := newEnvWith(t, filepath.Join(t.TempDir(), "data.db"), Options{FeedMaxWait: 700 * time.Millisecond})
	after := e.feed(testPlatformToken, "").NextCursor

	began := time.Now()
	p := e.feed(testPlatformToken, "after="+after+"&wait=300ms")
	if waited := time.Since(began); len(p.Changes) != 0 || p.NextCursor != after || waited < 300*time.Millisecond {
		t.Fatalf("an idle long poll answered %+v after %v", p, waited)
	}
	began = time.Now()
	if p := e.feed(testPlatformToken, "after="+after+"&wait=1h"); len(p.Changes) != 0 || time.Since(began) > 30*time.Second {
		t.Fatalf("a wait above the cap: %+v after %v", p, time.Since(began))
	}

	// A poll waiting longer than the test will: only the commit can end it.
	long := newEnvWith(t, filepath.Join(t.TempDir(), "long.db"), Options{FeedMaxWait: time.Hour})
	var lat []time.Duration
	for i := range 5 {
		after := long.feed(testPlatformToken, "").NextCursor
		got := long.pollAsync(testPlatformToken, "after="+after+"&wait=1h")
		waitFor(t, func() bool { return long.server.waiters.count(scimserver.DefaultTenant) == 1 })
		id := long.createUser(fmt.Sprintf("poll%d@example.com", i), nil)
		acked := time.Now()
		select {
		case p := <-got:
			lat = append(lat, time.Since(acked))
			if len(p.Changes) != 1 || p.Changes[0].ResourceID != id || p.NextCursor != p.Changes[0].Cursor {
				t.Fatalf("the woken poll answered %+v", p)
			}
		case <-time.After(time.Minute):
			t.Fatal("the commit did not wake the long poll")
		}
	}
	slices.Sort(lat)
	t.Logf("long poll answered %v after the write's answer (median of %d; BENCHMARKS.md measures it under load)", lat[len(lat)/2], len(lat))
}

// waitFor polls cond until it holds (a minute at most).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within a minute")
		}
	}
}

func (w *waiters) count(tenant string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[tenant]
}

// TestChangesWaitersCapAndDrain: waiting requests are capped per tenant (a read that does not
// wait is still served), and Drain answers the waiting ones at once.
func TestChangesWaitersCapAndDrain(t *testing.T) {
	e := newEnvWith(t, filepath.Join(t.TempDir(), "data.db"), Options{FeedMaxWaiters: 2, FeedMaxWait: time.Hour})
	after := e.feed(testPlatformToken, "").NextCursor
	answers := []<-chan feedPage{e.pollAsync(testPlatformToken, "after="+after+"&wait=1h"), e.pollAsync(testPlatformToken, "after="+after+"&wait=1h")}
	waitFor(t, func() bool { return e.server.waiters.count(scimserver.DefaultTenant) == 2 })
	r := e.api("GET", "/api/v1/changes?after="+after+"&wait=10s", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("a third waiter: %d %s", r.status, r.raw)
	}
	if r := e.doAs(testPlatformToken, "GET", "/api/v1/changes?after="+after, nil, "Accept", "text/event-stream"); r.status != http.StatusTooManyRequests {
		t.Fatalf("a stream beyond the cap: %d", r.status)
	}
	e.feed(testPlatformToken, "after="+after) // no wait: served
	// Another tenant has its own allowance.
	_, secret := e.tenantWithToken("capped", scimserver.ScopePlatform)
	other := e.pollAsync(secret, "after=0&wait=1h")
	waitFor(t, func() bool { return e.server.waiters.count("capped") == 1 })

	e.server.Drain()
	for _, answer := range answers {
		select {
		case p := <-answer:
			if len(p.Changes) != 0 || p.NextCursor != after {
				t.Fatalf("a drained poll answered %+v", p)
			}
		case <-time.After(time.Minute):
			t.Fatal("Drain did not end the long polls")
		}
	}
	<-other
	waitFor(t, func() bool {
		return e.server.waiters.count(scimserver.DefaultTenant)+e.server.waiters.count("capped") == 0
	})
}

// tenantWithToken creates a tenant and a token of scope in it, and returns both.
func (e *testEnv) tenantWithToken(tenant, scope string) (string, string) {
	e.t.Helper()
	if _, err := e.svc.CreateTenant(bg, testActor, tenant, tenant); err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: tenant, Name: tenant + "-" + scope, Scopes: []string{scope}})
	if err != nil {
		e.t.Fatal(err)
	}
	return tenant, secret
}

// sseMessage is one message of an event stream.
type sseMessage struct{ id, event, data string }

type sseStream struct {
	res *http.Response
	rd  *bufio.Reader
}

func openStream(t *testing.T, url, token, lastEventID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		raw, _ := io.ReadAll(res.Body)
		t.Fatalf("stream: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	s := &sseStream{res: res, rd: bufio.NewReader(res.Body)}
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.res.Body.Close() }

// next reads the next message (comments are skipped, an id-only message is one).
func (s *sseStream) next(t *testing.T) sseMessage {
	t.Helper()
	var m sseMessage
	seen := false
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return m
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			m.id, seen = value, true
		case "event":
			m.event, seen = value, true
		case "data":
			m.data, seen = value, true
		}
	}
}

// nextChange reads messages until a change arrives, and checks it against its id.
func (s *sseStream) nextChange(t *testing.T) feedChange {
	t.Helper()
	for {
		m := s.next(t)
		if m.event == "" {
			continue // heartbeat
		}
		var c feedChange
		if m.event != "change" || json.Unmarshal([]byte(m.data), &c) != nil || c.Cursor != m.id {
			t.Fatalf("stream message %+v", m)
		}
		return c
	}
}

// TestChangesEventStream: Server-Sent Events from now, outliving the server's read and write
// timeouts (as a long poll does); a client that reconnects with Last-Event-ID resumes after the last change it got;
// revoking the token ends the stream.
func TestChangesEventStream(t *testing.T) {
	e := newEnvWith(t, filepath.Join(t.TempDir(), "data.db"), Options{FeedHeartbeat: 50 * time.Millisecond})
	ts := httptest.NewUnstartedServer(e.server)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	_, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: scimserver.DefaultTenant, Name: "stream", Scopes: []string{scimserver.ScopePlatform}})
	if err != nil {
		t.Fatal(err)
	}
	url := ts.URL + "/api/v1/changes"
	head := e.feed(testPlatformToken, "").NextCursor
	// A long poll outlives the write timeout too.
	if code, body := fetch(t, url+"?after="+head+"&wait=1s", secret); code != 200 || !strings.Contains(body, `"nextCursor":"`+head+`"`) {
		t.Fatalf("a long poll longer than the write timeout: %d %s", code, body)
	}

	s := openStream(t, url, secret, "")
	if m := s.next(t); m.id != head || m.event != "" {
		t.Fatalf("the stream does not begin with the current cursor %s: %+v", head, m)
	}
	time.Sleep(time.Second) // past both timeouts: heartbeats keep it going
	var ids []string
	for i := range 3 {
		ids = append(ids, e.createUser(fmt.Sprintf("sse%d@example.com", i), nil))
	}
	var got []feedChange
	for range 2 {
		got = append(got, s.nextChange(t))
	}
	if got[0].ResourceID != ids[0] || got[1].ResourceID != ids[1] || got[0].Operation != "created" {
		t.Fatalf("stream: %q, want the creates of %v", describe(got), ids)
	}
	s.close()
	ids = append(ids, e.createUser("sse3@example.com", nil))
	s = openStream(t, url+"?after=0", secret, got[1].Cursor) // Last-Event-ID wins over after
	for _, want := range ids[2:] {
		if c := s.nextChange(t); c.ResourceID != want {
			t.Fatalf("resumed stream: %v, want the create of %s", c, want)
		}
	}
	// From a cursor in the JSON feed, the stream and the pages agree.
	s2 := openStream(t, url+"?after="+head, secret, "")
	for _, want := range e.feedAll(testPlatformToken, head, 2) {
		if c := s2.nextChange(t); c.Cursor != want.Cursor || c.String() != want.String() {
			t.Fatalf("stream %v, pages %v", c, want)
		}
	}
	s2.close()

	toks, _ := e.svc.Tokens(bg, scimserver.DefaultTenant)
	for _, tk := range toks {
		if tk.Name == "stream" {
			if _, err := e.svc.RevokeToken(bg, testActor, "", tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for {
		if m := s.next(t); m.event == "error" {
			break
		}
	}
	if _, err := s.rd.ReadString('\n'); err == nil {
		t.Fatal("the stream goes on after the token was revoked")
	}
	if r := e.doAs(testPlatformToken, "GET", "/api/v1/changes", nil, "Accept", "text/event-stream", "Last-Event-ID", "x"); r.status != 400 {
		t.Fatalf("a bad Last-Event-ID: %d", r.status)
	}
}

// TestChangesTenantIsolation: a tenant's feed holds its own changes only, and only platform
// tokens read it.
func TestChangesTenantIsolation(t *testing.T) {
	e := newEnv(t)
	acme, acmePlatform := e.tenantWithToken("acme", scimserver.ScopePlatform)
	_, acmeSCIM := e.tenantWithToken("acme2", scimserver.ScopeSCIM)
	_, secret, err := e.svc.CreateToken(bg, testActor, scimserver.TokenSpec{Tenant: acme, Name: "idp", Scopes: []string{scimserver.ScopeSCIM}})
	if err != nil {
		t.Fatal(err)
	}
	mine := e.createUser("default@example.com", nil)
	theirs := str(e.doAs(secret, "POST", "/scim/v2/Users", userBody("acme@example.com", nil)).must(t, 201)["id"])
	for _, c := range []struct {
		token, own, other string
	}{{testPlatformToken, mine, theirs}, {acmePlatform, theirs, mine}} {
		all := e.feedAll(c.token, "0", 1000)
		found := false
		for _, ch := range all {
			found = found || ch.ResourceID == c.own
			if ch.ResourceID == c.other {
				t.Fatalf("a tenant's feed holds another tenant's change: %v", ch)
			}
		}
		if !found {
			t.Fatalf("a tenant's feed misses its own change: %q", describe(all))
		}
	}
	for _, tok := range []string{e.token, acmeSCIM, e.adminToken(), ""} {
		e.doAs(tok, "GET", "/api/v1/changes?after=0", nil).must(t, http.StatusUnauthorized)
	}
}

// TestChangesRetention: with a retention, a cursor whose next change is older answers 410 with
// the oldest cursor the feed resumes from, and resuming from that one works; a cursor ahead of
// the trail answers 410 too.
func TestChangesRetention(t *testing.T) {
	const retention = 2 * time.Second
	e := newEnvService(t, filepath.Join(t.TempDir(), "data.db"), scimserver.Options{FeedRetention: retention}, Options{})
	e.createUser("old1@example.com", nil)
	e.createUser("old2@example.com", nil)
	time.Sleep(retention + 500*time.Millisecond)
	fresh := e.createUser("fresh@example.com", nil)

	r := e.api("GET", "/api/v1/changes?after=0", nil)
	if r.status != http.StatusGone || str(r.body["oldestCursor"]) == "" {
		t.Fatalf("a cursor beyond the retention: %d %s", r.status, r.raw)
	}
	oldest := str(r.body["oldestCursor"])
	p := e.feed(testPlatformToken, "after="+oldest)
	if len(p.Changes) != 1 || p.Changes[0].ResourceID != fresh {
		t.Fatalf("from the oldest cursor: %+v", p)
	}
	n, _ := strconv.ParseUint(oldest, 10, 64)
	if r := e.api("GET", "/api/v1/changes?after="+strconv.FormatUint(n-1, 10), nil); r.status != http.StatusGone {
		t.Fatalf("the cursor before the oldest: %d", r.status)
	}
	if r := e.doAs(testPlatformToken, "GET", "/api/v1/changes?after=0", nil, "Accept", "text/event-stream"); r.status != http.StatusGone || r.body["oldestCursor"] != oldest {
		t.Fatalf("a stream from beyond the retention: %d %s", r.status, r.raw)
	}
	if r := e.api("GET", "/api/v1/changes?after=999999", nil); r.status != http.StatusGone {
		t.Fatalf("a cursor ahead of the trail: %d %s", r.status, r.raw)
	}
}

func TestChangesBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "wait=-1s", "wait=soon", "wait=NaN", "wait=-5", "wait=1e400", "after=", "after=-1", "after=1.5", "after=x"} {
		if r := e.api("GET", "/api/v1/changes?"+q, nil); r.status != http.StatusBadRequest || r.body["scimType"] != "invalidValue" {
			t.Errorf("%s: %d %s", q, r.status, r.raw)
		}
	}
	if r := e.api("POST", "/api/v1/changes", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.status)
	}
	// Waits written as seconds are accepted.
	e.feed(testPlatformToken, "after=0&wait=0.01")
}

// TestMemberChangesCarryOneVersion: a PATCH that renames a group and adds and removes several
// members gives the group one new version; every membership event of it carries that version,
// the one GET answers, and each member's ETag changed.
func TestMemberChangesCarryOneVersion(t *testing.T) {
	e := newEnv(t)
	users := []string{e.createUser("one@example.com", nil), e.createUser("two@example.com", nil), e.createUser("three@example.com", nil)}
	g := e.createGroup("before", users[0])
	etags := map[string]string{}
	for _, u := range users {
		etags[u] = e.version("/scim/v2/Users/" + u)
	}
	start := e.feed(testPlatformToken, "").NextCursor
	e.do("PATCH", "/scim/v2/Groups/"+g, patchOp(op("replace", "displayName", "after"),
		op("add", "members", []any{map[string]any{"value": users[1]}, map[string]any{"value": users[2]}}),
		op("remove", `members[value eq "`+users[0]+`"]`, nil))).must(t, 204)
	gv := e.version("/scim/v2/Groups/" + g)
	var ops []string
	for _, c := range e.feedAll(testPlatformToken, start, 100) {
		if c.ResourceID != g {
			continue
		}
		ops = append(ops, c.Operation)
		if c.Version != gv {
			t.Errorf("%v carries version %s; the group has %s", c, c.Version, gv)
		}
	}
	if len(ops) != 4 {
		t.Errorf("the group's changes: %v, want two member adds, a member remove and the rename", ops)
	}
	for _, u := range users {
		if v := e.version("/scim/v2/Users/" + u); v == etags[u] {
			t.Errorf("user %s kept ETag %s through its membership change", u, v)
		}
	}
}

// TestChangesMetrics: /metrics counts the long polls and streams holding a connection, and the
// changes sent to readers in pages and on streams.
func TestChangesMetrics(t *testing.T) {
	e := newEnvWith(t, filepath.Join(t.TempDir(), "data.db"), Options{FeedMaxWait: time.Hour, FeedHeartbeat: 50 * time.Millisecond})
	admin := e.adminToken()
	metric := func(name, kind string) float64 {
		t.Helper()
		code, body := fetch(t, e.srv.URL+"/metrics", admin)
		v, ok := sample(body, name, `kind="`+kind+`"`)
		if code != http.StatusOK || !ok {
			t.Fatalf("/metrics: %d, no %s{kind=%q} in:\n%s", code, name, kind, grepLines(body, "scimserver_feed"))
		}
		return v
	}
	after := e.feed(testPlatformToken, "").NextCursor
	got := e.pollAsync(testPlatformToken, "after="+after+"&wait=1h")
	waitFor(t, func() bool { return e.server.waiters.count(scimserver.DefaultTenant) == 1 })
	if n := metric("scimserver_feed_waiting", "poll"); n != 1 {
		t.Errorf("waiting polls: %v, want 1", n)
	}
	e.createUser("metered@example.com", nil)
	if p := <-got; len(p.Changes) != 1 {
		t.Fatalf("the poll answered %+v", p)
	}
	eventually(t, "the poll no longer counted as waiting", func() bool { return metric("scimserver_feed_waiting", "poll") == 0 })
	if n := metric("scimserver_feed_changes_sent_total", "page"); n != 1 {
		t.Errorf("changes sent in pages: %v, want 1", n)
	}

	s := openStream(t, e.srv.URL+"/api/v1/changes", testPlatformToken, after)
	waitFor(t, func() bool { return e.server.waiters.count(scimserver.DefaultTenant) == 1 })
	if c := s.nextChange(t); c.Operation != "created" {
		t.Fatalf("the stream's first change: %+v", c)
	}
	if n := metric("scimserver_feed_waiting", "stream"); n != 1 {
		t.Errorf("open streams: %v, want 1", n)
	}
	eventually(t, "the streamed change counted", func() bool { return metric("scimserver_feed_changes_sent_total", "stream") == 1 })
	s.close()
	eventually(t, "the closed stream no longer counted", func() bool { return metric("scimserver_feed_waiting", "stream") == 0 })
}

// writeCounter records how many change events each write of a response carries, and cancels
// the request once want have been written.
type writeCounter struct {
	*httptest.ResponseRecorder
	mu     sync.Mutex
	writes []int
	total  int
	want   int
	cancel context.CancelFunc
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := strings.Count(string(p), "event: change\n"); n > 0 {
		w.writes = append(w.writes, n)
		w.total += n
		if w.total >= w.want {
			w.cancel()
		}
	}
	return w.ResponseRecorder.Write(p)
}

// TestEventStreamLimit: a stream sends a backlog in writes of at most limit changes, and all
// of it.
func TestEventStreamLimit(t *testing.T) {
	e := newEnv(t)
	head := e.feed(testPlatformToken, "").NextCursor
	for i := range 5 {
		e.createUser(fmt.Sprintf("batch%d@example.com", i), nil)
	}
	for _, tc := range []struct {
		query string
		want  []int
	}{{"&limit=2", []int{2, 2, 1}}, {"", []int{5}}, {"&limit=5", []int{5}}} {
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		w := &writeCounter{ResponseRecorder: httptest.NewRecorder(), want: 5, cancel: cancel}
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/changes?after="+head+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+testPlatformToken)
		req.Header.Set("Accept", "text/event-stream")
		e.server.ServeHTTP(w, req)
		cancel()
		w.mu.Lock()
		if w.Code != 200 || !slices.Equal(w.writes, tc.want) {
			t.Errorf("%q: status %d, changes per write %v, want %v", tc.query, w.Code, w.writes, tc.want)
		}
		w.mu.Unlock()
	}
}
