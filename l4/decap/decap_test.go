package decap

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/l4/internal/inetsum"
	"github.com/portcullis-lb/portcullis/l4/internal/xdpgolden"
)

var update = flag.Bool("update", false, "rewrite the golden packet files in testdata")

const (
	xdpDrop = 1
	xdpPass = 2
	guePort = 6080
)

// udp is a UDP header to dport (checksum 0, as the balancer sends GUE)
// followed by body.
func udp(dport uint16, body []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], 0xC123)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(body)))
	return append(h, body...)
}

var actionNames = xdpgolden.Actions

var (
	beMAC     = []byte{0x02, 0xbe, 0, 0, 0, 0x01}
	routerMAC = []byte{0x02, 0xee, 0, 0, 0, 0x01}
	lbSrc4    = netip.MustParseAddr("10.255.131.81")
	lbSrc6    = netip.MustParseAddr("fd00:ec::1234")
	stranger4 = netip.MustParseAddr("203.0.113.9")
	stranger6 = netip.MustParseAddr("2001:db8:bad::1")
	self4     = netip.MustParseAddr("10.2.0.1")
	self6     = netip.MustParseAddr("2001:db8:b::1")
	other4    = netip.MustParseAddr("10.2.0.99")
	client4   = netip.MustParseAddr("198.51.100.7")
	client6   = netip.MustParseAddr("2001:db8:c::7")
	vip4      = netip.MustParseAddr("192.0.2.60")
	vip6      = netip.MustParseAddr("2001:db8::60")
)

// The local addresses cover every backend of the l4 encap fixtures, so
// their golden outputs can be fed back through decap.
func testConfig() Config {
	local := []netip.Addr{self6, netip.MustParseAddr("2001:db8:b::2"), netip.MustParseAddr("2001:db8:b::21"), netip.MustParseAddr("2001:db8:b::22")}
	for _, last := range []byte{1, 2, 3, 11, 12, 21, 22} {
		local = append(local, netip.AddrFrom4([4]byte{10, 2, 0, last}))
	}
	return Config{
		Allow:   []netip.Prefix{netip.MustParsePrefix("10.255.0.0/16"), netip.MustParsePrefix("fd00:ec::/112")},
		Local:   local,
		GUEPort: guePort,
	}
}

func load(t testing.TB) *Program {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads the XDP program and runs it with BPF_PROG_TEST_RUN")
	}
	p, err := New(testConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func run(t testing.TB, p *Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+64)
	opts := ebpf.RunOptions{Data: in, DataOut: out, Repeat: 1}
	ret, err := p.objs.XdpDecap.Run(&opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

// tcpSeg is a SYN from sport to 80 with a valid checksum.
func tcpSeg(src, dst netip.Addr, sport uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], 80)
	binary.BigEndian.PutUint32(h[4:], 1000)
	h[12], h[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(h[14:], 65535)
	seg := append(h, "hello"...)
	sum := inetsum.Add(inetsum.Add(0, src.AsSlice()), dst.AsSlice())
	sum += 6 + uint32(len(seg))
	binary.BigEndian.PutUint16(seg[16:], inetsum.Fold(inetsum.Add(sum, seg)))
	return seg
}

// ip4 is an IPv4 packet (options padded to 4 bytes) with a valid checksum.
func ip4(src, dst netip.Addr, proto uint8, opts, body []byte) []byte {
	h := make([]byte, 20+len(opts))
	h[0] = 0x40 | byte(len(h)/4)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(body)))
	h[8], h[9] = 64, proto
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	copy(h[20:], opts)
	binary.BigEndian.PutUint16(h[10:], inetsum.Fold(inetsum.Add(0, h)))
	return append(h, body...)
}

func ip6(src, dst netip.Addr, next uint8, body []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6], h[7] = next, 64
	copy(h[8:], src.AsSlice())
	copy(h[24:], dst.AsSlice())
	return append(h, body...)
}

func frame(etherType uint16, vlan bool, l3 []byte) []byte {
	b := append(append([]byte{}, beMAC...), routerMAC...)
	if vlan {
		b = append(b, 0x81, 0x00, 0x00, 42)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, l3...)
}

func inner4(sport uint16) []byte { return ip4(client4, vip4, 6, nil, tcpSeg(client4, vip4, sport)) }
func inner6(sport uint16) []byte { return ip6(client6, vip6, 6, tcpSeg(client6, vip6, sport)) }

type fixture struct {
	name   string
	in     []byte
	action uint32
	// inner is the frame the kernel must get (the outer IP header
	// gone); nil means the input unchanged.
	inner []byte
	stats map[string]uint64
}

func fixtures() []fixture {
	in4, in6 := inner4(5000), inner6(5001)
	outer4 := ip4(lbSrc4, self4, 4, nil, in4)
	fragged := append([]byte{}, outer4...)
	binary.BigEndian.PutUint16(fragged[6:], 0x2000)
	badIHL := append([]byte{}, outer4...)
	badIHL[0] = 0x44
	hbh := ip6(lbSrc6, self6, 0, append([]byte{41, 0, 1, 4, 0, 0, 0, 0}, in6...))
	dec4 := func(f []byte) map[string]uint64 {
		return map[string]uint64{"decap_v4": 1, "decap_bytes": uint64(len(f))}
	}
	dec6 := func(f []byte) map[string]uint64 {
		return map[string]uint64{"decap_v6": 1, "decap_bytes": uint64(len(f))}
	}
	fx := []fixture{
		{name: "ipv4 in ipv4 from an allowed lb is stripped and passed", in: frame(0x0800, false, outer4), action: xdpPass, inner: frame(0x0800, false, in4)},
		{name: "vlan tagged ipv4 in ipv4 keeps its tag", in: frame(0x0800, true, outer4), action: xdpPass, inner: frame(0x0800, true, in4)},
		{name: "ipv4 outer header with options is stripped whole", in: frame(0x0800, false, ip4(lbSrc4, self4, 4, []byte{1, 1, 1, 0}, in4)), action: xdpPass, inner: frame(0x0800, false, in4)},
		{name: "ipv6 in ipv6 from an allowed lb is stripped and passed", in: frame(0x86dd, false, ip6(lbSrc6, self6, 41, in6)), action: xdpPass, inner: frame(0x86dd, false, in6)},
		{name: "ipv4 in ipv4 from outside the allow-list is dropped", in: frame(0x0800, false, ip4(stranger4, self4, 4, nil, in4)), action: xdpDrop, stats: map[string]uint64{"drop_not_allowed": 1}},
		{name: "ipv6 in ipv6 from outside the allow-list is dropped", in: frame(0x86dd, false, ip6(stranger6, self6, 41, in6)), action: xdpDrop, stats: map[string]uint64{"drop_not_allowed": 1}},
		{name: "ipv4 in ipv4 to another host passes untouched", in: frame(0x0800, false, ip4(lbSrc4, other4, 4, nil, in4)), action: xdpPass, stats: map[string]uint64{"pass_not_local": 1}},
		{name: "outer ipv4 header cut short passes untouched", in: frame(0x0800, false, outer4)[:14+19], action: xdpPass, stats: map[string]uint64{"pass_trunc": 1}},
		{name: "outer ipv6 header cut short passes untouched", in: frame(0x86dd, false, ip6(lbSrc6, self6, 41, in6))[:14+39], action: xdpPass, stats: map[string]uint64{"pass_trunc": 1}},
		{name: "vlan tag cut short passes untouched", in: frame(0x0800, true, outer4)[:16], action: xdpPass, stats: map[string]uint64{"pass_trunc": 1}},
		{name: "inner ipv4 header cut short is dropped", in: frame(0x0800, false, outer4)[:14+20+12], action: xdpDrop, stats: map[string]uint64{"drop_bad_inner": 1}},
		{name: "inner ipv6 header cut short is dropped", in: frame(0x86dd, false, ip6(lbSrc6, self6, 41, in6))[:14+40+30], action: xdpDrop, stats: map[string]uint64{"drop_bad_inner": 1}},
		{name: "ipv6 inside protocol 4 is dropped", in: frame(0x0800, false, ip4(lbSrc4, self4, 4, nil, in6)), action: xdpDrop, stats: map[string]uint64{"drop_bad_inner": 1}},
		{name: "outer ipv4 fragment passes untouched", in: frame(0x0800, false, fragged), action: xdpPass, stats: map[string]uint64{"pass_frag": 1}},
		{name: "outer ipv4 ihl below 5 passes untouched", in: frame(0x0800, false, badIHL), action: xdpPass, stats: map[string]uint64{"pass_bad_outer": 1}},
		{name: "ipv6 extension header before the inner packet passes untouched", in: frame(0x86dd, false, hbh), action: xdpPass, stats: map[string]uint64{"pass_v6_ext": 1}},
		{name: "gue over ipv4 from an allowed lb is stripped and passed", in: frame(0x0800, false, ip4(lbSrc4, self4, 17, nil, udp(guePort, in4))), action: xdpPass, inner: frame(0x0800, false, in4),
			stats: map[string]uint64{"decap_v4": 1, "decap_gue": 1, "decap_bytes": uint64(14 + len(in4))}},
		{name: "gue over ipv6 from an allowed lb is stripped and passed", in: frame(0x86dd, false, ip6(lbSrc6, self6, 17, udp(guePort, in6))), action: xdpPass, inner: frame(0x86dd, false, in6),
			stats: map[string]uint64{"decap_v6": 1, "decap_gue": 1, "decap_bytes": uint64(14 + len(in6))}},
		{name: "vlan tagged gue keeps its tag", in: frame(0x0800, true, ip4(lbSrc4, self4, 17, nil, udp(guePort, in4))), action: xdpPass, inner: frame(0x0800, true, in4),
			stats: map[string]uint64{"decap_v4": 1, "decap_gue": 1, "decap_bytes": uint64(18 + len(in4))}},
		{name: "gue from outside the allow-list is dropped", in: frame(0x0800, false, ip4(stranger4, self4, 17, nil, udp(guePort, in4))), action: xdpDrop, stats: map[string]uint64{"drop_not_allowed": 1}},
		{name: "udp to another port passes uncounted", in: frame(0x0800, false, ip4(lbSrc4, self4, 17, nil, udp(53, in4))), action: xdpPass},
		{name: "ipv6 udp to another port passes uncounted", in: frame(0x86dd, false, ip6(lbSrc6, self6, 17, udp(53, in6))), action: xdpPass},
		{name: "gue udp header cut short passes untouched", in: frame(0x0800, false, ip4(lbSrc4, self4, 17, nil, udp(guePort, in4)))[:14+20+6], action: xdpPass, stats: map[string]uint64{"pass_trunc": 1}},
		{name: "gue inner header cut short is dropped", in: frame(0x0800, false, ip4(lbSrc4, self4, 17, nil, udp(guePort, in4)))[:14+20+8+10], action: xdpDrop, stats: map[string]uint64{"drop_bad_inner": 1}},
		{name: "plain tcp to this host passes uncounted", in: frame(0x0800, false, ip4(client4, self4, 6, nil, tcpSeg(client4, self4, 5002))), action: xdpPass},
		{name: "arp passes uncounted", in: append(append(append([]byte{}, beMAC...), routerMAC...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1), action: xdpPass},
	}
	for i := range fx {
		if fx[i].inner != nil && fx[i].stats == nil {
			if fx[i].inner[12] == 0x86 || (len(fx[i].inner) > 17 && fx[i].inner[16] == 0x86) {
				fx[i].stats = dec6(fx[i].inner)
			} else {
				fx[i].stats = dec4(fx[i].inner)
			}
		}
	}
	return fx
}

func TestDecapFixtures(t *testing.T) {
	p := load(t)
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			before, err := p.Stats()
			if err != nil {
				t.Fatal(err)
			}
			act, out := run(t, p, f.in)
			after, _ := p.Stats()
			if act != f.action {
				t.Fatalf("action %s, want %s", actionNames[act], actionNames[f.action])
			}
			want := f.inner
			if want == nil {
				want = f.in
			}
			if !bytes.Equal(out, want) {
				t.Errorf("frame\n got %x\nwant %x", out, want)
			}
			checkGolden(t, f.name, act, f.in, out)
			var diffs []string
			for k := range after {
				if d := after[k] - before[k]; d != f.stats[k] {
					diffs = append(diffs, fmt.Sprintf("%s moved by %d, want %d", k, d, f.stats[k]))
				}
			}
			slices.Sort(diffs)
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}

// TestDecapRestoresWhatTheBalancerSent feeds the balancer's own
// encapsulated frames (l4's golden files) through decap: the client's
// packet must come out byte for byte as it went in.
func TestDecapRestoresWhatTheBalancerSent(t *testing.T) {
	p := load(t)
	files, _ := filepath.Glob("../testdata/encap/*.golden")
	n := 0
	for _, path := range files {
		act, in, out := xdpgolden.Read(t, path)
		if act != "XDP_TX" || len(out) <= len(in) {
			continue // not an encapsulation (an ICMP answer, a drop)
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			ract, got := run(t, p, out)
			if ract != xdpPass {
				t.Fatalf("action %s, want XDP_PASS", actionNames[ract])
			}
			// Same L3 onwards; the L2 header is the one the LB sent.
			if !bytes.Equal(got[12:], in[12:]) || !bytes.Equal(got[:12], out[:12]) {
				t.Errorf("decapsulated\n got %x\nwant %x%x", got, out[:12], in[12:])
			}
		})
	}
	if n < 14 {
		t.Fatalf("only %d encapsulated golden frames in ../testdata/encap", n)
	}
}

func checkGolden(t *testing.T, name string, act uint32, in, out []byte) {
	t.Helper()
	xdpgolden.Check(t, xdpgolden.Path("testdata", name), act, in, out, *update, "go test ./l4/decap/ -update")
}

// Without a GUE port, GUE-looking UDP is ordinary UDP: passed untouched.
func TestGUEOffPassesUDP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads the XDP program and runs it with BPF_PROG_TEST_RUN")
	}
	cfg := testConfig()
	cfg.GUEPort = 0
	p, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	in := frame(0x0800, false, ip4(lbSrc4, self4, 17, nil, udp(guePort, inner4(5100))))
	if act, out := run(t, p, in); act != xdpPass || !bytes.Equal(out, in) {
		t.Errorf("action %s, frame changed %v", actionNames[act], !bytes.Equal(out, in))
	}
	st, _ := p.Stats()
	for k, v := range st {
		if v != 0 {
			t.Errorf("%s = %d, want 0", k, v)
		}
	}
}

func TestNewNeedsAnAllowList(t *testing.T) {
	if _, err := New(Config{Local: []netip.Addr{self4}}, nil); err == nil || !strings.Contains(err.Error(), "allow") {
		t.Errorf("New without an allow-list: %v", err)
	}
}

func TestPrefixKey(t *testing.T) {
	k := PrefixKey(netip.MustParsePrefix("10.255.1.2/16"))
	if k.Prefixlen != 112 || k.Addr[2] != 0xFFFF0000 || k.Addr[3] != binary.LittleEndian.Uint32([]byte{10, 255, 0, 0}) {
		t.Errorf("PrefixKey(10.255.1.2/16) = %+v", k)
	}
}
