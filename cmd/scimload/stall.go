package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// stall measures what one anonymization costs every other writer: PATCHes at --concurrency for
// --duration, each worker on its own users, and one anonymization half-way through (sent by
// worker 0, which patches nothing meanwhile). The server has one writer for all tenants, so
// any time it spends on the anonymization is time no PATCH can complete. The phase reports the
// longest gap between two completed PATCHes that overlaps the anonymization, and for
// comparison the longest gap in the rest of the run: the machine's own noise.
func (l *load) stall(ctx context.Context) PhaseResult {
	p := l.newPhase("stall")
	workers := len(p.workers)
	// Users anonymized by earlier runs refuse PATCHes; the victim is the last user that is not.
	gone := func(u int) bool { return strings.HasPrefix(l.users[u].userName, "anonymized-") }
	victim := -1
	for u := len(l.users) - 1; u >= 0; u-- {
		if !gone(u) {
			victim = u
			break
		}
	}
	if victim < 0 {
		p.workers[0].rec.fail("anonymize", fmt.Errorf("every user is anonymized already"))
		return p.result()
	}
	done := make([][]time.Time, workers) // when each worker's PATCHes completed
	var aStart, aEnd time.Time
	scrubbed := false
	start := time.Now()
	half, deadline := start.Add(l.cfg.duration/2), start.Add(l.cfg.duration)
	p.spread(func(w *worker) {
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if w.id == 0 && aStart.IsZero() && time.Now().After(half) {
				aStart = time.Now()
				scrubbed = l.anonymize(ctx, w, victim)
				aEnd = time.Now()
				continue
			}
			u, ok := l.ownedUser(w, workers)
			if !ok {
				return
			}
			if u == victim || gone(u) {
				continue
			}
			family := fmt.Sprintf("Stall%08x", w.rng.Uint32())
			body := patchBody(patchOp{Op: "replace", Path: "name.familyName", Value: family})
			if l.patchUser(ctx, w, "patch", u, body, func(got scimUser) error { return wantFamily(got, family) }) {
				done[w.id] = append(done[w.id], time.Now())
			}
		}
	})
	res := p.result()
	if aStart.IsZero() {
		return res
	}
	end, all := time.Now(), slices.Concat(done...)
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	res.AnonymizeMs, res.Scrubbed = ms(aEnd.Sub(aStart)), scrubbed
	res.StallMs, res.BaselineStallMs, res.BaselineStallsOver50 = longestGaps(all, end, aStart, aEnd)
	res.WindowStallP50Ms, res.WindowStallP90Ms = windowStalls(all, end, aStart, aEnd)
	return res
}

// windowStalls places windows as long as [from, to] every 100 ms through the rest of the run
// (more than a second away from it) and returns the median and the 90th percentile of the
// longest gap overlapping each: what the machine's own hiccups give a window that long, to
// read the stall during [from, to] against. done is sorted.
func windowStalls(done []time.Time, end, from, to time.Time) (p50, p90 float64) {
	if len(done) == 0 {
		return 0, 0
	}
	length := to.Sub(from)
	var stalls []time.Duration
	for s := done[0]; !s.Add(length).After(end); s = s.Add(100 * time.Millisecond) {
		if s.Add(length).After(from.Add(-time.Second)) && s.Before(to.Add(time.Second)) {
			continue
		}
		during, _, _ := longestGaps(done, end, s, s.Add(length))
		stalls = append(stalls, time.Duration(during*float64(time.Millisecond)))
	}
	slices.Sort(stalls)
	return ms(percentile(stalls, 50)), ms(percentile(stalls, 90))
}

// anonymize anonymizes user u with the SCIM action and checks the answer; it reports whether
// the answer said the free pages were already overwritten (scrubbedAt).
func (l *load) anonymize(ctx context.Context, w *worker, u int) bool {
	scrubbed := false
	w.call(ctx, l.c, "anonymize", http.MethodPost, "/Users/"+url.PathEscape(l.users[u].id)+"/.anonymize", nil, http.StatusOK,
		func(b []byte) error {
			got, err := decode[scimUser](b)
			if err != nil {
				return err
			}
			if got.ID != l.users[u].id || !strings.HasPrefix(got.UserName, "anonymized-") {
				return fmt.Errorf("answered user %q with userName %q", got.ID, got.UserName)
			}
			scrubbed = got.Lifecycle.ScrubbedAt != ""
			return nil
		})
	l.users[u].userName = "anonymized-"
	return scrubbed
}

// longestGaps returns, from the first completed write (done, sorted) to end, the longest time
// without one that overlaps [from, to], the longest one that does not, and how many of those
// exceed 50 ms. The time before the first write (connections being opened) is no stall.
func longestGaps(done []time.Time, end, from, to time.Time) (during, outside float64, over50 int) {
	if len(done) == 0 {
		return 0, 0, 0
	}
	prev := done[0]
	for _, t := range append(done[1:], end) {
		gap := ms(t.Sub(prev))
		if t.After(from) && prev.Before(to) {
			during = max(during, gap)
		} else {
			outside = max(outside, gap)
			if gap > 50 {
				over50++
			}
		}
		prev = t
	}
	return during, outside, over50
}
