package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Provisioning activity: the recent SCIM requests of each tenant, kept in memory in a bounded
// ring per tenant for the operator console. An entry holds what the request log holds — route
// pattern, status, the SCIM error's type and detail (which never quote a client's value), the
// token's id and name — and nothing personal: no path, no query, no body.

// activityEntry is one SCIM request as the console shows it.
type activityEntry struct {
	Seq        uint64    `json:"seq"`
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Route      string    `json:"route"`
	Status     int       `json:"status"`
	ScimType   string    `json:"scimType,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	DurationMs float64   `json:"durationMs"`
	TokenID    string    `json:"tokenId"`
	TokenName  string    `json:"tokenName"`
	RequestID  string    `json:"requestId"`
}

// activityRing is one tenant's ring: the newest entries, and how many older ones were dropped.
type activityRing struct {
	entries []activityEntry // at most size; entries[next] is the oldest once full
	next    int
	seq     uint64
	dropped uint64
}

// activityLog holds every tenant's ring.
type activityLog struct {
	mu    sync.Mutex
	size  int
	rings map[string]*activityRing
}

// defaultActivityPerTenant is how many requests the console can show per tenant.
const defaultActivityPerTenant = 1000

func newActivityLog(size int) *activityLog {
	if size <= 0 {
		size = defaultActivityPerTenant
	}
	return &activityLog{size: size, rings: map[string]*activityRing{}}
}

// scimRoute marks the routes whose requests are provisioning activity.
const scimRoute = "/scim/v2"

// observe records a finished request of an authenticated SCIM client; anything else is not
// provisioning activity.
func (a *activityLog) observe(ri *reqInfo, method, route string, status int, took time.Duration) {
	if ri.token.Tenant == "" || !strings.HasPrefix(route, scimRoute) {
		return
	}
	e := activityEntry{Time: time.Now().Add(-took).UTC(), Method: metricMethod(method), Route: route, Status: status,
		DurationMs: float64(took.Microseconds()) / 1000, TokenID: ri.token.ID, TokenName: ri.token.Name, RequestID: ri.id}
	if ri.err != nil {
		se := toSCIM(ri.err)
		e.ScimType, e.Detail = se.ScimType, se.Detail
	}
	a.add(ri.token.Tenant, e)
}

func (a *activityLog) add(tenant string, e activityEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rings[tenant]
	if r == nil {
		r = &activityRing{}
		a.rings[tenant] = r
	}
	r.seq++
	e.Seq = r.seq
	if len(r.entries) < a.size {
		r.entries = append(r.entries, e)
		return
	}
	r.entries[r.next] = e
	r.next = (r.next + 1) % a.size
	r.dropped++
}

// activityQuery selects entries of one tenant's ring.
type activityQuery struct {
	After  uint64 // only entries with a greater Seq
	Status int    // status class (2 for 2xx …); 0 for any
	Token  string // token id; "" for any
	Limit  int
}

// activityPage is what the console polls: the matching entries newest first, the newest Seq of
// the ring (to poll for what follows), and how many entries the ring has dropped.
type activityPage struct {
	Entries  []activityEntry `json:"entries"`
	Last     uint64          `json:"last"`
	Dropped  uint64          `json:"dropped"`
	Capacity int             `json:"capacity"`
}

func (a *activityLog) read(tenant string, q activityQuery) activityPage {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := activityPage{Entries: []activityEntry{}, Capacity: a.size}
	r := a.rings[tenant]
	if r == nil {
		return p
	}
	p.Last, p.Dropped = r.seq, r.dropped
	n := len(r.entries)
	for i := 0; i < n && len(p.Entries) < q.Limit; i++ {
		e := r.entries[(r.next+n-1-i)%n] // newest first
		if e.Seq <= q.After {
			break
		}
		if (q.Status == 0 || e.Status/100 == q.Status) && (q.Token == "" || e.TokenID == q.Token) {
			p.Entries = append(p.Entries, e)
		}
	}
	return p
}

// adminActivity serves GET /api/v1/admin/tenants/{id}/activity?after=&status=4xx&token=&limit=.
func (s *Server) adminActivity(w http.ResponseWriter, r *http.Request) {
	tenant := pathParam(r, "id")
	if _, err := s.svc.Tenant(r.Context(), tenant); err != nil {
		writeError(w, r, err)
		return
	}
	v := r.URL.Query()
	q := activityQuery{Token: v.Get("token"), Limit: s.activity.size}
	if str := v.Get("after"); str != "" {
		n, err := strconv.ParseUint(str, 10, 64)
		if err != nil {
			writeError(w, r, badRequest("invalidValue", "after must be a value returned as last"))
			return
		}
		q.After = n
	}
	if str := v.Get("status"); str != "" {
		if len(str) != 3 || str[0] < '1' || str[0] > '5' || str[1:] != "xx" {
			writeError(w, r, badRequest("invalidValue", "status must be a class such as 4xx"))
			return
		}
		q.Status = int(str[0] - '0')
	}
	if str := v.Get("limit"); str != "" {
		n, err := strconv.Atoi(str)
		if err != nil || n < 1 || n > s.activity.size {
			writeError(w, r, badRequest("invalidValue", "limit must be an integer from 1 to "+strconv.Itoa(s.activity.size)))
			return
		}
		q.Limit = n
	}
	writeJSON(w, http.StatusOK, s.activity.read(tenant, q))
}
