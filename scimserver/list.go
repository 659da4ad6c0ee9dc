package scimserver

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver/compare"
	"github.com/scimserver/scimserver/storage"
)

// listQuery is a list or search request (RFC 7644 §3.4.2, §3.4.3).
type listQuery struct {
	filter     string
	sortBy     string
	descending bool
	startIndex int
	count      int
	attributes []string
	excluded   []string
}

func (s *Server) queryFromURL(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{filter: strings.TrimSpace(v.Get("filter")), sortBy: v.Get("sortBy"),
		attributes: v["attributes"], excluded: v["excludedAttributes"]}
	var err error
	if q.startIndex, err = intParam("startIndex", v.Get("startIndex"), 1); err != nil {
		return q, err
	}
	if q.count, err = intParam("count", v.Get("count"), defaultPageSize); err != nil {
		return q, err
	}
	if q.descending, err = sortOrder(v.Get("sortOrder")); err != nil {
		return q, err
	}
	return s.clamp(q), nil
}

const defaultPageSize = 100

// intParam parses a paging parameter. Out-of-range numbers are clamped (RFC 7644 §3.4.2.4 says
// how to read values below 1); anything that is not an integer is refused.
func intParam(name, s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if e, ok := err.(*strconv.NumError); ok && e.Err == strconv.ErrRange {
			ne = e
		}
		if ne == nil {
			return 0, badRequest("invalidValue", name+" must be an integer")
		}
		if strings.HasPrefix(strings.TrimSpace(s), "-") {
			return 0, nil
		}
		return math.MaxInt32, nil
	}
	return int(max(min(n, math.MaxInt32), math.MinInt32)), nil
}

func sortOrder(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "ascending":
		return false, nil
	case "descending":
		return true, nil
	}
	return false, badRequest("invalidValue", `sortOrder must be "ascending" or "descending"`)
}

func (s *Server) clamp(q listQuery) listQuery {
	q.startIndex = max(q.startIndex, 1)
	q.count = min(max(q.count, 0), s.opts.MaxResults)
	return q
}

// searchBody is a POST …/.search request.
type searchBody struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
}

func (s *Server) queryFromBody(r *http.Request) (listQuery, error) {
	m, err := decodeObject(body(r))
	if err != nil {
		return listQuery{}, err
	}
	raw, _ := json.Marshal(m)
	var b searchBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return listQuery{}, badRequest("invalidValue", "a search request's fields have the wrong types")
	}
	if !slices.Contains(b.Schemas, schemas.SearchURN) {
		return listQuery{}, badRequest("invalidValue", "a search request must carry the SearchRequest schema")
	}
	q := listQuery{filter: strings.TrimSpace(b.Filter), sortBy: b.SortBy, attributes: b.Attributes,
		excluded: b.ExcludedAttributes, startIndex: 1, count: defaultPageSize}
	if b.StartIndex != nil {
		q.startIndex = *b.StartIndex
	}
	if b.Count != nil {
		q.count = *b.Count
	}
	if q.descending, err = sortOrder(b.SortOrder); err != nil {
		return q, err
	}
	return s.clamp(q), nil
}

// page is one page of a list response, its resources already encoded.
type page struct {
	total     int
	resources [][]byte
}

func (s *Server) list(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := s.queryFromURL(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.answerList(w, r, []*resourceType{rt}, q)
	}
}

func (s *Server) search(rt *resourceType) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := s.queryFromBody(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.answerList(w, r, []*resourceType{rt}, q)
	}
}

// rootQuery and rootSearch query Users and Groups together (RFC 7644 §3.4.2.1).
func (s *Server) rootQuery(w http.ResponseWriter, r *http.Request) {
	q, err := s.queryFromURL(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.answerList(w, r, []*resourceType{s.users, s.groups}, q)
}

func (s *Server) rootSearch(w http.ResponseWriter, r *http.Request) {
	q, err := s.queryFromBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.answerList(w, r, []*resourceType{s.users, s.groups}, q)
}

func (s *Server) answerList(w http.ResponseWriter, r *http.Request, types []*resourceType, q listQuery) {
	pg, err := s.runQuery(r, types, q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	b := make([]byte, 0, 256+len(pg.resources)*1024)
	b = append(b, `{"schemas":["`+schemas.ListURN+`"],"totalResults":`...)
	b = strconv.AppendInt(b, int64(pg.total), 10)
	b = append(b, `,"startIndex":`...)
	b = strconv.AppendInt(b, int64(q.startIndex), 10)
	b = append(b, `,"itemsPerPage":`...)
	b = strconv.AppendInt(b, int64(len(pg.resources)), 10)
	b = append(b, `,"Resources":[`...)
	for i, res := range pg.resources {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, res...)
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...))
}

// hit is a matching record, with its sort key when the query sorts.
type hit struct {
	rt  *resourceType
	id  string
	key any
}

// runQuery answers a query across the given resource types in one read transaction.
func (s *Server) runQuery(r *http.Request, types []*resourceType, q listQuery) (page, error) {
	type prepared struct {
		rt      *resourceType
		expr    filter.Expression
		sort    *attrRef
		lookups *lookupPlan // nil: no index answers the filter
	}
	var preps []prepared
	for _, rt := range types {
		p := prepared{rt: rt}
		if q.filter != "" {
			e, err := rt.parseFilter(q.filter)
			if err != nil {
				if len(types) > 1 {
					continue // across types, a filter applies to the types whose schemas it fits
				}
				return page{}, err
			}
			p.expr, p.lookups = e, rt.plan(e)
		}
		if q.sortBy != "" {
			urn, name, sub := rt.splitPath(q.sortBy)
			ref, ok := rt.resolve(urn, name, sub)
			if !ok {
				if len(types) == 1 {
					return page{}, badRequest("invalidValue", "sortBy names an unknown attribute")
				}
			} else {
				p.sort = &ref
			}
		}
		preps = append(preps, p)
	}
	if len(preps) == 0 {
		return page{}, invalidFilter("the filter fits neither Users nor Groups")
	}
	// The common case, a plain page through one type, reads only that page; sorted by the
	// unique name alone, the name index is that order already. Anything else reads every
	// candidate an index gives, or every record, and is bounded.
	plain := len(preps) == 1 && preps[0].expr == nil && q.sortBy == ""
	byName := len(preps) == 1 && preps[0].expr == nil && preps[0].sort != nil && preps[0].rt.sortsByName(*preps[0].sort)
	var work *budget
	if !plain && !byName {
		if slices.ContainsFunc(preps, func(p prepared) bool { return p.lookups == nil }) {
			release, err := s.admitScan(r)
			if err != nil {
				return page{}, err
			}
			defer release()
		}
		work = newBudget(r.Context(), s.opts.ScanTimeout)
	}
	base := s.baseURL(r)
	var pg page
	err := s.store.Read(tenantOf(r), func(tx *storage.Tx) error {
		pg = page{}
		if plain {
			return s.plainPage(tx, preps[0].rt, q, base, &pg)
		}
		if byName {
			return s.namePage(tx, preps[0].rt, q, base, &pg)
		}
		var hits []hit
		for _, p := range preps {
			err := s.matches(tx, p.rt, p.expr, p.lookups, p.sort != nil, base, work, func(rec record, m map[string]any) {
				h := hit{rt: p.rt, id: rec.id}
				if p.sort != nil {
					h.key = sortKey(*p.sort, m)
				}
				hits = append(hits, h)
			})
			if err != nil {
				return err
			}
		}
		if q.sortBy != "" {
			sortHits(hits, q.descending)
		}
		pg.total = len(hits)
		from := min(q.startIndex-1, len(hits))
		to := min(from+q.count, len(hits))
		for _, h := range hits[from:to] {
			rec, err := h.rt.get(tx, h.id)
			if err != nil {
				return err
			}
			raw, err := s.renderBytes(tx, h.rt, rec, base, h.rt.parseProjection(q.attributes, q.excluded))
			if err != nil {
				return err
			}
			pg.resources = append(pg.resources, raw)
		}
		return nil
	})
	if err == errTooMany || err == errClientGone {
		s.metrics.scanStopped(err)
	}
	return pg, err
}

// namePage serves an unfiltered page sorted by the resource type's unique name from its index,
// reading only the page: every record has a name and no two compare equal, so the index order
// is the order sortHits gives.
func (s *Server) namePage(tx *storage.Tx, rt *resourceType, q listQuery, base string, pg *page) error {
	pg.total = rt.count(tx)
	if q.count == 0 {
		return nil
	}
	proj := rt.parseProjection(q.attributes, q.excluded)
	var err error
	rt.scanNames(tx, q.descending, q.startIndex-1, func(id string) bool {
		var rec record
		if rec, err = rt.get(tx, id); err != nil {
			return false
		}
		var raw []byte
		if raw, err = s.renderBytes(tx, rt, rec, base, proj); err != nil {
			return false
		}
		pg.resources = append(pg.resources, raw)
		return len(pg.resources) < q.count
	})
	return err
}

// plainPage serves an unfiltered, unsorted page. Identity providers walk such pages in order
// (startIndex 1, 101, 201, …): where each page starts and ends is remembered, so the next page,
// or the same page again, starts there instead of stepping over every record before it.
func (s *Server) plainPage(tx *storage.Tx, rt *resourceType, q listQuery, base string, pg *page) error {
	pg.total = rt.count(tx)
	if q.count == 0 {
		return nil
	}
	key := pageKey{tenant: tx.Tenant(), kind: rt.name, deletes: rt.deletes(tx), startIndex: q.startIndex}
	after, skip := "", 0
	known := false
	if id, ok := s.pages.get(key); ok {
		after, known = id, true
	} else {
		after, skip = rt.position(tx, q.startIndex-1)
	}
	proj := rt.parseProjection(q.attributes, q.excluded)
	first, last := "", ""
	err := rt.scan(tx, after, skip, func(rec record) (bool, error) {
		raw, err := s.renderBytes(tx, rt, rec, base, proj)
		if err != nil {
			return false, err
		}
		pg.resources = append(pg.resources, raw)
		if first == "" {
			first = rec.id
		}
		last = rec.id
		return len(pg.resources) < q.count, nil
	})
	if err != nil || last == "" {
		return err
	}
	if !known && q.startIndex > 1 {
		s.pages.put(key, rt.before(tx, first))
	}
	key.startIndex += len(pg.resources)
	s.pages.put(key, last)
	return nil
}

// matches calls fn for every record of rt that passes expr, in id order. Lookups identity
// providers make on every sync are answered from an index (lookups); anything else scans.
// The rendered resource is passed along when the filter or the sort (withMap) needed it.
// Every record read is spent from work.
func (s *Server) matches(tx *storage.Tx, rt *resourceType, expr filter.Expression, lookups *lookupPlan, withMap bool,
	base string, work *budget, fn func(record, map[string]any)) error {
	ev := evaluator{rt: rt}
	proj := filterProjection(rt, expr)
	check := func(rec record) error {
		if err := work.spend(); err != nil {
			return err
		}
		if expr == nil && !withMap {
			fn(rec, nil)
			return nil
		}
		if rt.name == "Group" {
			ev.isMember = func(id string) bool { return tx.IsMember(rec.id, id) }
		}
		m, err := s.render(tx, rt, rec, base, proj)
		if err != nil {
			return err
		}
		if expr == nil || ev.match(expr, m) {
			fn(rec, m)
		}
		return nil
	}
	if lookups != nil {
		ids, err := lookups.ids(tx, rt)
		if err != nil {
			return err
		}
		if _, single := expr.(*filter.AttributeExpression); single && !withMap {
			// A lone indexed comparison: the index holds exactly the matches (its folding
			// follows the attribute's caseExact), so there is nothing left to evaluate.
			expr = nil
		}
		for _, id := range ids {
			rec, err := rt.get(tx, id)
			if storage.ErrorCode(err) == storage.NotFound {
				continue
			}
			if err != nil {
				return err
			}
			if err := check(rec); err != nil {
				return err
			}
		}
		return nil
	}
	return rt.scan(tx, "", 0, func(rec record) (bool, error) { return true, check(rec) })
}

// filterProjection renders what a filter needs: related data only when the filter names it.
func filterProjection(rt *resourceType, expr filter.Expression) projection {
	var skip []string
	for _, name := range []string{"groups", "members"} {
		if !mentions(expr, name) {
			skip = append(skip, name)
		}
	}
	return rt.parseProjection(nil, skip)
}

// mentions reports whether expr refers to the top-level attribute name.
func mentions(expr filter.Expression, name string) bool {
	switch e := expr.(type) {
	case *filter.LogicalExpression:
		return mentions(e.Left, name) || mentions(e.Right, name)
	case *filter.NotExpression:
		return mentions(e.Expression, name)
	case *filter.ValuePath:
		if _, ok := memberValueEq(e); ok {
			return false // answered by the membership index, not the member list
		}
		return strings.EqualFold(e.AttributePath.AttributeName, name)
	case *filter.AttributeExpression:
		return strings.EqualFold(e.AttributePath.AttributeName, name)
	}
	return false
}

func sortKey(ref attrRef, m map[string]any) any {
	var vals []any
	if ref.sub != nil {
		v, _ := ref.value(m)
		for _, el := range asList(v) {
			if obj, ok := el.(map[string]any); ok {
				if sv, ok := obj[ref.sub.Name()]; ok {
					vals = append(vals, sv)
				}
			}
		}
	} else if v, ok := ref.value(m); ok {
		vals = asList(v)
	}
	if len(vals) == 0 {
		return nil
	}
	if s, ok := vals[0].(string); ok && !ref.target().CaseExact() {
		return strings.ToLower(s)
	}
	return vals[0]
}

// sortHits orders by key; resources without a value sort last either way (RFC 7644 §3.4.2.3).
func sortHits(hits []hit, descending bool) {
	slices.SortStableFunc(hits, func(a, b hit) int {
		if a.key == nil || b.key == nil {
			switch {
			case a.key == nil && b.key == nil:
				return 0
			case a.key == nil:
				return 1
			}
			return -1
		}
		c := compareKeys(a.key, b.key)
		if descending {
			c = -c
		}
		return c
	})
}

func compareKeys(a, b any) int {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok && x != y {
			if x {
				return 1
			}
			return -1
		}
	default:
		fx, ok1 := compare.Number(a)
		fy, ok2 := compare.Number(b)
		if ok1 && ok2 {
			return cmp.Compare(fx, fy)
		}
	}
	return 0
}
