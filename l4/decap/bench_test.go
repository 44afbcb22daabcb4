package decap

import (
	"net/netip"
	"testing"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/internal/xdpbench"
)

// Decap cost, measured as l4's benchmarks are (../shared/LAB.md): one
// BPF_PROG_TEST_RUN per distinct packet, the kernel's duration, median
// and trimmed mean; BenchmarkDecapFloor is the empty program the same way.
//
//	go test ./l4/decap/ -run '^$' -bench . -benchtime 20000x

// frames are 4096 encapsulated SYNs of distinct flows.
func frames(v6 bool) func(int) []byte {
	const n = 4096
	ps := make([][]byte, n)
	for i := range ps {
		sport := uint16(1024 + i)
		if v6 {
			c := netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 0xc, 14: byte(i >> 8), byte(i)})
			ps[i] = frame(0x86dd, false, ip6(lbSrc6, self6, 41, ip6(c, vip6, 6, tcpSeg(c, vip6, sport))))
		} else {
			c := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			ps[i] = frame(0x0800, false, ip4(lbSrc4, self4, 4, nil, ip4(c, vip4, 6, nil, tcpSeg(c, vip4, sport))))
		}
	}
	return func(i int) []byte { return ps[i%n] }
}

func BenchmarkDecapFloor(b *testing.B) {
	load(b) // skips without root
	var objs bpf.PassObjects
	if err := bpf.LoadPassObjects(&objs, nil); err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	xdpbench.RunMedian(b, objs.XdpPass, frames(false))
}

func BenchmarkDecapIPv4(b *testing.B) {
	p := load(b)
	xdpbench.RunMedian(b, p.objs.XdpDecap, frames(false))
}

func BenchmarkDecapIPv6(b *testing.B) {
	p := load(b)
	xdpbench.RunMedian(b, p.objs.XdpDecap, frames(true))
}

// BenchmarkDecapNotAllowed: an allow-list miss (dropped).
func BenchmarkDecapNotAllowed(b *testing.B) {
	p := load(b)
	next := frames(false)
	xdpbench.RunMedian(b, p.objs.XdpDecap, func(i int) []byte {
		f := append([]byte{}, next(i)...)
		copy(f[14+12:], stranger4.AsSlice())
		return f
	})
}
