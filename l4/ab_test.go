package l4

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/bpf"
)

// BenchmarkXDPAB compares variants of the balancer object in one run,
// interleaved, so that noise from other work on the machine hits every
// variant alike. PORTCULLIS_AB="name=path.o,name2=path2.o" ("cur" for
// the embedded object); PORTCULLIS_AB_PATHS selects paths (the encap*
// paths, issue #11's ipip VIPs, are not in the default set).
//
//	PORTCULLIS_AB=cur,x=/tmp/x.o go test ./l4/ -run '^$' -bench XDPAB -benchtime 1x
func BenchmarkXDPAB(b *testing.B) {
	requireBPF(b)
	list := os.Getenv("PORTCULLIS_AB")
	if list == "" {
		b.Skip("PORTCULLIS_AB not set")
	}
	type variant struct {
		name, path string
		ct, rate   uint32
	}
	var vs []variant
	for _, f := range strings.Split(list, ",") {
		n, p, _ := strings.Cut(f, "=")
		p, rate, _ := strings.Cut(p, "!")
		p, sz, _ := strings.Cut(p, "@")
		v := variant{name: n, path: p, ct: benchCTSize, rate: NoSYNFloodGuard}
		if rate != "" {
			fmt.Sscan(rate, &v.rate)
		}
		if sz != "" {
			fmt.Sscan(sz, &v.ct)
		}
		vs = append(vs, v)
	}
	paths := []string{"nonvip", "est64", "est4096", "new4", "new6", "newudp", "estudp", "quic", "new4full"}
	if p := os.Getenv("PORTCULLIS_AB_PATHS"); p != "" {
		paths = strings.Split(p, ",")
	}
	rounds, batch := 40, 500
	fmt.Sscan(os.Getenv("PORTCULLIS_AB_ROUNDS"), &rounds)
	fmt.Sscan(os.Getenv("PORTCULLIS_AB_BATCH"), &batch)

	var floor bpf.PassObjects
	if err := bpf.LoadPassObjects(&floor, nil); err != nil {
		b.Fatal(err)
	}
	defer floor.Close()

	load := func(v variant, path string) *env {
		old := loadLBSpec
		defer func() { loadLBSpec = old }()
		if v.path != "" {
			loadLBSpec = func() (*ebpf.CollectionSpec, error) { return ebpf.LoadCollectionSpec(v.path) }
		}
		cfg, svcs := fixtureConfig(), fixtureServices()
		if strings.HasPrefix(path, "encap") {
			// ipip VIPs (issue #11); objects without the mode drop them.
			cfg, svcs = encapConfig(), encapServices()
		}
		cfg.ConntrackSize = v.ct
		cfg.SYNFloodRate = v.rate
		return newEnv(b, cfg, svcs)
	}
	tm := func(durs []time.Duration) (float64, float64) {
		slices.Sort(durs)
		mid := durs[len(durs)/10 : len(durs)*9/10]
		var sum time.Duration
		for _, d := range mid {
			sum += d
		}
		return float64(durs[len(durs)/2].Nanoseconds()), float64(sum.Nanoseconds()) / float64(len(mid))
	}
	for b.Loop() {
		for _, path := range paths {
			// Per variant: a packet source; index 0 is the floor.
			type runner struct {
				name string
				prog *ebpf.Program
				next func() []byte
				durs []time.Duration
			}
			var rs []*runner
			mk := func(name string, prog *ebpf.Program, e *env) *runner {
				var next func() []byte
				ctr := 0
				pre := func(n int, f func(i int) []byte) func() []byte {
					ps := make([][]byte, n)
					for i := range ps {
						ps[i] = f(i)
					}
					return func() []byte { ctr++; return ps[ctr%n] }
				}
				fresh := func(f func(i int) []byte) func() []byte {
					return func() []byte { ctr++; return f(ctr) }
				}
				switch path {
				case "nonvip":
					next = pre(4096, func(i int) []byte {
						return flowPacket(i, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i%100)}), 443, 6, ack)
					})
				case "est64", "est4096":
					n := 64
					if path == "est4096" {
						n = 4096
					}
					if e != nil {
						for i := range n {
							e.run(flowPacket(i, vipWeb4, 80, 6, syn))
						}
					}
					next = pre(n, func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, ack) })
				case "estudp":
					if e != nil {
						for i := range 4096 {
							e.run(flowPacket(i, vipWeb4, 53, 17, 0))
						}
					}
					next = pre(4096, func(i int) []byte { return flowPacket(i, vipWeb4, 53, 17, 0) })
				case "new4", "new4full":
					if e != nil && path == "new4full" {
						// Fill the table past capacity: every insert evicts.
						for i := range int(benchCTSize) + 4096 {
							e.run(flowPacket(1<<23+i, vipWeb4, 80, 6, syn))
						}
					}
					next = fresh(func(i int) []byte { return flowPacket(i, vipWeb4, 80, 6, syn) })
				case "encapest64", "encapest4096", "encapest6":
					v6 := path == "encapest6"
					n := 4096
					if path == "encapest64" {
						n = 64
					}
					mkp := func(i int, flags uint8) []byte {
						if v6 {
							return flowPacket6(i, vipIPIP6, 443, flags)
						}
						return flowPacket(i, vipIPIP4, 80, 6, flags)
					}
					if e != nil {
						for i := range n {
							e.run(mkp(i, syn))
						}
					}
					next = pre(n, func(i int) []byte { return mkp(i, ack) })
				case "encapgueest":
					if e != nil {
						for i := range 4096 {
							e.run(flowPacket(i, vipGUE4, 80, 6, syn))
						}
					}
					next = pre(4096, func(i int) []byte { return flowPacket(i, vipGUE4, 80, 6, ack) })
				case "encapguenew":
					next = fresh(func(i int) []byte { return flowPacket(i, vipGUE4, 80, 6, syn) })
				case "encapnew4":
					next = fresh(func(i int) []byte { return flowPacket(i, vipIPIP4, 80, 6, syn) })
				case "encapnew6":
					next = fresh(func(i int) []byte { return flowPacket6(i, vipIPIP6, 443, syn) })
				case "new6":
					next = fresh(func(i int) []byte { return flowPacket6(i, vipWeb6, 443, syn) })
				case "newudp":
					next = fresh(func(i int) []byte { return flowPacket(i, vipWeb4, 53, 17, 0) })
				case "quic":
					next = pre(4096, func(i int) []byte {
						src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
						return udp4(vipQUIC, uint16(1024+i), 443, quicShort(2)).withSrc(src).build()
					})
				default:
					b.Fatalf("unknown path %q", path)
				}
				return &runner{name: name, prog: prog, next: next}
			}
			rs = append(rs, mk("floor", floor.XdpPass, nil))
			for _, v := range vs {
				e := load(v, path)
				rs = append(rs, mk(v.name, e.d.objs.XdpLb, e))
			}
			for round := range rounds {
				// Rotate the order so no variant always runs right after
				// the same other one.
				for j := range rs {
					r := rs[(j+round)%len(rs)]
					for range batch {
						_, d, err := r.prog.Benchmark(r.next(), 1, nil)
						if err != nil {
							b.Fatal(err)
						}
						r.durs = append(r.durs, d)
					}
				}
			}
			_, fl := tm(rs[0].durs)
			for _, r := range rs {
				med, t := tm(r.durs)
				fmt.Printf("%-9s %-10s median %4.0f  tmean %6.1f  above-floor %6.1f\n", path, r.name, med, t, t-fl)
			}
		}
	}
}
