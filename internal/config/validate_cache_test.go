package config

import (
	"testing"
	"time"
)

func TestCacheErrorsNameTheirKeyPath(t *testing.T) {
	tests := []struct {
		name, route, wantPath, wantMsg string
	}{
		{"a tiny budget is refused", "    - {name: x, pool: p, cache: {max_bytes: 100}}\n", "l7.routes[1].cache.max_bytes", "too small"},
		{"an entry may take at most half the budget", "    - {name: x, pool: p, cache: {max_bytes: 8192, max_entry_bytes: 8192}}\n", "l7.routes[1].cache.max_entry_bytes", "max_bytes / 2"},
		{"a heuristic is a percentage", "    - {name: x, pool: p, cache: {heuristic: '0.1'}}\n", "l7.routes[1].cache.heuristic", "percentage"},
		{"a heuristic above 100% is refused", "    - {name: x, pool: p, cache: {heuristic: 150%}}\n", "l7.routes[1].cache.heuristic", "at most 100"},
		{"a negative window is refused", "    - {name: x, pool: p, cache: {stale_if_error: -1s}}\n", "l7.routes[1].cache.stale_if_error", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt(t, "t.yaml", withRoute(tt.route), tt.wantPath, tt.wantMsg, true)
		})
	}
}

func TestCacheDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withRoute("    - {name: x, pool: p, cache: {heuristic: 10%}}\n    - {name: y, pool: p, cache: {max_bytes: 65536}}\n")))
	if err != nil {
		t.Fatal(err)
	}
	x, y := c.L7.Routes[1].Cache, c.L7.Routes[2].Cache
	if x.MaxBytes != DefaultCacheMaxBytes || x.MaxEntryBytes != DefaultCacheMaxEntryBytes || x.HeuristicMax.D() != 24*time.Hour || x.CoalesceTimeout.D() != 5*time.Second {
		t.Errorf("defaults: %+v", x)
	}
	if y.MaxEntryBytes != 32768 {
		t.Errorf("max_entry_bytes of a small cache: %d, want half of max_bytes", y.MaxEntryBytes)
	}
	if f, err := ParseCacheHeuristic(x.Heuristic); err != nil || f != 0.1 {
		t.Errorf("heuristic %v %v", f, err)
	}
}
