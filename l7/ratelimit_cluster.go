package l7

import "github.com/portcullis-lb/portcullis/l7/ratelimit"

// ClusterLimiters returns the generation's cluster-scoped rate limiters
// (rate_limit.scope: cluster) by route name, for the daemon's sync with
// the cluster (ratelimit.Sync). The map is new on every call; the
// limiters are the ones requests use, and they keep their buckets across
// a reload that keeps their limit (Adopt).
func (g *Generation) ClusterLimiters() map[string]*ratelimit.Limiter {
	out := map[string]*ratelimit.Limiter{}
	for name, s := range g.secByName {
		if s.limit != nil && s.limit.Cluster() {
			out[name] = s.limit
		}
	}
	return out
}
