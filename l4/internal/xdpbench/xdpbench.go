// Package xdpbench is the benchmark method shared by l4 and l4/decap
// (LAB.md): one BPF_PROG_TEST_RUN per distinct packet (Repeat 1), the
// kernel-reported duration's median reported as ns/pkt.
package xdpbench

import (
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// RunMedian runs prog once on next(i) per iteration and reports the
// median (ns/pkt) and the mean of the middle 80% (tmean-ns/pkt). It
// returns the durations, sorted, for further metrics.
func RunMedian(b *testing.B, prog *ebpf.Program, next func(i int) []byte) []time.Duration {
	b.Helper()
	durs := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		_, d, err := prog.Benchmark(next(i), 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		durs = append(durs, d)
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "ns/pkt")
	// The kernel's clock is coarse (10 ns steps here), so the median
	// moves in steps; the mean of the middle 80% resolves smaller changes.
	var sum time.Duration
	mid := durs[len(durs)/10 : len(durs)*9/10]
	for _, d := range mid {
		sum += d
	}
	if len(mid) > 0 {
		b.ReportMetric(float64(sum.Nanoseconds())/float64(len(mid)), "tmean-ns/pkt")
	}
	return durs
}
