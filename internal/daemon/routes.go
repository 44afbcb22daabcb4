package daemon

import (
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/l7"
)

// routeWindow turns the proxy's cumulative per-route histograms into the
// dashboard's "latency now": p50/p99 over roughly the last 10 seconds,
// from the difference between now and a snapshot that old. Snapshots are
// taken on dashboard polls (at most one a second), so nothing runs when
// nobody looks.
type routeWindow struct {
	mu    sync.Mutex
	snaps []routeSnap
}

type routeSnap struct {
	at     time.Time
	routes map[string]l7.RouteCounters
}

const routeWindowSpan = 10 * time.Second

func (w *routeWindow) stats(now time.Time, cur []l7.RouteCounters, pools map[string]string) []dashboard.Route {
	w.mu.Lock()
	defer w.mu.Unlock()
	snap := routeSnap{at: now, routes: make(map[string]l7.RouteCounters, len(cur))}
	for _, rc := range cur {
		snap.routes[rc.Name] = rc
	}
	// Keep one snapshot older than the span as the baseline. With no older
	// snapshot yet (the first poll), the window is everything since start.
	for len(w.snaps) > 1 && now.Sub(w.snaps[1].at) >= routeWindowSpan {
		w.snaps = w.snaps[1:]
	}
	var base map[string]l7.RouteCounters
	if len(w.snaps) > 0 {
		base = w.snaps[0].routes
	}
	if len(w.snaps) == 0 || now.Sub(w.snaps[len(w.snaps)-1].at) >= time.Second {
		w.snaps = append(w.snaps, snap)
	}
	bounds := l7.DurationBuckets()
	out := make([]dashboard.Route, 0, len(cur))
	for _, rc := range cur {
		r := dashboard.Route{Name: rc.Name, Pool: pools[rc.Name], Requests: rc.Requests, Errors: rc.Errors5xx}
		var delta [len(rc.Buckets)]uint64
		old, ok := base[rc.Name]
		var n uint64
		for i := range rc.Buckets {
			delta[i] = rc.Buckets[i]
			if ok && old.Buckets[i] <= rc.Buckets[i] {
				delta[i] -= old.Buckets[i]
			}
			n += delta[i]
		}
		if n > 0 {
			r.P50MS = quantile(delta[:], bounds, n, 0.50) * 1000
			r.P99MS = quantile(delta[:], bounds, n, 0.99) * 1000
		}
		out = append(out, r)
	}
	return out
}

// quantile interpolates linearly within the bucket that holds rank q, as
// Prometheus's histogram_quantile does; the +Inf bucket reports its lower
// bound.
func quantile(buckets []uint64, bounds []float64, n uint64, q float64) float64 {
	rank := q * float64(n)
	var seen float64
	for i, c := range buckets {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			if i >= len(bounds) {
				return lo
			}
			return lo + (bounds[i]-lo)*(rank-seen)/float64(c)
		}
		seen += float64(c)
	}
	return bounds[len(bounds)-1]
}
