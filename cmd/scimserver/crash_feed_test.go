package main

// The change feed in the crash harness: every write a client had acknowledged (and its request
// in flight at a kill, when the verification found it applied) must be in the feed read from
// cursor 0 after every restart, exactly once, each client's in the order it made them — and
// nothing else. Clients own disjoint resources, so a change belongs to the client that owns its
// resource; within one write (a user's delete that ends memberships, a group created with
// members) the order of its changes is left open.

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const crashPlatformToken = "crash-harness-platform-token-0123456789abcdef"

// crashChange is a change the feed must list: an operation on a resource of the model (by model
// key, "u:" or "g:" and the key, as its id may be learned only later) and, for a membership,
// the member's id.
type crashChange struct {
	operation, ref, member string
}

// crashFeed is what one client's writes must have put in the feed.
type crashFeed struct {
	writes [][]crashChange   // per write that took effect, in the order the client made them
	ids    map[string]string // model ref -> id
}

func newCrashFeed() *crashFeed { return &crashFeed{ids: map[string]string{}} }

// expectChanges is what op will put in the feed, computed before it is sent (from the state
// it applies to).
func (c *crashClient) expectChanges(op *crashOp) []crashChange {
	if op.refused {
		return nil
	}
	u, g := "u:"+op.key, "g:"+op.key
	var out []crashChange
	switch op.kind {
	case "createUser":
		out = append(out, crashChange{"created", u, ""})
	case "patchUser":
		out = append(out, crashChange{"updated", u, ""})
	case "deleteUser":
		id := c.state.users[op.key].id
		for key, grp := range c.state.groups {
			if !grp.deleted && grp.members[id] {
				out = append(out, crashChange{"member-removed", "g:" + key, id})
			}
		}
		out = append(out, crashChange{"deleted", u, ""})
	case "createGroup":
		out = append(out, crashChange{"created", g, ""})
		for m := range op.group.members {
			out = append(out, crashChange{"member-added", g, m})
		}
	case "addMembers":
		for _, m := range op.members {
			out = append(out, crashChange{"member-added", g, m})
		}
	case "removeMember":
		out = append(out, crashChange{"member-removed", g, op.members[0]})
	case "renameGroup":
		out = append(out, crashChange{"updated", g, ""})
	case "deleteGroup":
		out = append(out, crashChange{"deleted", g, ""})
	}
	return out
}

// took records a write that took effect; id is a created resource's id when known.
func (f *crashFeed) took(op *crashOp, id string) {
	if op.refused {
		return
	}
	f.writes = append(f.writes, op.changes)
	if id != "" {
		f.ids[op.changes[0].ref] = id
	}
}

// learn records the ids the verification knows.
func (f *crashFeed) learn(s *crashState) {
	for k, u := range s.users {
		if u.id != "" {
			f.ids["u:"+k] = u.id
		}
	}
	for k, g := range s.groups {
		if g.id != "" {
			f.ids["g:"+k] = g.id
		}
	}
}

type crashFeedChange struct {
	Cursor     string `json:"cursor"`
	Operation  string `json:"operation"`
	ResourceID string `json:"resourceId"`
	Member     *struct {
		ID string `json:"id"`
	} `json:"member"`
}

func (c crashFeedChange) String() string {
	s := c.Operation + " " + c.ResourceID
	if c.Member != nil {
		s += " " + c.Member.ID
	}
	return s
}

// feed reads the whole change feed from cursor 0 with the platform token.
func (a *crashAPI) feed() ([]crashFeedChange, error) {
	var all []crashFeedChange
	for after := "0"; ; {
		req, err := http.NewRequest("GET", a.root+"/api/v1/changes?limit=1000&after="+after, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+crashPlatformToken)
		res, err := a.hc.Do(req)
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			return nil, fmt.Errorf("GET /api/v1/changes?after=%s: %d %s %v", after, res.StatusCode, raw, err)
		}
		var page struct {
			Changes    []crashFeedChange `json:"changes"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, err
		}
		if len(page.Changes) == 0 {
			return all, nil
		}
		all = append(all, page.Changes...)
		after = page.NextCursor
	}
}

// checkFeed reads the feed from the beginning and matches it against every client's writes.
func (h *crashHarness) checkFeed(s *crashServer, cycle int) {
	api := newCrashAPI(s.addr)
	defer api.close()
	changes, err := api.feed()
	if err != nil {
		h.t.Fatalf("cycle %d: reading the change feed: %v", cycle, err)
	}
	owner := map[string]int{}
	for i, c := range h.clients {
		for id := range maps.Values(c.feed.ids) {
			owner[id] = i
		}
	}
	mine := make([][]crashFeedChange, len(h.clients))
	var last uint64
	for _, ch := range changes {
		n, err := strconv.ParseUint(ch.Cursor, 10, 64)
		if err != nil || n <= last {
			h.t.Fatalf("cycle %d: change %v has cursor %q after %d", cycle, ch, ch.Cursor, last)
		}
		last = n
		i, ok := owner[ch.ResourceID]
		if !ok {
			h.t.Fatalf("cycle %d: the feed lists a change no client made: %v", cycle, ch)
		}
		mine[i] = append(mine[i], ch)
	}
	for i, c := range h.clients {
		got := mine[i]
		for w, write := range c.feed.writes {
			want := make([]string, len(write))
			for j, ch := range write {
				want[j] = strings.TrimSuffix(ch.operation+" "+c.feed.ids[ch.ref]+" "+ch.member, " ")
			}
			if len(got) < len(want) {
				h.t.Fatalf("cycle %d, client %d: the feed ends before write %d of %d (%q)", cycle, c.num, w+1, len(c.feed.writes), want)
			}
			have := make([]string, len(want))
			for j, ch := range got[:len(want)] {
				have[j] = ch.String()
			}
			slices.Sort(want)
			slices.Sort(have)
			if !slices.Equal(want, have) {
				h.t.Fatalf("cycle %d, client %d: write %d of %d: the feed lists %q, want %q", cycle, c.num, w+1, len(c.feed.writes), have, want)
			}
			got = got[len(want):]
		}
		if len(got) > 0 {
			h.t.Fatalf("cycle %d, client %d: the feed lists changes beyond the client's writes: %v", cycle, c.num, got)
		}
	}
	h.feedChanges = len(changes)
}
