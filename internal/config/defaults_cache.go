package config

import "time"

// Route cache defaults.
const (
	DefaultCacheMaxBytes        = 64 << 20
	DefaultCacheMaxEntryBytes   = 1 << 20
	DefaultCacheHeuristicMax    = 24 * time.Hour
	DefaultCacheCoalesceTimeout = 5 * time.Second
)

func (r *Route) setCacheDefaults() {
	c := r.Cache
	if c == nil {
		return
	}
	def(&c.MaxBytes, DefaultCacheMaxBytes)
	def(&c.MaxEntryBytes, min(DefaultCacheMaxEntryBytes, c.MaxBytes/2))
	def(&c.HeuristicMax, Duration(DefaultCacheHeuristicMax))
	def(&c.CoalesceTimeout, Duration(DefaultCacheCoalesceTimeout))
}
