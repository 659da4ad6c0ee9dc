package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/scimserver/scimserver/schemas"
	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/strictjson"
)

// queryFromURL reads a list request's parameters (RFC 7644 §3.4.2).
func (s *Server) queryFromURL(r *http.Request) (scimserver.Query, error) {
	v := r.URL.Query()
	q := scimserver.Query{Filter: strings.TrimSpace(v.Get("filter")), SortBy: v.Get("sortBy"),
		Attributes: v["attributes"], Excluded: v["excludedAttributes"]}
	var err error
	if q.StartIndex, err = intParam("startIndex", v.Get("startIndex"), 1); err != nil {
		return q, err
	}
	if q.Count, err = intParam("count", v.Get("count"), defaultPageSize); err != nil {
		return q, err
	}
	if q.Descending, err = sortOrder(v.Get("sortOrder")); err != nil {
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

func (s *Server) clamp(q scimserver.Query) scimserver.Query {
	q.StartIndex = max(q.StartIndex, 1)
	q.Count = min(max(q.Count, 0), s.opts.MaxResults)
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

func (s *Server) queryFromBody(r *http.Request) (scimserver.Query, error) {
	m, err := decodeObject(body(r))
	if err != nil {
		return scimserver.Query{}, err
	}
	raw, _ := json.Marshal(m)
	var b searchBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return scimserver.Query{}, badRequest("invalidValue", "a search request's fields have the wrong types")
	}
	if !slices.Contains(b.Schemas, schemas.SearchURN) {
		return scimserver.Query{}, badRequest("invalidValue", "a search request must carry the SearchRequest schema")
	}
	q := scimserver.Query{Filter: strings.TrimSpace(b.Filter), SortBy: b.SortBy, Attributes: b.Attributes,
		Excluded: b.ExcludedAttributes, StartIndex: 1, Count: defaultPageSize}
	if b.StartIndex != nil {
		q.StartIndex = *b.StartIndex
	}
	if b.Count != nil {
		q.Count = *b.Count
	}
	if q.Descending, err = sortOrder(b.SortOrder); err != nil {
		return q, err
	}
	return s.clamp(q), nil
}

// decodeObject parses a request body strictly (valid UTF-8, one JSON object, no duplicate
// keys, bounded nesting, numbers kept as written): a refusal is 400 invalidSyntax.
func decodeObject(raw []byte) (map[string]any, error) {
	m, err := strictjson.DecodeObject(raw)
	if err != nil {
		return nil, badRequest("invalidSyntax", err.Error())
	}
	return m, nil
}

func (s *Server) list(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := s.queryFromURL(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.answerList(w, r, []*scimserver.Kind{k}, q)
	}
}

func (s *Server) search(k *scimserver.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := s.queryFromBody(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		s.answerList(w, r, []*scimserver.Kind{k}, q)
	}
}

// rootQuery and rootSearch query every kind together (RFC 7644 §3.4.2.1).
func (s *Server) rootQuery(w http.ResponseWriter, r *http.Request) {
	q, err := s.queryFromURL(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.answerList(w, r, s.svc.Kinds(), q)
}

func (s *Server) rootSearch(w http.ResponseWriter, r *http.Request) {
	q, err := s.queryFromBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.answerList(w, r, s.svc.Kinds(), q)
}

func (s *Server) answerList(w http.ResponseWriter, r *http.Request, kinds []*scimserver.Kind, q scimserver.Query) {
	pg, err := s.svc.Query(r.Context(), tenantOf(r), kinds, q, s.baseURL(r))
	if err != nil {
		writeError(w, r, err)
		return
	}
	b := make([]byte, 0, 256+len(pg.Resources)*1024)
	b = append(b, `{"schemas":["`+schemas.ListURN+`"],"totalResults":`...)
	b = strconv.AppendInt(b, int64(pg.Total), 10)
	b = append(b, `,"startIndex":`...)
	b = strconv.AppendInt(b, int64(q.StartIndex), 10)
	b = append(b, `,"itemsPerPage":`...)
	b = strconv.AppendInt(b, int64(len(pg.Resources)), 10)
	b = append(b, `,"Resources":[`...)
	for i, res := range pg.Resources {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, res...)
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...))
}
