package l4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/l4/internal/inetsum"
)

// The encapsulation fixtures (issue #11): VIPs whose backends are
// reached by ipip through a router, outer headers checked byte for byte
// against headers built here, checksums verified, and the result kept in
// testdata/encap/*.golden.
var (
	vipIPIP4   = netip.MustParseAddr("192.0.2.60")
	vipIPIP6   = netip.MustParseAddr("2001:db8::60")
	vipGUE4    = netip.MustParseAddr("192.0.2.61")
	vipGUE6    = netip.MustParseAddr("2001:db8::61")
	routerMAC  = net.HardwareAddr{0x02, 0xee, 0, 0, 0, 0x01}
	encapSrc4  = netip.MustParsePrefix("10.255.0.0/16")
	encapSrc6  = netip.MustParsePrefix("fd00:ec::/112")
	encapMTU   = uint32(1400)
	backendNet = [2]byte{10, 2}
)

func ipipBackend(name string, last byte) Backend {
	return Backend{Name: name, Addr: netip.AddrFrom4([4]byte{backendNet[0], backendNet[1], 0, last}), MAC: routerMAC, Mode: ModeIPIP, Weight: 1}
}

func ipipBackend6(name string, last byte) Backend {
	a := netip.MustParseAddr(fmt.Sprintf("2001:db8:b::%x", last))
	return Backend{Name: name, Addr: a, MAC: routerMAC, Mode: ModeIPIP, Weight: 1}
}

func encapConfig() Config {
	c := fixtureConfig()
	c.EncapSource4, c.EncapSource6, c.EncapMTU = encapSrc4, encapSrc6, encapMTU
	return c
}

func encapServices() []Service {
	return append(fixtureServices(),
		Service{Name: "ipip4", Addr: vipIPIP4, Port: 80, Proto: 6, Backends: []Backend{ipipBackend("e1", 1), ipipBackend("e2", 2), ipipBackend("e3", 3)}},
		Service{Name: "ipip4udp", Addr: vipIPIP4, Port: 53, Proto: 17, Backends: []Backend{ipipBackend("u1", 11), ipipBackend("u2", 12)}},
		Service{Name: "ipip6", Addr: vipIPIP6, Port: 443, Proto: 6, Backends: []Backend{ipipBackend6("f1", 1), ipipBackend6("f2", 2)}},
		Service{Name: "gue4", Addr: vipGUE4, Port: 80, Proto: 6, Backends: []Backend{gueBackend(ipipBackend("g1", 21)), gueBackend(ipipBackend("g2", 22))}},
		Service{Name: "gue6", Addr: vipGUE6, Port: 443, Proto: 6, Backends: []Backend{gueBackend(ipipBackend6("h1", 0x21)), gueBackend(ipipBackend6("h2", 0x22))}},
	)
}

func gueBackend(b Backend) Backend { b.Mode = ModeGUE; return b }

// wantEncap builds the frame xdp_lb.c must send for in (built from p)
// to backend be: the L2 header readdressed, then the outer header, then
// the inner packet untouched.
func wantEncap(in []byte, p pkt, be *Backend) []byte {
	l3 := 14 + 4*len(p.vlans)
	inner := in[l3:]
	out := append([]byte{}, be.MAC...)
	out = append(out, lbMAC...)
	out = append(out, in[12:l3]...)
	bits := OuterFlowBits(p.src, p.sport)
	gue := be.Mode == ModeGUE
	var udp []byte
	if gue {
		udp = make([]byte, 8)
		binary.BigEndian.PutUint16(udp[0:], uint16(0xC000|bits>>18))
		binary.BigEndian.PutUint16(udp[2:], DefaultGUEPort)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(inner)))
	}
	if be.Addr.Unmap().Is4() {
		h := make([]byte, 20)
		h[0], h[1] = 0x45, inner[1]
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(udp)+len(inner)))
		binary.BigEndian.PutUint16(h[6:], 0x4000)
		h[8], h[9] = 64, 4
		if gue {
			h[9] = 17
		}
		s, d := OuterSource(encapSrc4, p.src, p.sport).As4(), be.Addr.Unmap().As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], inetsum.Fold(inetsum.Add(0, h)))
		out = append(out, h...)
	} else {
		h := make([]byte, 40)
		tc := uint32(binary.BigEndian.Uint16(inner[0:]) >> 4 & 0xff)
		binary.BigEndian.PutUint32(h[0:], 6<<28|tc<<20|bits&0xfffff)
		binary.BigEndian.PutUint16(h[4:], uint16(len(udp)+len(inner)))
		h[6], h[7] = 41, 64
		if gue {
			h[6] = 17
		}
		s, d := OuterSource(encapSrc6, p.src, p.sport).As16(), be.Addr.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		out = append(out, h...)
	}
	out = append(out, udp...)
	return append(out, inner...)
}

// wantTooBig builds the ICMP answer to the too-big packet in (from p).
func wantTooBig(in []byte, p pkt, overhead uint32) []byte {
	l3 := 14 + 4*len(p.vlans)
	out := append([]byte{}, clientMAC...)
	out = append(out, lbMAC...)
	out = append(out, in[12:l3]...)
	if p.src.Unmap().Is4() {
		quote := in[l3 : l3+28]
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 56)
		ip[8], ip[9] = 64, 1
		copy(ip[12:], quote[16:20])
		copy(ip[16:], quote[12:16])
		binary.BigEndian.PutUint16(ip[10:], inetsum.Fold(inetsum.Add(0, ip)))
		icmp := []byte{3, 4, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(icmp[6:], uint16(encapMTU-overhead))
		icmp = append(icmp, quote...)
		binary.BigEndian.PutUint16(icmp[2:], inetsum.Fold(inetsum.Add(0, icmp)))
		return append(append(out, ip...), icmp...)
	}
	quote := in[l3 : l3+48]
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 56)
	ip[6], ip[7] = 58, 64
	copy(ip[8:], quote[24:40])
	copy(ip[24:], quote[8:24])
	icmp := []byte{2, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(icmp[4:], encapMTU-overhead)
	icmp = append(icmp, quote...)
	sum := inetsum.Add(0, ip[8:40])
	sum += 56 + 58
	binary.BigEndian.PutUint16(icmp[2:], inetsum.Fold(inetsum.Add(sum, icmp)))
	return append(append(out, ip...), icmp...)
}

// checkChecksums verifies every checksum of an IPv4 or IPv6 frame: the
// IP header, and TCP/UDP/ICMP/ICMPv6 over its pseudo-header, looking
// through one level of IP-in-IP.
func checkChecksums(t *testing.T, frame []byte) {
	t.Helper()
	off := 12
	et := binary.BigEndian.Uint16(frame[off:])
	off += 2
	if et == 0x8100 {
		et = binary.BigEndian.Uint16(frame[off+2:])
		off += 4
	}
	checkIP(t, frame[off:], et == 0x86dd)
}

func checkIP(t *testing.T, p []byte, v6 bool) {
	t.Helper()
	var src, dst []byte
	var proto uint8
	var body []byte
	if !v6 {
		hl := int(p[0]&0xf) * 4
		if inetsum.Fold(inetsum.Add(0, p[:hl])) != 0 {
			t.Errorf("bad IPv4 header checksum in %x", p[:hl])
		}
		tot := int(binary.BigEndian.Uint16(p[2:]))
		src, dst, proto, body = p[12:16], p[16:20], p[9], p[hl:tot]
	} else {
		pl := int(binary.BigEndian.Uint16(p[4:]))
		src, dst, proto, body = p[8:24], p[24:40], p[6], p[40:40+pl]
	}
	switch proto {
	case 4:
		checkIP(t, body, false)
	case 41:
		checkIP(t, body, true)
	case 1:
		if inetsum.Fold(inetsum.Add(0, body)) != 0 {
			t.Errorf("bad ICMP checksum")
		}
	case 17:
		if binary.BigEndian.Uint16(body[2:]) == DefaultGUEPort {
			if binary.BigEndian.Uint16(body[6:]) != 0 {
				t.Errorf("GUE UDP checksum %x, want 0", body[6:8])
			}
			checkIP(t, body[8:], body[8]>>4 == 6)
			return
		}
		fallthrough
	case 6, 58:
		sum := inetsum.Add(0, src)
		sum = inetsum.Add(sum, dst)
		sum += uint32(proto) + uint32(len(body))
		if inetsum.Fold(inetsum.Add(sum, body)) != 0 {
			t.Errorf("bad protocol %d checksum", proto)
		}
	}
}

type encapFixture struct {
	name   string
	setup  func(e *env)
	pkt    pkt
	action uint32
	svc    string
	// want is "encap" (to the Maglev backend), "toobig" (the ICMP
	// answer) or "" (the frame unchanged).
	want   string
	global map[string]uint64
	vip    map[string]uint64
}

func bigPayload(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }

func encapFixtures() []encapFixture {
	tcp := func(dst netip.Addr, sport, dport uint16, flags uint8) pkt {
		return pkt{src: client4, dst: dst, proto: 6, sport: sport, dport: dport, tcpFlags: flags}
	}
	tcp6 := func(sport uint16, flags uint8) pkt {
		return pkt{src: client6, dst: vipIPIP6, proto: 6, sport: sport, dport: 443, tcpFlags: flags}
	}
	enc4 := map[string]uint64{"encap_v4": 1}
	enc6 := map[string]uint64{"encap_v6": 1}
	newEnc4 := map[string]uint64{"encap_v4": 1, "ct_inserts": 1}
	newEnc6 := map[string]uint64{"encap_v6": 1, "ct_inserts": 1}
	hit := map[string]uint64{"conntrack_hits": 1}
	with := func(p pkt, f func(*pkt)) pkt { f(&p); return p }
	// Inner lengths: 20 + 20 + payload. 1380 is the largest that fits
	// in 1400 with the outer IPv4 header; IPv6: 40 + 20 + payload.
	return []encapFixture{
		{name: "ipv4 tcp syn to an ipip VIP is encapsulated to its maglev backend", pkt: tcp(vipIPIP4, 4000, 80, syn), svc: "ipip4", want: "encap", global: newEnc4, vip: newFlow},
		{name: "ipv4 tcp ack of an established ipip flow is encapsulated",
			setup: func(e *env) { send(e, tcp(vipIPIP4, 4001, 80, syn)) },
			pkt:   tcp(vipIPIP4, 4001, 80, ack|psh), svc: "ipip4", want: "encap", global: enc4, vip: hit},
		{name: "ipv4 dscp and ecn are copied to the outer header", pkt: with(tcp(vipIPIP4, 4002, 80, syn), func(p *pkt) { p.tos = 0xb8 | 2 }), svc: "ipip4", want: "encap", global: newEnc4, vip: newFlow},
		{name: "ipv4 udp to an ipip VIP is encapsulated", pkt: pkt{src: client4, dst: vipIPIP4, proto: 17, sport: 4003, dport: 53, payload: []byte("query")}, svc: "ipip4udp", want: "encap", global: newEnc4, vip: newFlow},
		{name: "vlan tagged ipv4 is encapsulated behind its tag", pkt: with(tcp(vipIPIP4, 4004, 80, syn), func(p *pkt) { p.vlans = []uint16{42} }), svc: "ipip4", want: "encap", global: newEnc4, vip: newFlow},
		{name: "ipv4 with options is encapsulated with them", pkt: with(tcp(vipIPIP4, 4005, 80, syn), func(p *pkt) { p.ipOptions = []byte{1, 1, 1, 0} }), svc: "ipip4", want: "encap",
			global: map[string]uint64{"encap_v4": 1, "ct_inserts": 1, "ip_options": 1}, vip: newFlow},
		{name: "ipv4 packet that fits the mtu exactly is encapsulated", pkt: with(tcp(vipIPIP4, 4006, 80, syn), func(p *pkt) { p.payload = bigPayload(1340) }), svc: "ipip4", want: "encap", global: newEnc4, vip: newFlow},
		{name: "ipv4 packet one byte over the mtu is answered with fragmentation needed", pkt: with(tcp(vipIPIP4, 4007, 80, ack), func(p *pkt) { p.payload = bigPayload(1341) }), svc: "ipip4", want: "toobig",
			global: map[string]uint64{"icmp_too_big": 1, "ct_inserts": 1}, vip: map[string]uint64{"new_flows": 1, "conntrack_misses": 1, "conntrack_misses_non_syn": 1}},
		{name: "vlan tagged ipv4 too big is answered behind its tag", pkt: with(tcp(vipIPIP4, 4008, 80, ack), func(p *pkt) { p.payload = bigPayload(1460); p.vlans = []uint16{42} }), svc: "ipip4", want: "toobig",
			global: map[string]uint64{"icmp_too_big": 1, "ct_inserts": 1}, vip: map[string]uint64{"new_flows": 1, "conntrack_misses": 1, "conntrack_misses_non_syn": 1}},
		{name: "ipv4 too big with ip options is dropped and counted", pkt: with(tcp(vipIPIP4, 4009, 80, syn), func(p *pkt) { p.ipOptions = []byte{1, 1, 1, 0}; p.payload = bigPayload(1400) }), svc: "ipip4", action: xdpDrop,
			global: map[string]uint64{"drop_too_big": 1, "ct_inserts": 1, "ip_options": 1}, vip: newFlow},
		{name: "ipv6 tcp syn to an ipip VIP is encapsulated in ipv6", pkt: tcp6(4100, syn), svc: "ipip6", want: "encap", global: newEnc6, vip: newFlow},
		{name: "ipv6 ack of an established ipip flow is encapsulated",
			setup: func(e *env) { send(e, tcp6(4101, syn)) },
			pkt:   tcp6(4101, ack), svc: "ipip6", want: "encap", global: enc6, vip: hit},
		{name: "ipv6 traffic class is copied to the outer header", pkt: with(tcp6(4102, syn), func(p *pkt) { p.tos = 0x2e<<2 | 1 }), svc: "ipip6", want: "encap", global: newEnc6, vip: newFlow},
		{name: "ipv6 packet that fits the mtu exactly is encapsulated", pkt: with(tcp6(4103, syn), func(p *pkt) { p.payload = bigPayload(1300) }), svc: "ipip6", want: "encap", global: newEnc6, vip: newFlow},
		{name: "ipv6 packet one byte over the mtu is answered with packet too big", pkt: with(tcp6(4104, syn), func(p *pkt) { p.payload = bigPayload(1301) }), svc: "ipip6", want: "toobig",
			global: map[string]uint64{"icmp_too_big": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv4 tcp syn to a gue VIP is encapsulated in udp", pkt: tcp(vipGUE4, 4500, 80, syn), svc: "gue4", want: "encap", global: map[string]uint64{"encap_gue": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv4 ack of an established gue flow is encapsulated",
			setup: func(e *env) { send(e, tcp(vipGUE4, 4501, 80, syn)) },
			pkt:   with(tcp(vipGUE4, 4501, 80, ack), func(p *pkt) { p.tos = 0x28 }), svc: "gue4", want: "encap", global: map[string]uint64{"encap_gue": 1}, vip: hit},
		{name: "vlan tagged ipv4 to a gue VIP keeps its tag", pkt: with(tcp(vipGUE4, 4502, 80, syn), func(p *pkt) { p.vlans = []uint16{42} }), svc: "gue4", want: "encap", global: map[string]uint64{"encap_gue": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv6 tcp syn to a gue VIP is encapsulated in udp over ipv6", pkt: pkt{src: client6, dst: vipGUE6, proto: 6, sport: 4503, dport: 443, tcpFlags: syn}, svc: "gue6", want: "encap", global: map[string]uint64{"encap_gue": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv4 gue packet that fits the mtu exactly is encapsulated", pkt: with(tcp(vipGUE4, 4504, 80, syn), func(p *pkt) { p.payload = bigPayload(1332) }), svc: "gue4", want: "encap", global: map[string]uint64{"encap_gue": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv4 gue packet one byte over the mtu is answered with the gue mtu", pkt: with(tcp(vipGUE4, 4505, 80, syn), func(p *pkt) { p.payload = bigPayload(1333) }), svc: "gue4", want: "toobig",
			global: map[string]uint64{"icmp_too_big": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "ipv6 gue packet one byte over the mtu is answered with the gue mtu", pkt: pkt{src: client6, dst: vipGUE6, proto: 6, sport: 4506, dport: 443, tcpFlags: syn, payload: bigPayload(1293)}, svc: "gue6", want: "toobig",
			global: map[string]uint64{"icmp_too_big": 1, "ct_inserts": 1}, vip: newFlow},
		{name: "dsr backends are untouched by the encapsulation", pkt: tcp(vipWeb4, 4200, 80, syn), svc: "web4", action: xdpTX, want: "dsr", global: newFlowGlobal, vip: newFlow},
	}
}

func TestEncapFixtures(t *testing.T) {
	e := newEnv(t, encapConfig(), encapServices())
	for _, f := range encapFixtures() {
		t.Run(f.name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			if f.setup != nil {
				f.setup(e)
			}
			in := f.pkt.build()
			before := counters(e.stats())
			act, out := e.run(in)
			after := counters(e.stats())
			be := e.modelBackend(f.svc, f.pkt)
			want := f.action
			if want == 0 {
				want = xdpTX
			}
			if act != want {
				t.Fatalf("action %s, want %s", actionNames[act], actionNames[want])
			}
			switch f.want {
			case "encap":
				if w := wantEncap(in, f.pkt, be); !bytes.Equal(out, w) {
					t.Errorf("frame differs from the expected encapsulation\n got %x\nwant %x", out, w)
				}
				checkChecksums(t, out)
			case "toobig":
				overhead := uint32(20)
				if !f.pkt.src.Unmap().Is4() {
					overhead = 40
				}
				if be.Mode == ModeGUE {
					overhead += 8
				}
				if w := wantTooBig(in, f.pkt, overhead); !bytes.Equal(out, w) {
					t.Errorf("frame differs from the expected ICMP answer\n got %x\nwant %x", out, w)
				}
				checkChecksums(t, out)
			case "dsr":
				if !bytes.Equal(out[:6], be.MAC) || !bytes.Equal(out[12:], in[12:]) {
					t.Errorf("dsr frame changed beyond its MACs")
				}
			default:
				if !bytes.Equal(out, in) {
					t.Errorf("frame changed on %s", actionNames[act])
				}
			}
			checkGoldenFile(t, goldenPath("encap", f.name), act, in, out)

			checkDelta(t, before, after, fixtureDelta(f.global, f.svc, f.vip, be.Name, len(in)))
		})
	}
}

func TestEncapTooBigDroppedWhenICMPIsOff(t *testing.T) {
	cfg := encapConfig()
	cfg.EncapDropTooBig = true
	e := newEnv(t, cfg, encapServices())
	for _, p := range []pkt{
		{src: client4, dst: vipIPIP4, proto: 6, sport: 4300, dport: 80, tcpFlags: syn, payload: bigPayload(1341)},
		{src: client6, dst: vipIPIP6, proto: 6, sport: 4301, dport: 443, tcpFlags: syn, payload: bigPayload(1301)},
	} {
		before := e.stats().Global["drop_too_big"]
		if act, _ := e.run(p.build()); act != xdpDrop {
			t.Errorf("%v: action %s, want XDP_DROP", p.dst, actionNames[act])
		}
		if d := e.stats().Global["drop_too_big"] - before; d != 1 {
			t.Errorf("%v: drop_too_big moved by %d, want 1", p.dst, d)
		}
	}
}

// A single address as the encap source is used as it is, for every flow.
func TestEncapSingleSourceAddress(t *testing.T) {
	cfg := encapConfig()
	cfg.EncapSource4 = netip.MustParsePrefix("198.18.0.1/32")
	cfg.EncapSource6 = netip.MustParsePrefix("fd00:ec::1/128")
	e := newEnv(t, cfg, encapServices())
	for i := range 8 {
		_, out := e.run(pkt{src: client4, dst: vipIPIP4, proto: 6, sport: uint16(4400 + i), dport: 80, tcpFlags: syn}.build())
		if got := netip.AddrFrom4([4]byte(out[14+12 : 14+16])); got != cfg.EncapSource4.Addr() {
			t.Fatalf("outer source %v, want %v", got, cfg.EncapSource4.Addr())
		}
		_, out = e.run(pkt{src: client6, dst: vipIPIP6, proto: 6, sport: uint16(4400 + i), dport: 443, tcpFlags: syn}.build())
		if got := netip.AddrFrom16([16]byte(out[14+8 : 14+24])); got != cfg.EncapSource6.Addr() {
			t.Fatalf("outer source %v, want %v", got, cfg.EncapSource6.Addr())
		}
	}
}

// The outer source spreads flows of one client over the prefix: what the
// backend's RSS needs.
func TestOuterSourceSpreadsFlows(t *testing.T) {
	seen := map[netip.Addr]bool{}
	for port := range uint16(1000) {
		a := OuterSource(encapSrc4, client4, 30000+port)
		if !encapSrc4.Contains(a) {
			t.Fatalf("%v outside %v", a, encapSrc4)
		}
		seen[a] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 flows of one client got only %d outer sources", len(seen))
	}
	a := OuterSource(netip.MustParsePrefix("fd00:ec::/64"), client6, 1234)
	if !strings.HasPrefix(a.String(), "fd00:ec::") {
		t.Errorf("IPv6 outer source %v changed more than the last 32 bits", a)
	}
}

func TestApplyRefusesBadIPIPBackends(t *testing.T) {
	requireBPF(t)
	noSrc := fixtureConfig()
	for _, c := range []struct {
		name string
		cfg  Config
		be   Backend
		want string
	}{
		{"without a next-hop mac", encapConfig(), Backend{Name: "x", Addr: netip.MustParseAddr("10.2.0.1"), Mode: ModeIPIP, Weight: 1}, "MAC"},
		{"of the other family", encapConfig(), ipipBackend6("x", 1), "families"},
		{"without an outer source", noSrc, ipipBackend("x", 1), "outer source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := newDataplane(c.cfg, quietLog(), lbMAC)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			err = d.Apply([]Service{{Name: "v", Addr: vipIPIP4, Port: 80, Proto: 6, Backends: []Backend{c.be}}})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Apply: %v, want ErrInvalid mentioning %q", err, c.want)
			}
		})
	}
}
