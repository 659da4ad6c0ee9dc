// Crash-safety harness. TestCrashRecovery builds the real scimserver binary, runs it on one data
// file under concurrent SCIM writes and SIGKILLs it at a random moment, again and again. After
// every kill `scimserver check` must find the file consistent, and after every restart the data
// served must be exactly what the clients were told: every acknowledged (2xx) write is there,
// every request that failed or got no answer left no trace, except each client's single request
// in flight at the kill, which may have gone either way (committed, answer lost). The change
// feed read from its beginning must list exactly those writes, each client's in the order it
// made them (crash_feed_test.go).
//
// Short mode, the default and what `go test -race ./...` runs, does 30 kill/restart cycles in
// well under a minute. Long mode runs as many cycles as SCIMSERVER_CRASH_CYCLES says:
//
//	SCIMSERVER_CRASH_CYCLES=300 go test -race -run TestCrashRecovery -v ./cmd/scimserver/
//
// The random choices (which requests, how long before each kill, what to sample) are seeded;
// the seed is logged, and SCIMSERVER_CRASH_SEED=<seed> repeats them. It does not repeat the
// timing, which belongs to the scheduler, so a failure may need a few runs to reproduce.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scimserver/scimserver/internal/testtool"
	"github.com/scimserver/scimserver/storage/bolt"
)

const (
	crashDefaultCycles = 30
	crashClients       = 4
	// Live resources per client are capped so that verifying all of them after every restart
	// stays cheap however many cycles run.
	crashMaxUsers  = 24
	crashMaxGroups = 4

	crashToken       = "crash-harness-bearer-token-0123456789abcdef"
	crashUserSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	crashGroupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	crashPatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// ---------------------------------------------------------------------------------------------
// The model: what each client believes the server holds.

// crashUser is a user as the model expects the server to hold it.
type crashUser struct {
	id          string // "" while unknown: a create whose answer was lost (found by userName)
	userName    string
	externalID  string
	displayName string
	emails      []string
	groups      []string // observed only: the group ids the server lists on the user
	deleted     bool     // the user must be gone: GET 404, no lookup finds it
}

func (u *crashUser) String() string {
	return fmt.Sprintf("{id=%s userName=%s externalId=%s displayName=%q emails=%v}",
		u.id, u.userName, u.externalID, u.displayName, u.emails)
}

// crashGroup is a group as the model expects the server to hold it.
type crashGroup struct {
	id          string // "" while unknown (found by displayName)
	displayName string
	externalID  string
	members     map[string]bool // user ids
	deleted     bool
}

func (g *crashGroup) String() string {
	return fmt.Sprintf("{id=%s displayName=%s externalId=%s members=%v}",
		g.id, g.displayName, g.externalID, slices.Sorted(maps.Keys(g.members)))
}

// crashState is everything one client owns, by model key (the resource's first name), which
// stays the same while the server id is still unknown and after a rename.
type crashState struct {
	users  map[string]*crashUser
	groups map[string]*crashGroup
}

func newCrashState() *crashState {
	return &crashState{users: map[string]*crashUser{}, groups: map[string]*crashGroup{}}
}

func (s *crashState) clone() *crashState {
	c := newCrashState()
	for k, u := range s.users {
		cu := *u
		cu.emails = slices.Clone(u.emails)
		c.users[k] = &cu
	}
	for k, g := range s.groups {
		cg := *g
		cg.members = maps.Clone(g.members)
		c.groups[k] = &cg
	}
	return c
}

// liveUsers lists the keys of users that exist and whose id is known, sorted so that seeded
// choices among them repeat.
func (s *crashState) liveUsers() []string {
	var keys []string
	for k, u := range s.users {
		if !u.deleted && u.id != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (s *crashState) liveGroups() []string {
	var keys []string
	for k, g := range s.groups {
		if !g.deleted && g.id != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// crashOp is one write request and the change it makes to the model once it takes effect.
type crashOp struct {
	kind    string // createUser, patchUser, deleteUser, createGroup, addMembers, removeMember, renameGroup, deleteGroup
	key     string // model key of the resource written
	user    crashUser
	group   crashGroup
	members []string // addMembers, removeMember: user ids
	method  string
	path    string
	body    any
	status  int // the status the endpoint answers
	// refused marks a request the server must refuse (status is then an error status): a
	// uniqueness conflict or a reference to nothing, possibly next to valid operations in the
	// same PATCH. It must change nothing at all.
	refused bool
	// changes is what the change feed must list for op once it takes effect (crash_feed_test.go).
	changes []crashChange
}

func (op *crashOp) String() string {
	return fmt.Sprintf("%s %s (%s %s)", op.method, op.path, op.kind, op.key)
}

// apply makes op's change to s; id is the id the server gave a created resource ("" if unknown).
func (op *crashOp) apply(s *crashState, id string) {
	if op.refused {
		return
	}
	switch op.kind {
	case "createUser":
		u := op.user
		u.id, u.emails = id, slices.Clone(op.user.emails)
		s.users[op.key] = &u
	case "patchUser":
		u := s.users[op.key]
		u.userName, u.externalID, u.displayName = op.user.userName, op.user.externalID, op.user.displayName
		u.emails = slices.Clone(op.user.emails)
	case "deleteUser":
		u := s.users[op.key]
		u.deleted = true
		for _, g := range s.groups {
			delete(g.members, u.id) // a deleted user leaves every group
		}
	case "createGroup":
		g := op.group
		g.id, g.members = id, maps.Clone(op.group.members)
		s.groups[op.key] = &g
	case "addMembers":
		for _, m := range op.members {
			s.groups[op.key].members[m] = true
		}
	case "removeMember":
		for _, m := range op.members {
			delete(s.groups[op.key].members, m)
		}
	case "renameGroup":
		s.groups[op.key].displayName = op.group.displayName
	case "deleteGroup":
		s.groups[op.key].deleted = true
	}
}

// ---------------------------------------------------------------------------------------------
// Clients: each owns disjoint users and groups and sends one request at a time.

type crashClient struct {
	num     int
	state   *crashState // the acknowledged state
	pending *crashOp    // sent without an answer: may or may not have taken effect
	seq     int         // makes every generated name and value unique in the run
	rng     *rand.Rand  // reseeded every cycle from the run's seed

	acked      int // writes acknowledged with a 2xx
	unverified int // of those, not yet verified after a restart
	refused    int // invalid writes refused as they had to be

	feed *crashFeed // the changes its writes made, for the change feed's check
}

func (c *crashClient) fresh(what string) string {
	c.seq++
	return fmt.Sprintf("c%d-%s%d", c.num, what, c.seq)
}

func (c *crashClient) pick(keys []string) string { return keys[c.rng.IntN(len(keys))] }

// nextOp chooses the next write: mostly user creates and PATCHes, then membership changes,
// deletes and group renames, within the caps on live resources; and a few invalid writes.
func (c *crashClient) nextOp() *crashOp {
	users, groups := c.state.liveUsers(), c.state.liveGroups()
	if c.rng.IntN(100) < 8 && len(users) >= 2 {
		return c.refusedOp(users, groups)
	}
	r := c.rng.IntN(100)
	var op *crashOp
	switch {
	case len(users) < 3 || r < 22 && len(users) < crashMaxUsers:
		return c.createUser()
	case r < 48: // a user PATCH, below
	case r < 58:
		return c.deleteUser(users)
	case r < 64 && len(groups) < crashMaxGroups:
		return c.createGroup(users)
	case len(groups) == 0:
	case r < 78:
		op = c.addMembers(groups, users)
	case r < 90:
		op = c.removeMember(groups)
	case r < 96:
		op = c.renameGroup(groups)
	default:
		op = c.deleteGroup(groups)
	}
	if op == nil {
		op = c.patchUser(users)
	}
	return op
}

func crashEmails(vals []string) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		typ := "work"
		if i > 0 {
			typ = "home"
		}
		out[i] = map[string]any{"value": v, "type": typ, "primary": i == 0}
	}
	return out
}

func (c *crashClient) newEmails() []string {
	e := []string{c.fresh("mail") + "@example.test"}
	if c.rng.IntN(3) == 0 {
		e = append(e, c.fresh("mail")+"@example.test")
	}
	return e
}

func (c *crashClient) createUser() *crashOp {
	name := c.fresh("user")
	u := crashUser{userName: name, externalID: c.fresh("ext"), displayName: c.fresh("Display "), emails: c.newEmails()}
	body := map[string]any{"schemas": []string{crashUserSchema}, "userName": u.userName,
		"externalId": u.externalID, "displayName": u.displayName, "emails": crashEmails(u.emails),
		"name": map[string]any{"givenName": "Crash", "familyName": name}}
	return &crashOp{kind: "createUser", key: name, user: u, method: "POST", path: "/Users", body: body, status: 201}
}

// patchUser replaces one to three of displayName, externalId, emails and userName in one PATCH:
// either all of them take effect or none.
func (c *crashClient) patchUser(users []string) *crashOp {
	key := c.pick(users)
	u := *c.state.users[key]
	var ops []any
	for _, attr := range c.rng.Perm(4)[:1+c.rng.IntN(3)] {
		var path string
		var value any
		switch attr {
		case 0:
			u.displayName = c.fresh("Display ")
			path, value = "displayName", u.displayName
		case 1:
			u.externalID = c.fresh("ext")
			path, value = "externalId", u.externalID
		case 2:
			u.emails = c.newEmails()
			path, value = "emails", crashEmails(u.emails)
		case 3:
			u.userName = c.fresh("user")
			path, value = "userName", u.userName
		}
		ops = append(ops, map[string]any{"op": "replace", "path": path, "value": value})
	}
	return &crashOp{kind: "patchUser", key: key, user: u, method: "PATCH", path: "/Users/" + u.id,
		body: map[string]any{"schemas": []string{crashPatchSchema}, "Operations": ops}, status: 200}
}

func (c *crashClient) deleteUser(users []string) *crashOp {
	key := c.pick(users)
	return &crashOp{kind: "deleteUser", key: key, method: "DELETE", path: "/Users/" + c.state.users[key].id, status: 204}
}

func (c *crashClient) createGroup(users []string) *crashOp {
	name := c.fresh("group")
	g := crashGroup{displayName: name, externalID: c.fresh("gext"), members: map[string]bool{}}
	var members []any
	for range c.rng.IntN(4) {
		id := c.state.users[c.pick(users)].id
		if !g.members[id] {
			g.members[id] = true
			members = append(members, map[string]any{"value": id})
		}
	}
	body := map[string]any{"schemas": []string{crashGroupSchema}, "displayName": name, "externalId": g.externalID}
	if len(members) > 0 {
		body["members"] = members
	}
	return &crashOp{kind: "createGroup", key: name, group: g, method: "POST", path: "/Groups", body: body, status: 201}
}

func crashGroupPatch(ops ...any) any {
	return map[string]any{"schemas": []string{crashPatchSchema}, "Operations": ops}
}

func (c *crashClient) addMembers(groups, users []string) *crashOp {
	key := c.pick(groups)
	g := c.state.groups[key]
	var candidates []string
	for _, uk := range users {
		if id := c.state.users[uk].id; !g.members[id] {
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	var add []string
	var value []any
	for _, i := range c.rng.Perm(len(candidates))[:min(len(candidates), 1+c.rng.IntN(2))] {
		add = append(add, candidates[i])
		value = append(value, map[string]any{"value": candidates[i]})
	}
	return &crashOp{kind: "addMembers", key: key, members: add, method: "PATCH", path: "/Groups/" + g.id,
		body: crashGroupPatch(map[string]any{"op": "add", "path": "members", "value": value}), status: 204}
}

func (c *crashClient) removeMember(groups []string) *crashOp {
	key := c.pick(groups)
	g := c.state.groups[key]
	if len(g.members) == 0 {
		return nil
	}
	id := c.pick(slices.Sorted(maps.Keys(g.members)))
	return &crashOp{kind: "removeMember", key: key, members: []string{id}, method: "PATCH", path: "/Groups/" + g.id,
		body: crashGroupPatch(map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`}), status: 204}
}

func (c *crashClient) renameGroup(groups []string) *crashOp {
	key := c.pick(groups)
	g := c.state.groups[key]
	name := c.fresh("group")
	return &crashOp{kind: "renameGroup", key: key, group: crashGroup{displayName: name}, method: "PATCH", path: "/Groups/" + g.id,
		body: crashGroupPatch(map[string]any{"op": "replace", "path": "displayName", "value": name}), status: 204}
}

func (c *crashClient) deleteGroup(groups []string) *crashOp {
	key := c.pick(groups)
	return &crashOp{kind: "deleteGroup", key: key, method: "DELETE", path: "/Groups/" + c.state.groups[key].id, status: 204}
}

// refusedOp builds a write the server must refuse whole, sometimes next to valid operations in
// the same PATCH. Uniqueness is case-insensitive, so the upper-cased name of a live resource
// conflicts; the reference to nothing is preferably a user deleted this cycle.
func (c *crashClient) refusedOp(users, groups []string) *crashOp {
	aKey, bKey := c.pick(users), c.pick(users)
	a, b := c.state.users[aKey], c.state.users[bKey]
	missing := fmt.Sprintf("00000000-0000-7000-8000-%012d", c.seq)
	for _, k := range slices.Sorted(maps.Keys(c.state.users)) {
		if u := c.state.users[k]; u.deleted && u.id != "" {
			missing = u.id
			break
		}
	}
	switch c.rng.IntN(5) {
	case 0:
		op := c.createUser()
		op.body.(map[string]any)["userName"] = strings.ToUpper(a.userName)
		op.status, op.refused = 409, true
		return op
	case 1:
		if aKey == bKey {
			break
		}
		op := c.patchUser([]string{aKey})
		body := op.body.(map[string]any)
		body["Operations"] = append(body["Operations"].([]any),
			map[string]any{"op": "replace", "path": "userName", "value": strings.ToUpper(b.userName)})
		op.status, op.refused = 409, true
		return op
	case 2:
		if len(groups) == 0 {
			break
		}
		gKey := c.pick(groups)
		g := c.state.groups[gKey]
		var ops []any
		if !g.members[a.id] {
			ops = append(ops, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": a.id}}})
		}
		ops = append(ops, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": missing}}})
		return &crashOp{kind: "addMembers", key: gKey, method: "PATCH", path: "/Groups/" + g.id,
			body: crashGroupPatch(ops...), status: 400, refused: true}
	case 3:
		if len(groups) == 0 {
			break
		}
		op := c.createGroup(users)
		op.body.(map[string]any)["displayName"] = strings.ToUpper(c.state.groups[c.pick(groups)].displayName)
		op.status, op.refused = 409, true
		return op
	}
	return &crashOp{kind: "patchUser", key: "(none)", method: "PATCH", path: "/Users/" + missing,
		body: map[string]any{"schemas": []string{crashPatchSchema}, "Operations": []any{
			map[string]any{"op": "replace", "path": "displayName", "value": c.fresh("Display ")}}},
		status: 404, refused: true}
}

// run sends writes one at a time until the server is killed. It stops at the first request
// without an answer, so that request is the client's only one whose outcome is unknown.
func (c *crashClient) run(api *crashAPI, killed *atomic.Bool, report func(string, ...any)) {
	for i := 0; i < 100_000 && !killed.Load(); i++ {
		if !c.send(api, c.nextOp(), killed, report) {
			return
		}
	}
}

// send performs op and updates the model from the answer; false means stop.
func (c *crashClient) send(api *crashAPI, op *crashOp, killed *atomic.Bool, report func(string, ...any)) bool {
	op.changes = c.expectChanges(op)
	status, raw, err := api.do(op.method, op.path, op.body)
	var opErr *net.OpError
	switch {
	case status == 0 && errors.As(err, &opErr) && opErr.Op == "dial":
		return false // never connected: nothing was sent, nothing may change
	case status == 0:
		c.pending = op // sent, no answer: it may have committed just before the kill
		if !killed.Load() {
			report("client %d: %v got no answer while the server was up: %v", c.num, op, err)
		}
		return false
	case op.refused && status == op.status:
		c.refused++
		return true
	case op.refused || status/100 != 2:
		report("client %d: %v answered %d, want %d: %s", c.num, op, status, op.status, raw)
		return false // the model keeps the old state: the verification checks nothing changed
	}
	// A 2xx means committed and fsynced, even if the body was cut off by the kill.
	if status != op.status {
		report("client %d: %v answered %d, want %d", c.num, op, status, op.status)
	}
	id := ""
	if op.kind == "createUser" || op.kind == "createGroup" {
		var created struct{ ID string }
		if err == nil && json.Unmarshal(raw, &created) == nil {
			id = created.ID // otherwise the verification finds it by name
		}
	}
	op.apply(c.state, id)
	c.feed.took(op, id)
	c.acked++
	c.unverified++
	if err != nil {
		return false
	}
	// The resource a write answers with must be the one the write produced.
	var diff string
	switch op.kind {
	case "createUser", "patchUser":
		if got, err := crashParseUser(raw); err != nil {
			diff = err.Error()
		} else {
			diff = crashDiffUser(op.key, c.state.users[op.key], got)
		}
	case "createGroup":
		if got, err := crashParseGroup(raw); err != nil {
			diff = err.Error()
		} else {
			diff = crashDiffGroup(op.key, c.state.groups[op.key], got)
		}
	}
	if diff != "" {
		report("client %d: %v answered with something else than it wrote: %s", c.num, op, diff)
	}
	return true
}

// ---------------------------------------------------------------------------------------------
// Reading the server back.

type crashAPI struct {
	root string // http://127.0.0.1:port
	hc   *http.Client
}

func newCrashAPI(addr string) *crashAPI {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 2 * crashClients,
		DisableCompression:  true,
	}
	return &crashAPI{root: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func (a *crashAPI) close() { a.hc.CloseIdleConnections() }

// do sends one SCIM request. status is 0 when no answer came; a status with an error means the
// body was cut off.
func (a *crashAPI) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.root+"/scim/v2"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+crashToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	return res.StatusCode, raw, err
}

// get reads one resource; found is false on 404.
func (a *crashAPI) get(path string) (raw []byte, found bool, err error) {
	status, raw, err := a.do("GET", path, nil)
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("GET %s: %w", path, err)
	case status == http.StatusNotFound:
		return nil, false, nil
	case status != http.StatusOK:
		return nil, false, fmt.Errorf("GET %s: %d %s", path, status, raw)
	}
	return raw, true, nil
}

// find runs `attr eq "value"` against an endpoint and returns the resources found.
func (a *crashAPI) find(endpoint, filter string) ([]json.RawMessage, error) {
	path := endpoint + "?filter=" + url.QueryEscape(filter)
	raw, _, err := a.get(path)
	if err != nil {
		return nil, err
	}
	var list struct {
		TotalResults int               `json:"totalResults"`
		Resources    []json.RawMessage `json:"Resources"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if list.TotalResults != len(list.Resources) {
		return nil, fmt.Errorf("GET %s: totalResults %d but %d resources", path, list.TotalResults, len(list.Resources))
	}
	return list.Resources, nil
}

func crashParseUser(raw []byte) (*crashUser, error) {
	var j struct {
		ID, UserName, ExternalID, DisplayName string
		Emails                                []struct{ Value string }
		Groups                                []struct{ Value string }
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	u := &crashUser{id: j.ID, userName: j.UserName, externalID: j.ExternalID, displayName: j.DisplayName}
	for _, e := range j.Emails {
		u.emails = append(u.emails, e.Value)
	}
	for _, g := range j.Groups {
		u.groups = append(u.groups, g.Value)
	}
	slices.Sort(u.groups)
	return u, nil
}

func crashParseGroup(raw []byte) (*crashGroup, error) {
	var j struct {
		ID, DisplayName, ExternalID string
		Members                     []struct{ Value string }
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	g := &crashGroup{id: j.ID, displayName: j.DisplayName, externalID: j.ExternalID, members: map[string]bool{}}
	for _, m := range j.Members {
		g.members[m.Value] = true
	}
	if len(g.members) != len(j.Members) {
		return nil, fmt.Errorf("group %s lists a member twice", j.ID)
	}
	return g, nil
}

// observe reads from the server every resource any of the states knows, by id, or by name for
// a create whose id is unknown. Absent resources are missing from the result.
func (a *crashAPI) observe(states ...*crashState) (*crashState, int, error) {
	obs := newCrashState()
	reads := 0
	for _, key := range crashKeys(states, func(s *crashState) []string { return slices.Collect(maps.Keys(s.users)) }) {
		id, name := "", ""
		for _, s := range states {
			if u := s.users[key]; u != nil && u.id != "" {
				id = u.id
			} else if u != nil {
				name = u.userName
			}
		}
		reads++
		raw, found, err := a.read("/Users", id, "userName", name)
		if err != nil || !found {
			if err != nil {
				return nil, reads, err
			}
			continue
		}
		if obs.users[key], err = crashParseUser(raw); err != nil {
			return nil, reads, err
		}
	}
	for _, key := range crashKeys(states, func(s *crashState) []string { return slices.Collect(maps.Keys(s.groups)) }) {
		id, name := "", ""
		for _, s := range states {
			if g := s.groups[key]; g != nil && g.id != "" {
				id = g.id
			} else if g != nil {
				name = g.displayName
			}
		}
		reads++
		raw, found, err := a.read("/Groups", id, "displayName", name)
		if err != nil || !found {
			if err != nil {
				return nil, reads, err
			}
			continue
		}
		if obs.groups[key], err = crashParseGroup(raw); err != nil {
			return nil, reads, err
		}
	}
	return obs, reads, nil
}

// read reads a resource by id or, when its id is unknown, by its unique name.
func (a *crashAPI) read(endpoint, id, nameAttr, name string) ([]byte, bool, error) {
	if id != "" {
		return a.get(endpoint + "/" + id)
	}
	list, err := a.find(endpoint, nameAttr+` eq "`+name+`"`)
	switch {
	case err != nil:
		return nil, false, err
	case len(list) > 1:
		return nil, false, fmt.Errorf("%s %s %q finds %d resources", endpoint, nameAttr, name, len(list))
	case len(list) == 0:
		return nil, false, nil
	}
	return list[0], true, nil
}

func crashKeys(states []*crashState, keys func(*crashState) []string) []string {
	var all []string
	for _, s := range states {
		all = append(all, keys(s)...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// crashDiffUser says how got differs from want ("" when it does not); a nil or deleted want
// means the user must not exist.
func crashDiffUser(key string, want, got *crashUser) string {
	wantThere := want != nil && !want.deleted
	switch {
	case !wantThere && got == nil:
		return ""
	case !wantThere:
		return fmt.Sprintf("user %s: should not exist, found %v", key, got)
	case got == nil:
		return fmt.Sprintf("user %s: missing, want %v", key, want)
	case want.id != "" && want.id != got.id, want.userName != got.userName, want.externalID != got.externalID,
		want.displayName != got.displayName, !slices.Equal(want.emails, got.emails):
		return fmt.Sprintf("user %s: want %v, got %v", key, want, got)
	}
	return ""
}

func crashDiffGroup(key string, want, got *crashGroup) string {
	wantThere := want != nil && !want.deleted
	switch {
	case !wantThere && got == nil:
		return ""
	case !wantThere:
		return fmt.Sprintf("group %s: should not exist, found %v", key, got)
	case got == nil:
		return fmt.Sprintf("group %s: missing, want %v", key, want)
	case want.id != "" && want.id != got.id, want.displayName != got.displayName, want.externalID != got.externalID,
		!maps.Equal(want.members, got.members):
		return fmt.Sprintf("group %s: want %v, got %v", key, want, got)
	}
	return ""
}

// crashDiffState compares a whole client state with what the server showed, including each
// user's groups (the reverse membership index) against the group member lists.
func crashDiffState(want, obs *crashState) []string {
	var diffs []string
	groupsOf := map[string][]string{} // user id -> ids of the groups that list it
	for _, key := range crashKeys([]*crashState{want, obs}, func(s *crashState) []string { return slices.Collect(maps.Keys(s.groups)) }) {
		w, g := want.groups[key], obs.groups[key]
		if d := crashDiffGroup(key, w, g); d != "" {
			diffs = append(diffs, d)
		}
		if w != nil && !w.deleted && g != nil {
			for m := range w.members {
				groupsOf[m] = append(groupsOf[m], g.id)
			}
		}
	}
	for _, key := range crashKeys([]*crashState{want, obs}, func(s *crashState) []string { return slices.Collect(maps.Keys(s.users)) }) {
		w, u := want.users[key], obs.users[key]
		if d := crashDiffUser(key, w, u); d != "" {
			diffs = append(diffs, d)
			continue
		}
		if u != nil {
			wg := groupsOf[u.id]
			slices.Sort(wg)
			if !slices.Equal(wg, u.groups) {
				diffs = append(diffs, fmt.Sprintf("user %s (%s): lists groups %v, want %v", key, u.id, u.groups, wg))
			}
		}
	}
	return diffs
}

// crashVerified is what one client's verification found.
type crashVerified struct {
	problems            []string
	applied, notApplied int // outcomes of the request in flight at the kill
	writes              int // acknowledged writes whose effects were confirmed
	reads, lookups      int
}

// verify compares everything the client owns with the server, resolves the request that was in
// flight at the kill (either outcome is fine, nothing else is), learns the ids of creates whose
// answer was lost, checks the lookups for a sample, and forgets resources confirmed deleted.
func (c *crashClient) verify(api *crashAPI) crashVerified {
	var res crashVerified
	fail := func(format string, args ...any) {
		res.problems = append(res.problems, fmt.Sprintf("client %d: ", c.num)+fmt.Sprintf(format, args...))
	}
	states := []*crashState{c.state}
	var after *crashState
	if c.pending != nil {
		after = c.state.clone()
		c.pending.apply(after, "")
		states = append(states, after)
	}
	obs, reads, err := api.observe(states...)
	res.reads += reads
	if err != nil {
		fail("reading back: %v", err)
		return res
	}
	before := crashDiffState(c.state, obs)
	switch {
	case len(before) == 0:
		if c.pending != nil {
			res.notApplied++
		}
	case after != nil && len(crashDiffState(after, obs)) == 0:
		res.applied++
		c.state = after
		c.feed.took(c.pending, "")
	case after != nil:
		fail("the server matches neither outcome of %v, in flight at the kill;\n  if not applied:\n    %s\n  if applied:\n    %s",
			c.pending, strings.Join(before, "\n    "), strings.Join(crashDiffState(after, obs), "\n    "))
		return res
	default:
		fail("acknowledged state lost or changed:\n    %s", strings.Join(before, "\n    "))
		return res
	}
	c.pending = nil
	res.writes, c.unverified = c.unverified, 0

	// Adopt the ids of creates whose answer was lost; forget what is confirmed gone.
	var gone []*crashUser
	for key, u := range c.state.users {
		if u.deleted {
			gone = append(gone, u)
			delete(c.state.users, key)
		} else if u.id == "" {
			u.id = obs.users[key].id
		}
	}
	for key, g := range c.state.groups {
		if g.deleted {
			delete(c.state.groups, key)
		} else if g.id == "" {
			g.id = obs.groups[key].id
		}
	}
	c.feed.learn(c.state)

	// Lookups must agree with the records: a sample of live users is found by each of its
	// indexed values, and users just confirmed deleted by none.
	live := c.state.liveUsers()
	for _, i := range c.rng.Perm(len(live))[:min(len(live), 4)] {
		u := c.state.users[live[i]]
		for _, f := range []string{`userName eq "` + u.userName + `"`, `externalId eq "` + u.externalID + `"`,
			`emails.value eq "` + u.emails[0] + `"`} {
			res.lookups++
			list, err := api.find("/Users", f)
			if err != nil {
				fail("lookup %s: %v", f, err)
				continue
			}
			if len(list) != 1 {
				fail("lookup %s finds %d users, want 1 (%s)", f, len(list), u.id)
				continue
			}
			if got, err := crashParseUser(list[0]); err != nil || got.id != u.id {
				fail("lookup %s finds %v, want %s (%v)", f, got, u.id, err)
			}
		}
	}
	slices.SortFunc(gone, func(a, b *crashUser) int { return strings.Compare(a.userName, b.userName) })
	for _, u := range gone[:min(len(gone), 4)] {
		for _, f := range []string{`userName eq "` + u.userName + `"`, `externalId eq "` + u.externalID + `"`} {
			res.lookups++
			if list, err := api.find("/Users", f); err != nil || len(list) != 0 {
				fail("lookup %s of deleted user %s finds %d users (%v)", f, u.id, len(list), err)
			}
		}
		res.lookups++
		if list, err := api.find("/Groups", `members[value eq "`+u.id+`"]`); err != nil || len(list) != 0 {
			fail("deleted user %s is still a member of %d groups by the index (%v)", u.id, len(list), err)
		}
	}
	for _, key := range c.state.liveGroups() {
		g := c.state.groups[key]
		for _, f := range []string{`displayName eq "` + g.displayName + `"`, `externalId eq "` + g.externalID + `"`} {
			res.lookups++
			list, err := api.find("/Groups", f)
			if err != nil || len(list) != 1 {
				fail("lookup %s finds %d groups, want 1 (%v)", f, len(list), err)
			} else if got, err := crashParseGroup(list[0]); err != nil || got.id != g.id {
				fail("lookup %s finds %v, want %s (%v)", f, got, g.id, err)
			}
		}
	}
	return res
}

// ---------------------------------------------------------------------------------------------
// The server process.

type crashServer struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	exited  chan struct{} // closed once the process has exited and been waited for
	waitErr error
}

// kill SIGKILLs the process (if it still runs) and waits for it to exit.
func (s *crashServer) kill() bool {
	select {
	case <-s.exited:
		return true
	default:
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.exited:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// crashLogTail returns the last lines of a server log, for failure messages.
func crashLogTail(path string, lines int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// crashRaceEnabled reports whether this test binary was built with -race.
func crashRaceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

type crashHarness struct {
	t            *testing.T
	bin, dir     string
	data         string
	env          []string
	seed         uint64
	rng          *rand.Rand
	startupLimit time.Duration
	clients      []*crashClient

	starts, cycles      int
	maxStartup, startup time.Duration
	applied, notApplied int
	writesVerified      int
	reads, lookups      int
	feedChanges         int // in the feed at the last check
}

// start runs the binary on a free loopback port and waits for /healthz, measuring how long the
// server takes to come up on the file the last kill left.
func (h *crashHarness) start(cycle int) *crashServer {
	t := h.t
	for attempt := 1; ; attempt++ {
		s := &crashServer{addr: testtool.FreeAddr(t), exited: make(chan struct{}),
			logPath: filepath.Join(h.dir, fmt.Sprintf("cycle-%03d-%d.log", cycle, attempt))}
		f, err := os.Create(s.logPath)
		if err != nil {
			t.Fatal(err)
		}
		// Small commit log files, so that kills land during checkpoints and while both files
		// hold commits, not only in the first file's first life.
		s.cmd = exec.Command(h.bin, "--addr", s.addr, "--data", h.data, "--commit-log-bytes", strconv.Itoa(bolt.MinCommitLogBytes))
		s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr = h.env, f, f
		began := time.Now()
		err = s.cmd.Start()
		f.Close() // the child has its own copy
		if err != nil {
			t.Fatalf("cycle %d: start the server: %v", cycle, err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
		t.Cleanup(func() { s.kill() })

		up, err := h.waitHealthy(s, began)
		if err == nil {
			h.starts++
			h.startup += up
			h.maxStartup = max(h.maxStartup, up)
			if up > h.startupLimit {
				t.Errorf("cycle %d: the server took %v to answer /healthz (limit %v)", cycle, up, h.startupLimit)
			}
			return s
		}
		s.kill()
		if attempt < 3 && strings.Contains(crashLogTail(s.logPath, 20), "address already in use") {
			continue // the free port was taken in the meantime
		}
		t.Fatalf("cycle %d: the server did not come up: %v\n%s", cycle, err, crashLogTail(s.logPath, 20))
	}
}

func (h *crashHarness) waitHealthy(s *crashServer, began time.Time) (time.Duration, error) {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 250 * time.Millisecond}
	deadline := began.Add(h.startupLimit + 5*time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return 0, fmt.Errorf("it exited: %v", s.waitErr)
		default:
		}
		if res, err := hc.Get("http://" + s.addr + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(began), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("no 200 from /healthz within %v", time.Since(began).Round(time.Millisecond))
}

// check runs `scimserver check` on the stopped server's file and requires exit 0.
func (h *crashHarness) check(cycle int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "check", "--data", h.data)
	cmd.Env = h.env
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("cycle %d: scimserver check (seed %d): %v\n%s", cycle, h.seed, err, out)
	}
}

// verify checks every client's resources against the running server; killedLog is the log of
// the server the last kill stopped. It returns how the requests in flight at that kill went.
func (h *crashHarness) verify(s *crashServer, cycle int, killedLog string) (applied, notApplied int) {
	api := newCrashAPI(s.addr)
	defer api.close()
	results := make([]crashVerified, len(h.clients))
	var wg sync.WaitGroup
	for i, c := range h.clients {
		c.rng = rand.New(rand.NewPCG(h.seed, uint64(cycle)<<8|uint64(c.num)|0x80))
		wg.Go(func() { results[i] = c.verify(api) })
	}
	wg.Wait()
	for _, r := range results {
		for _, p := range r.problems {
			h.t.Errorf("cycle %d, after restart: %s", cycle, p)
		}
		applied += r.applied
		notApplied += r.notApplied
		h.writesVerified += r.writes
		h.reads += r.reads
		h.lookups += r.lookups
	}
	h.applied += applied
	h.notApplied += notApplied
	if h.t.Failed() {
		tail := "(none: first start)"
		if killedLog != "" {
			tail = crashLogTail(killedLog, 12)
		}
		h.t.Fatalf("cycle %d: seed %d; the killed server's last log lines:\n%s", cycle, h.seed, tail)
	}
	return applied, notApplied
}

// load runs the clients against s for a random 50-400 ms, then SIGKILLs it mid-traffic.
func (h *crashHarness) load(s *crashServer, cycle int) (time.Duration, int, int) {
	api := newCrashAPI(s.addr)
	defer api.close()
	var killed atomic.Bool
	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	acked := 0
	for _, c := range h.clients {
		acked -= c.acked
	}
	dur := time.Duration(50+h.rng.IntN(351)) * time.Millisecond
	var wg sync.WaitGroup
	for _, c := range h.clients {
		c.rng = rand.New(rand.NewPCG(h.seed, uint64(cycle)<<8|uint64(c.num)))
		wg.Go(func() { c.run(api, &killed, report) })
	}
	time.Sleep(dur)
	killed.Store(true)
	if !s.kill() { // no waiting for in-flight requests: that is the point
		h.t.Fatalf("cycle %d: the server did not exit within 10s of SIGKILL", cycle)
	}
	wg.Wait()
	inFlight := 0
	for _, c := range h.clients {
		acked += c.acked
		if c.pending != nil {
			inFlight++
		}
	}
	for _, p := range problems {
		h.t.Errorf("cycle %d: %s", cycle, p)
	}
	if len(problems) > 0 {
		h.t.Fatalf("cycle %d: seed %d; the server's last log lines:\n%s", cycle, h.seed, crashLogTail(s.logPath, 15))
	}
	return dur, acked, inFlight
}

func TestCrashRecovery(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL and SIGTERM semantics")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: cannot build the server binary")
	}
	cycles := crashDefaultCycles
	if v := os.Getenv("SCIMSERVER_CRASH_CYCLES"); v != "" {
		if cycles, err = strconv.Atoi(v); err != nil || cycles < 1 {
			t.Fatalf("SCIMSERVER_CRASH_CYCLES=%q: want a positive number", v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SCIMSERVER_CRASH_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SCIMSERVER_CRASH_SEED=%q: want an unsigned number", v)
		}
	}
	t.Logf("seed %d (SCIMSERVER_CRASH_SEED=%d repeats the choices), %d cycles", seed, seed, cycles)

	dir := t.TempDir()
	h := &crashHarness{t: t, dir: dir, bin: filepath.Join(dir, "scimserver"), data: filepath.Join(dir, "data", "scim.db"),
		seed: seed, rng: rand.New(rand.NewPCG(seed, 0)), startupLimit: 2 * time.Second}
	if crashRaceEnabled() {
		h.startupLimit = 5 * time.Second // the race detector's slowdown of everything else on the machine
	}
	for i := range crashClients {
		h.clients = append(h.clients, &crashClient{num: i + 1, state: newCrashState(), feed: newCrashFeed()})
	}
	// The server gets a clean environment: no SCIMSERVER_* setting of the caller's leaks in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCIMSERVER_") {
			h.env = append(h.env, kv)
		}
	}
	h.env = append(h.env, "SCIMSERVER_TOKEN="+crashToken, "SCIMSERVER_PLATFORM_TOKEN="+crashPlatformToken)

	began := time.Now()
	build := exec.Command(goTool, "build", "-o", h.bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the server in %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	deadline, hasDeadline := t.Deadline()
	acked, killedLog := 0, ""
	for cycle := 1; cycle <= cycles; cycle++ {
		if hasDeadline && time.Until(deadline) < 30*time.Second {
			t.Errorf("stopping after %d of %d cycles: the test deadline is near", cycle-1, cycles)
			break
		}
		s := h.start(cycle)
		applied, notApplied := h.verify(s, cycle, killedLog) // what the previous kill left
		h.checkFeed(s, cycle)
		dur, n, inFlight := h.load(s, cycle)
		h.check(cycle)
		h.cycles++
		acked += n
		killedLog = s.logPath
		t.Logf("cycle %d: previous kill's in-flight requests: %d applied, %d not; killed after %v: %d writes acknowledged, %d in flight",
			cycle, applied, notApplied, dur.Round(time.Millisecond), n, inFlight)
	}

	// A last restart verifies the last kill; then a clean stop must leave a consistent file too.
	s := h.start(cycles + 1)
	h.verify(s, cycles+1, killedLog)
	h.checkFeed(s, cycles+1)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("clean stop: %v\n%s", s.waitErr, crashLogTail(s.logPath, 10))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop within 30s of SIGTERM")
	}
	h.check(cycles + 1)

	refused := 0
	for _, c := range h.clients {
		refused += c.refused
	}
	t.Logf("summary: %d cycles in %v; %d writes acknowledged, %d verified after restarts (%d reads, %d lookups); %d invalid writes refused as they must be",
		h.cycles, time.Since(began).Round(time.Millisecond), acked, h.writesVerified, h.reads, h.lookups, refused)
	t.Logf("summary: the change feed listed exactly the %d changes of the acknowledged writes after every restart", h.feedChanges)
	t.Logf("summary: in flight at a kill: %d applied, %d not applied; startup max %v, mean %v over %d starts (limit %v)",
		h.applied, h.notApplied, h.maxStartup.Round(time.Millisecond),
		(h.startup / time.Duration(max(h.starts, 1))).Round(time.Millisecond), h.starts, h.startupLimit)
	if h.writesVerified != acked {
		t.Errorf("%d writes acknowledged but %d verified", acked, h.writesVerified)
	}
}
