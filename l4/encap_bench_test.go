package l4

import (
	"net/netip"
	"testing"
)

// Encapsulation benchmarks (issue #11), measured as bench_test.go's: one
// run per distinct packet, so each packet is encapsulated once and a new
// flow is new. Compare with BenchmarkXDPFloor, and with the dsr-l2 paths
// (BenchmarkXDPNewFlow/insert, BenchmarkXDPEstablished) for the cost of
// the outer header alone.
//
//	go test ./l4/ -run '^$' -bench 'XDPEncap|XDPFloor' -benchtime 20000x

func encapBenchEnv(b *testing.B, synRate uint32) *env {
	return benchEnvOf(b, encapConfig(), encapServices(), synRate)
}

// BenchmarkXDPEncapNewFlow: with the conntrack insert, and past the SYN
// flood guard (no insert), which is what Katran's new-flow figure
// measures (see docs/benchmarks.md).
func BenchmarkXDPEncapNewFlow(b *testing.B) {
	runNewFlowModes(b, encapBenchEnv, func(i int) []byte { return flowPacket(i, vipIPIP4, 80, 6, syn) })
}

func BenchmarkXDPEncapEstablished(b *testing.B) {
	runEstablished(b, encapBenchEnv(b, NoSYNFloodGuard), 4096,
		func(i int) []byte { return flowPacket(i, vipIPIP4, 80, 6, syn) },
		func(i int) []byte { return flowPacket(i, vipIPIP4, 80, 6, ack) })
}

func BenchmarkXDPEncapNewFlowIPv6(b *testing.B) {
	runNewFlowModes(b, encapBenchEnv, func(i int) []byte { return flowPacket6(i, vipIPIP6, 443, syn) })
}

func BenchmarkXDPEncapEstablishedIPv6(b *testing.B) {
	runEstablished(b, encapBenchEnv(b, NoSYNFloodGuard), 4096,
		func(i int) []byte { return flowPacket6(i, vipIPIP6, 443, syn) },
		func(i int) []byte { return flowPacket6(i, vipIPIP6, 443, ack) })
}

// BenchmarkXDPEncapTooBig: the ICMP answer to a packet too big to
// encapsulate (established flows, so only the answer's cost is added).
func BenchmarkXDPEncapTooBig(b *testing.B) {
	runEstablished(b, encapBenchEnv(b, NoSYNFloodGuard), 4096,
		func(i int) []byte { return flowPacket(i, vipIPIP4, 80, 6, syn) },
		func(i int) []byte {
			src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			return pkt{src: src, dst: vipIPIP4, proto: 6, sport: uint16(1024 + i%60000), dport: 80, tcpFlags: ack, payload: make([]byte, 1400)}.build()
		})
}
