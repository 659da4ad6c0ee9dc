package scimserver

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scimserver/scimserver/scimserver/compare"
	"github.com/scimserver/scimserver/storage"
)

// Query is a list or search request (RFC 7644 §3.4.2, §3.4.3), its paging already clamped.
type Query struct {
	Filter     string
	SortBy     string
	Descending bool
	StartIndex int // 1-based
	Count      int
	Attributes []string
	Excluded   []string

	// unbounded: an operator's listing (Find), which runs to the end however long it takes.
	unbounded bool
}

// Page is one page of a query's results, each resource already encoded.
type Page struct {
	Total     int
	Resources [][]byte
}

// hit is a matching record, with its sort key when the query sorts.
type hit struct {
	k   *Kind
	id  string
	key any
}

// Query answers q across kinds (one kind for /Users, all for a root query) in one read
// transaction, rendering resources under base.
func (s *Service) Query(ctx context.Context, tenant string, kinds []*Kind, q Query, base string) (Page, error) {
	type prepared struct {
		k       *Kind
		expr    filter.Expression
		sort    *attrRef
		lookups *lookupPlan // nil: no index answers the filter
	}
	q.StartIndex = max(q.StartIndex, 1)
	q.Count = max(q.Count, 0)
	var preps []prepared
	for _, k := range kinds {
		p := prepared{k: k}
		if f := strings.TrimSpace(q.Filter); f != "" {
			e, err := k.parseFilter(f)
			if err != nil {
				if len(kinds) > 1 {
					continue // across kinds, a filter applies to the kinds whose schemas it fits
				}
				return Page{}, err
			}
			p.expr, p.lookups = e, k.plan(e)
		}
		if q.SortBy != "" {
			urn, name, sub := k.splitPath(q.SortBy)
			ref, ok := k.resolve(urn, name, sub)
			if !ok {
				if len(kinds) == 1 {
					return Page{}, invalid("invalidValue", "sortBy names an unknown attribute")
				}
			} else {
				p.sort = &ref
			}
		}
		preps = append(preps, p)
	}
	if len(preps) == 0 {
		return Page{}, invalidFilter("the filter fits none of the resource types")
	}
	// The common case, a plain page through one kind, reads only that page; sorted by the
	// unique name alone, the name index is that order already. Anything else reads every
	// candidate an index gives, or every record, and is bounded.
	plain := len(preps) == 1 && preps[0].expr == nil && q.SortBy == ""
	byName := len(preps) == 1 && preps[0].expr == nil && preps[0].sort != nil && preps[0].k.sortsByName(*preps[0].sort)
	var work *budget
	if !plain && !byName && !q.unbounded {
		if slices.ContainsFunc(preps, func(p prepared) bool { return p.lookups == nil }) {
			release, err := s.admitScan(ctx)
			if err != nil {
				return Page{}, err
			}
			defer release()
		}
		work = newBudget(ctx, s.opts.ScanTimeout)
	}
	var pg Page
	err := s.read(ctx, tenant, func(tx storage.Tx) error {
		pg = Page{}
		if plain {
			return s.plainPage(tx, preps[0].k, q, base, &pg)
		}
		if byName {
			return s.namePage(tx, preps[0].k, q, base, &pg)
		}
		var hits []hit
		for _, p := range preps {
			err := s.matches(tx, p.k, p.expr, p.lookups, p.sort != nil, base, work, func(rec storage.Record, m map[string]any) {
				h := hit{k: p.k, id: rec.ID}
				if p.sort != nil {
					h.key = sortKey(*p.sort, m)
				}
				hits = append(hits, h)
			})
			if err != nil {
				return err
			}
		}
		if q.SortBy != "" {
			sortHits(hits, q.Descending)
		}
		pg.Total = len(hits)
		from := min(q.StartIndex-1, len(hits))
		to := from + min(q.Count, len(hits)-from)
		for _, h := range hits[from:to] {
			rec, err := h.k.get(tx, h.id)
			if err != nil {
				return err
			}
			raw, err := s.renderBytes(tx, h.k, rec, base, h.k.parseProjection(q.Attributes, q.Excluded))
			if err != nil {
				return err
			}
			pg.Resources = append(pg.Resources, raw)
		}
		return nil
	})
	if err == errTooMany || err == errClientGone {
		s.scanStopped(err)
	}
	return pg, err
}

// namePage serves an unfiltered page sorted by the kind's unique name from its index, reading
// only the page: every record has a name and no two compare equal, so the index order is the
// order sortHits gives.
func (s *Service) namePage(tx storage.Tx, k *Kind, q Query, base string, pg *Page) error {
	pg.Total = tx.Count(k.Collection)
	if q.Count == 0 {
		return nil
	}
	proj := k.parseProjection(q.Attributes, q.Excluded)
	return tx.ScanIndex(k.Collection, k.nameAttr, q.Descending, q.StartIndex-1, func(id string) (bool, error) {
		rec, err := k.get(tx, id)
		if err != nil {
			return false, err
		}
		raw, err := s.renderBytes(tx, k, rec, base, proj)
		if err != nil {
			return false, err
		}
		pg.Resources = append(pg.Resources, raw)
		return len(pg.Resources) < q.Count, nil
	})
}

// plainPage serves an unfiltered, unsorted page. Identity providers walk such pages in order
// (startIndex 1, 101, 201, …): where each page starts is remembered, so the next page, or the
// same page again, starts there instead of stepping over every record before it.
func (s *Service) plainPage(tx storage.Tx, k *Kind, q Query, base string, pg *Page) error {
	pg.Total = tx.Count(k.Collection)
	if q.Count == 0 {
		return nil
	}
	key := pageKey{tenant: tx.Tenant(), kind: k.Name, deletes: tx.Deletes(k.Collection), startIndex: q.StartIndex}
	from := storage.Position{Offset: q.StartIndex - 1, Want: q.Count + 1} // the page, and the next one's start
	if id, ok := s.pages.get(key); ok {
		from.From, from.Offset = id, 0
	}
	proj := k.parseProjection(q.Attributes, q.Excluded)
	first, next := "", ""
	err := tx.Scan(k.Collection, from, func(rec storage.Record) (bool, error) {
		if len(pg.Resources) == q.Count {
			next = rec.ID // the start of the next page
			return false, nil
		}
		raw, err := s.renderBytes(tx, k, rec, base, proj)
		if err != nil {
			return false, err
		}
		pg.Resources = append(pg.Resources, raw)
		if first == "" {
			first = rec.ID
		}
		return true, nil
	})
	if err != nil || first == "" {
		return err
	}
	s.pages.put(key, first)
	if next != "" {
		key.startIndex += len(pg.Resources)
		s.pages.put(key, next)
	}
	return nil
}

// matches calls fn for every record of k that passes expr, in id order. Lookups identity
// providers make on every sync are answered from an index (lookups); anything else scans.
// The rendered resource is passed along when the filter or the sort (withMap) needed it.
// Every record read is spent from work.
func (s *Service) matches(tx storage.Tx, k *Kind, expr filter.Expression, lookups *lookupPlan, withMap bool,
	base string, work *budget, fn func(storage.Record, map[string]any)) error {
	ev := evaluator{k: k}
	proj := filterProjection(k, expr)
	check := func(rec storage.Record) error {
		if err := work.spend(); err != nil {
			return err
		}
		if expr == nil && !withMap {
			fn(rec, nil)
			return nil
		}
		if k.hasMembers {
			ev.isMember = func(id string) bool { _, ok, _ := tx.Member(rec.ID, id); return ok }
		}
		m, err := s.render(tx, k, rec, base, proj)
		if err != nil {
			return err
		}
		if expr == nil || ev.match(expr, m) {
			fn(rec, m)
		}
		return nil
	}
	if lookups != nil {
		ids, err := lookups.ids(tx, k)
		if err != nil {
			return err
		}
		if _, single := expr.(*filter.AttributeExpression); single && !withMap {
			// A lone indexed comparison: the index holds exactly the matches (its folding
			// follows the attribute's caseExact), so there is nothing left to evaluate.
			expr = nil
		}
		for _, id := range ids {
			rec, err := tx.Get(k.Collection, id)
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
	return tx.Scan(k.Collection, storage.Position{}, func(rec storage.Record) (bool, error) { return true, check(rec) })
}

// filterProjection renders what a filter needs: related data only when the filter names it.
func filterProjection(k *Kind, expr filter.Expression) projection {
	var skip []string
	if !mentions(expr, k.related) {
		skip = append(skip, k.related)
	}
	return k.parseProjection(nil, skip)
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

// Find returns the resources of kind k that match filter (SCIM filter syntax; empty for all),
// in the order a list finds them, at most limit of them (0 for no limit), each rendered under
// base: what an operator's command lists. An unusable filter is Invalid with type invalidFilter.
func (s *Service) Find(ctx context.Context, tenant string, k *Kind, filter string, limit int, base string) ([]map[string]any, error) {
	count := limit
	if count <= 0 {
		count = math.MaxInt
	}
	pg, err := s.Query(ctx, tenant, []*Kind{k}, Query{Filter: filter, StartIndex: 1, Count: count, unbounded: true}, base)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(pg.Resources))
	for _, raw := range pg.Resources {
		m, err := storage.DecodeDoc(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
