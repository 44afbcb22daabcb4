package daemon

import (
	"math"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/l7"
)

func TestQuantileInterpolatesWithinTheBucket(t *testing.T) {
	bounds := l7.DurationBuckets()
	b := make([]uint64, len(bounds)+1)
	b[2] = 100 // all between bounds[1] and bounds[2]
	got := quantile(b, bounds, 100, 0.5)
	want := bounds[1] + (bounds[2]-bounds[1])*0.5
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("p50 = %v, want %v", got, want)
	}
	b[2], b[len(b)-1] = 0, 10 // only +Inf: report its lower bound
	if got := quantile(b, bounds, 10, 0.99); got != bounds[len(bounds)-1] {
		t.Fatalf("+Inf p99 = %v", got)
	}
}

func TestTheRouteWindowCountsOnlyRecentRequests(t *testing.T) {
	var w routeWindow
	bounds := l7.DurationBuckets()
	mk := func(slowCount, fastCount uint64) []l7.RouteCounters {
		rc := l7.RouteCounters{Name: "r", Requests: slowCount + fastCount}
		rc.Buckets[0] = fastCount
		rc.Buckets[len(bounds)-1] = slowCount
		return []l7.RouteCounters{rc}
	}
	t0 := time.Unix(1000, 0)
	// The first poll sees everything since start: 100 slow requests.
	if r := w.stats(t0, mk(100, 0), nil); r[0].P50MS < bounds[len(bounds)-2]*1000 {
		t.Fatalf("first poll p50 = %v ms, want the slow bucket", r[0].P50MS)
	}
	// Fifteen seconds later only fast requests were added: the window
	// (about ten seconds) must not see the old slow ones.
	for i := 1; i <= 15; i++ {
		w.stats(t0.Add(time.Duration(i)*time.Second), mk(100, uint64(i*10)), nil)
	}
	r := w.stats(t0.Add(16*time.Second), mk(100, 160), nil)
	if r[0].P99MS > bounds[0]*1000 {
		t.Fatalf("p99 = %v ms includes requests older than the window", r[0].P99MS)
	}
	if r[0].Requests != 260 {
		t.Fatalf("requests = %d, want the cumulative 260", r[0].Requests)
	}
}
