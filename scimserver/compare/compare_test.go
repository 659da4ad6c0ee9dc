package compare

import (
	"encoding/json"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

func TestValues(t *testing.T) {
	for _, c := range []struct {
		typ       string
		caseExact bool
		op        filter.CompareOperator
		v, want   any
		result    bool
		ok        bool
	}{
		{"string", false, filter.EQ, "Alice@Example.com", "alice@example.COM", true, true},
		{"string", true, filter.EQ, "Alice", "alice", false, true},
		{"string", true, filter.NE, "Alice", "alice", true, true},
		{"string", false, filter.CO, "Engineering", "GINE", true, true},
		{"string", false, filter.SW, "Engineering", "eng", true, true},
		{"string", false, filter.EW, "Engineering", "RING", true, true},
		{"string", false, filter.EW, "Engineering", "eng", false, true},
		{"string", false, filter.GT, "b", "A", true, true},
		{"string", false, filter.LE, "a", "A", true, true},
		{"string", false, filter.EQ, nil, "a", false, false},
		{"string", false, filter.EQ, json.Number("1"), "1", false, false},
		{"boolean", false, filter.EQ, true, true, true, true},
		{"boolean", false, filter.NE, true, false, true, true},
		{"boolean", false, filter.EQ, "true", true, false, false},
		{"boolean", false, filter.CO, true, true, false, true},
		{"integer", false, filter.GT, json.Number("10"), json.Number("9"), true, true},
		{"integer", false, filter.EQ, int64(3), json.Number("3"), true, true},
		{"decimal", false, filter.LT, 1.5, json.Number("2"), true, true},
		{"decimal", false, filter.GE, json.Number("2.0"), 2, true, true},
		{"integer", false, filter.EQ, "3", json.Number("3"), false, false},
		{"integer", false, filter.EQ, json.Number("x"), json.Number("3"), false, false},
		{"dateTime", false, filter.EQ, "2026-01-01T01:00:00+01:00", "2026-01-01T00:00:00Z", true, true},
		{"dateTime", false, filter.GT, "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00Z", true, true},
		{"dateTime", false, filter.LT, "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z", true, true},
		{"dateTime", false, filter.SW, "2026-01-01T00:00:00Z", "2026-01", true, true},
		{"dateTime", false, filter.GT, "2026-01-01T00:30:00.000Z", "2026-01-01T01:00:00.1000000001+01:00", true, true},
		{"dateTime", false, filter.EQ, "2026-01-01T00:00:00.1000000001Z", "2026-01-01T01:00:00.1+01:00", true, true},
		{"reference", true, filter.EQ, "https://x/Users/1", "https://x/Users/1", true, true},
	} {
		result, ok := Values(c.typ, c.caseExact, c.op, c.v, c.want)
		if result != c.result || ok != c.ok {
			t.Errorf("%s (caseExact %t) %v %s %v: got %t %t, want %t %t", c.typ, c.caseExact, c.v, c.op, c.want, result, ok, c.result, c.ok)
		}
	}
}
