package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Following the change feed while the create phase runs (--feed-token): one follower by long
// poll and one by Server-Sent Events, each from the cursor the feed gives before the first
// create. Each must see every user the phase created, once. For every change a follower
// records when it arrived, against two clocks: the change's time (the server's clock when the
// write's transaction began, before its commit and fsync: an upper bound of commit-to-delivery)
// and the moment the creator got the write's 201 (after the commit: a lower bound, negative when
// the follower heard of the write before its writer did).

// FeedResult is one follower's measure.
type FeedResult struct {
	Mode    string  `json:"mode"` // long-poll or sse
	Changes int     `json:"changes"`
	Seconds float64 `json:"seconds"` // first to last creation delivered
	// ChangesPerSec is the followers' delivery rate of the creations; CreatesPerSec the create
	// phase's rate, over the same run.
	ChangesPerSec float64 `json:"changesPerSec"`
	CreatesPerSec float64 `json:"createsPerSec"`
	// FromCommit*: delivery minus the change's time; FromAck*: delivery minus the 201's arrival.
	FromCommitP50Ms float64 `json:"fromCommitP50Ms"`
	FromCommitP99Ms float64 `json:"fromCommitP99Ms"`
	FromCommitMaxMs float64 `json:"fromCommitMaxMs"`
	FromAckP50Ms    float64 `json:"fromAckP50Ms"`
	FromAckP99Ms    float64 `json:"fromAckP99Ms"`
	// Missing counts created users the follower never saw; Duplicates changes it saw twice.
	Missing    int    `json:"missing"`
	Duplicates int    `json:"duplicates"`
	Error      string `json:"error,omitempty"`
}

// feedChange is what a follower reads of a change.
type feedChange struct {
	Cursor     string    `json:"cursor"`
	Time       time.Time `json:"time"`
	Operation  string    `json:"operation"`
	ResourceID string    `json:"resourceId"`
}

// follower records the creations a feed follower saw.
type follower struct {
	mode    string
	mu      sync.Mutex
	arrived map[string]time.Time // created resource id -> arrival
	at      map[string]time.Time // -> the change's time
	dups    int
	err     error
}

func (f *follower) saw(c feedChange, now time.Time) {
	if c.Operation != "created" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.arrived[c.ResourceID]; ok {
		f.dups++
		return
	}
	f.arrived[c.ResourceID], f.at[c.ResourceID] = now, c.Time
}

func (f *follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// feedRun is the followers of one create phase.
type feedRun struct {
	root, token string
	hc          *http.Client
	followers   []*follower
	acks        sync.Map // created id -> time.Time the 201 arrived
	cancel      context.CancelFunc
	done        sync.WaitGroup
}

// startFeed reads the feed's current cursor and starts the followers from it.
func startFeed(ctx context.Context, cfg config) (*feedRun, error) {
	r := &feedRun{root: strings.TrimSuffix(strings.TrimRight(cfg.url, "/"), "/scim/v2"), token: cfg.feedToken,
		hc: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	var page struct {
		NextCursor string `json:"nextCursor"`
	}
	res, err := r.get(ctx, "/api/v1/changes", "")
	if err == nil {
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
	}
	if err != nil || page.NextCursor == "" {
		return nil, fmt.Errorf("reading the change feed's cursor: %v", err)
	}
	fctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	for _, mode := range []string{"long-poll", "sse"} {
		f := &follower{mode: mode, arrived: map[string]time.Time{}, at: map[string]time.Time{}}
		r.followers = append(r.followers, f)
		r.done.Go(func() {
			var err error
			if mode == "sse" {
				err = r.stream(fctx, f, page.NextCursor)
			} else {
				err = r.poll(fctx, f, page.NextCursor)
			}
			if err != nil && fctx.Err() == nil {
				f.fail(err)
			}
		})
	}
	return r, nil
}

func (r *feedRun) get(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.root+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := r.hc.Do(req)
	if err == nil && res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return res, err
}

// poll follows by long polls of up to 30 s.
func (r *feedRun) poll(ctx context.Context, f *follower, after string) error {
	for ctx.Err() == nil {
		res, err := r.get(ctx, "/api/v1/changes?limit=1000&wait=30s&after="+after, "")
		if err != nil {
			return err
		}
		var page struct {
			Changes    []feedChange `json:"changes"`
			NextCursor string       `json:"nextCursor"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		now := time.Now()
		if err != nil {
			return err
		}
		for _, c := range page.Changes {
			f.saw(c, now)
		}
		after = page.NextCursor
	}
	return nil
}

// stream follows by Server-Sent Events.
func (r *feedRun) stream(ctx context.Context, f *follower, after string) error {
	res, err := r.get(ctx, "/api/v1/changes?after="+after, "text/event-stream")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		now := time.Now()
		var c feedChange
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return err
		}
		f.saw(c, now)
	}
	return sc.Err()
}

// acked records that the creation of id was acknowledged now.
func (r *feedRun) acked(id string) { r.acks.Store(id, time.Now()) }

// finish waits (10 s at most) for the followers to see every created user, stops them and
// measures; phase is the create phase's result.
func (r *feedRun) finish(created []user, phase PhaseResult) []FeedResult {
	deadline := time.Now().Add(10 * time.Second)
	for _, f := range r.followers {
		for time.Now().Before(deadline) && f.count() < len(created) && f.error() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	r.cancel()
	r.done.Wait()
	var out []FeedResult
	for _, f := range r.followers {
		res := FeedResult{Mode: f.mode, CreatesPerSec: phase.OpsPerSec, Duplicates: f.dups}
		if f.err != nil {
			res.Error = f.err.Error()
		}
		var fromCommit, fromAck []time.Duration
		var first, last time.Time
		for _, u := range created {
			got, ok := f.arrived[u.id]
			if !ok {
				res.Missing++
				continue
			}
			res.Changes++
			if first.IsZero() || got.Before(first) {
				first = got
			}
			if got.After(last) {
				last = got
			}
			fromCommit = append(fromCommit, got.Sub(f.at[u.id]))
			if ack, ok := r.acks.Load(u.id); ok {
				fromAck = append(fromAck, got.Sub(ack.(time.Time)))
			}
		}
		res.Seconds = last.Sub(first).Seconds()
		if res.Seconds > 0 {
			res.ChangesPerSec = float64(res.Changes) / res.Seconds
		}
		slices.Sort(fromCommit)
		slices.Sort(fromAck)
		res.FromCommitP50Ms, res.FromCommitP99Ms = ms(percentile(fromCommit, 50)), ms(percentile(fromCommit, 99))
		res.FromCommitMaxMs = ms(percentile(fromCommit, 100))
		res.FromAckP50Ms, res.FromAckP99Ms = ms(percentile(fromAck, 50)), ms(percentile(fromAck, 99))
		out = append(out, res)
	}
	return out
}

func (f *follower) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.arrived)
}

func (f *follower) error() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// feedErrors counts a follower's misses, duplicates and failure as errors of the run.
func feedErrors(rs []FeedResult) int {
	n := 0
	for _, r := range rs {
		n += r.Missing + r.Duplicates
		if r.Error != "" {
			n++
		}
	}
	return n
}

var errNoFeed = errors.New("--feed-token needs the create phase")
