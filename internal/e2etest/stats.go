package e2etest

import (
	"fmt"
	"time"
)

// Median of durations sorted ascending (the mean of the middle two for an
// even count). The benchmarks' tables use it.
func Median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// MS formats d as whole milliseconds ("231ms"), as the benchmark tables do.
func MS(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
