package pgtest

import "testing"

func TestPasses(t *testing.T) {
	for _, c := range []struct {
		engine    string
		profiled  bool
		bolt, pg  bool
		wantError bool
	}{
		{"", false, true, true, false},
		{"", true, true, false, false}, // one profile per process: bbolt's unless named
		{"bolt", false, true, false, false},
		{"bolt", true, true, false, false},
		{"postgres", false, false, true, false},
		{"postgres", true, false, true, false},
		{"sqlite", false, false, false, true},
	} {
		bolt, pg, err := passes(c.engine, c.profiled)
		if bolt != c.bolt || pg != c.pg || (err != nil) != c.wantError {
			t.Errorf("passes(%q, %t) = %t, %t, %v; want %t, %t, error %t", c.engine, c.profiled, bolt, pg, err, c.bolt, c.pg, c.wantError)
		}
	}
}
