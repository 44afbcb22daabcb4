package config

import (
	"fmt"
	"strconv"
	"strings"
)

// validateCaches checks the routes' cache settings.
func (v *validator) validateCaches() {
	for i, r := range v.c.L7.Routes {
		c := r.Cache
		if c == nil {
			continue
		}
		p := fmt.Sprintf("l7.routes[%d].cache", i)
		if c.MaxBytes < 4096 {
			v.errorf(p+".max_bytes", "max_bytes %d is too small (at least 4096)", c.MaxBytes)
		}
		if c.MaxEntryBytes <= 0 || c.MaxEntryBytes > c.MaxBytes/2 {
			v.errorf(p+".max_entry_bytes", "max_entry_bytes %d: use 1 to max_bytes / 2 (%d)", c.MaxEntryBytes, c.MaxBytes/2)
		}
		if c.Heuristic != "" {
			if _, err := ParseCacheHeuristic(c.Heuristic); err != nil {
				v.errorf(p+".heuristic", "%v", err)
			}
		}
		for _, d := range []struct {
			key string
			d   Duration
		}{{"heuristic_max", c.HeuristicMax}, {"stale_while_revalidate", c.StaleWhileRevalidate}, {"stale_if_error", c.StaleIfError}, {"coalesce_timeout", c.CoalesceTimeout}} {
			if d.d < 0 {
				v.errorf(p+"."+d.key, "%s must not be negative", d.key)
			}
		}
	}
}

// ParseCacheHeuristic reads cache.heuristic ("10%") as a fraction (0.1).
func ParseCacheHeuristic(s string) (float64, error) {
	n, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if !ok || err != nil || f <= 0 || f > 100 {
		return 0, fmt.Errorf("heuristic %q: write a percentage above 0 and at most 100, e.g. \"10%%\"", s)
	}
	return f / 100, nil
}
