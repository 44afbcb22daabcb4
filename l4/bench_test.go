package l4

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/internal/xdpbench"
)

// Benchmarks follow LAB.md: one BPF_PROG_TEST_RUN per distinct packet
// (Repeat 1), so a new flow is really new and an established one really
// established, and the kernel-reported duration's median is reported as
// ns/pkt. The empty program measured the same way (BenchmarkXDPFloor) is
// the method's own cost; compare paths above it.
//
//	go test ./l4/ -run '^$' -bench XDP -benchtime 20000x

func runMedian(b *testing.B, prog *ebpf.Program, next func(i int) []byte) {
	b.Helper()
	durs := xdpbench.RunMedian(b, prog, next)
	b.ReportMetric(float64(durs[len(durs)*9/10].Nanoseconds()), "p90-ns/pkt")
}

func benchEnv(b *testing.B) *env {
	return benchEnvGuard(b, NoSYNFloodGuard)
}

// benchEnvGuard sets the SYN flood guard: NoSYNFloodGuard makes every SYN
// insert (the new-flow cost), 1 makes nearly every SYN skip the insert
// (the cost under a flood, and what Katran measures at these rates).
func benchEnvGuard(b *testing.B, synRate uint32) *env {
	return benchEnvOf(b, fixtureConfig(), fixtureServices(), synRate)
}

// benchEnvOf is an env for cfg and svcs with the benchmarks' conntrack
// size and the SYN flood guard at synRate.
func benchEnvOf(b *testing.B, cfg Config, svcs []Service, synRate uint32) *env {
	cfg.ConntrackSize = benchCTSize
	cfg.SYNFloodRate = synRate
	return newEnv(b, cfg, svcs)
}

// newFlowModes are the two costs of a SYN: with its conntrack insert, and
// past the flood guard's rate.
var newFlowModes = []struct {
	name string
	rate uint32
}{{"insert", NoSYNFloodGuard}, {"flood", 1}}

// flowPacket is flow i of a large set of distinct clients.
func flowPacket(i int, dst netip.Addr, dport uint16, proto uint8, flags uint8) []byte {
	src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return pkt{src: src, dst: dst, proto: proto, sport: uint16(1024 + i%60000), dport: dport, tcpFlags: flags, payload: make([]byte, 64)}.build()
}

func flowPacket6(i int, dst netip.Addr, dport uint16, flags uint8) []byte {
	src := netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 0xc, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	return pkt{src: src, dst: dst, proto: 6, sport: uint16(1024 + i%60000), dport: dport, tcpFlags: flags, payload: make([]byte, 64)}.build()
}

func prebuilt(n int, f func(i int) []byte) func(int) []byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = f(i)
	}
	return func(i int) []byte { return ps[i%n] }
}

func BenchmarkXDPFloor(b *testing.B) {
	requireBPF(b)
	var objs bpf.PassObjects
	if err := bpf.LoadPassObjects(&objs, nil); err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	runMedian(b, objs.XdpPass, prebuilt(4096, func(i int) []byte { return flowPacket(i, other4, 80, 6, ack) }))
}

func BenchmarkXDPNonVIP(b *testing.B) {
	e := benchEnv(b)
	runMedian(b, e.d.objs.XdpLb, prebuilt(4096, func(i int) []byte {
		dst := netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i%100)})
		return flowPacket(i, dst, 443, 6, ack)
	}))
}

// BenchmarkXDPNewFlow: the first packet of flows not in the table, into
// a table far from full (as when it is sized for its load). FullTable:
// into a full table, where every insert evicts.
func BenchmarkXDPNewFlow(b *testing.B) {
	runNewFlowModes(b, benchEnvGuard, func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, syn) })
}

// runNewFlowModes measures next, the first packets of new flows, in an
// env from newEnv under each of newFlowModes.
func runNewFlowModes(b *testing.B, newEnv func(b *testing.B, synRate uint32) *env, next func(i int) []byte) {
	for _, m := range newFlowModes {
		b.Run(m.name, func(b *testing.B) {
			runMedian(b, newEnv(b, m.rate).d.objs.XdpLb, next)
		})
	}
}

// runEstablished opens flows flows with open(i), then measures next(i),
// prebuilt, over them.
func runEstablished(b *testing.B, e *env, flows int, open, next func(i int) []byte) {
	for i := range flows {
		e.run(open(i))
	}
	runMedian(b, e.d.objs.XdpLb, prebuilt(flows, next))
}

func BenchmarkXDPNewFlowFullTable(b *testing.B) {
	e := benchEnv(b)
	for i := range int(benchCTSize) + 4096 {
		e.run(flowPacket(1<<23+i, vipWeb4, 80, 6, syn))
	}
	runMedian(b, e.d.objs.XdpLb, func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, syn) })
}

func BenchmarkXDPNewFlowUDP(b *testing.B) {
	e := benchEnv(b)
	runMedian(b, e.d.objs.XdpLb, func(i int) []byte { return flowPacket(i, vipWeb4, 53, 17, 0) })
}

// BenchmarkXDPEstablished measures packets of open flows: 4096 flows
// (thousands, per LAB.md), and 64 flows whose conntrack entries stay in
// cache, which separates the program's cost from DRAM latency.
func BenchmarkXDPEstablished(b *testing.B) {
	for _, flows := range []int{4096, 64} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			runEstablished(b, benchEnv(b), flows,
				func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, syn) },
				func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, ack) })
		})
	}
}

func BenchmarkXDPNewFlowIPv6(b *testing.B) {
	runNewFlowModes(b, benchEnvGuard, func(i int) []byte { return flowPacket6(i, vipWeb6, 443, syn) })
}

func BenchmarkXDPEstablishedIPv6(b *testing.B) {
	runEstablished(b, benchEnv(b), 4096,
		func(i int) []byte { return flowPacket6(i, vipWeb6, 443, syn) },
		func(i int) []byte { return flowPacket6(i, vipWeb6, 443, ack) })
}

func BenchmarkXDPEstablishedUDP(b *testing.B) {
	udp := func(i int) []byte { return flowPacket(i, vipWeb4, 53, 17, 0) }
	runEstablished(b, benchEnv(b), 4096, udp, udp)
}

func BenchmarkXDPQUICRouted(b *testing.B) {
	e := benchEnv(b)
	runMedian(b, e.d.objs.XdpLb, prebuilt(4096, func(i int) []byte {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		return udp4(vipQUIC, uint16(1024+i), 443, quicShort(2)).withSrc(src).build()
	}))
}

// benchCTSize is the conntrack capacity of the benchmarks: the default
// (DefaultConntrackSize), so new flows pay the cache misses of a table
// that does not fit in cache, as in production.
var benchCTSize uint32 = DefaultConntrackSize
