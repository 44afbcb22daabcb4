package l4

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/internal/xdpgolden"
)

var update = flag.Bool("update", false, "rewrite the golden packet files in testdata/xdp")

const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3
)

var actionNames = xdpgolden.Actions

var (
	client4 = netip.MustParseAddr("198.51.100.7")
	client6 = netip.MustParseAddr("2001:db8:c::7")
	vipWeb4 = netip.MustParseAddr("192.0.2.10")
	vipWeb6 = netip.MustParseAddr("2001:db8::10")
	vipQUIC = netip.MustParseAddr("192.0.2.20")
	vipL7   = netip.MustParseAddr("192.0.2.30")
	vipNone = netip.MustParseAddr("192.0.2.40")
	vipDrn  = netip.MustParseAddr("192.0.2.50")
	vipDown = netip.MustParseAddr("192.0.2.51")
	vipGone = netip.MustParseAddr("192.0.2.52")
	other4  = netip.MustParseAddr("192.0.2.99")
	other6  = netip.MustParseAddr("2001:db8::99")
)

const testSeed = 0x5eed

func fixtureConfig() Config {
	return Config{ConntrackSize: 4096, UDPTimeout: DefaultUDPTimeout, HashSeed: testSeed, MaglevSize: 65537}
}

func fixtureServices() []Service {
	three := func(p string, base byte) []Backend {
		return []Backend{dsr(p+"1", base+1), dsr(p+"2", base+2), dsr(p+"3", base+3)}
	}
	quic := []Backend{
		{Name: "p1", Mode: ModeLocal, Weight: 1, QUICNodeID: 1},
		{Name: "p2", MAC: mac(0x22), Mode: ModeDSRL2, Weight: 1, QUICNodeID: 2},
		{Name: "p3", MAC: mac(0x23), Mode: ModeDSRL2, Weight: 1, QUICNodeID: 3},
	}
	return []Service{
		{Name: "web4", Addr: vipWeb4, Port: 80, Proto: 6, Backends: three("b", 0x10)},
		{Name: "dns4", Addr: vipWeb4, Port: 53, Proto: 17, Backends: []Backend{dsr("d1", 0x31), dsr("d2", 0x32)}},
		{Name: "web6", Addr: vipWeb6, Port: 443, Proto: 6, Backends: []Backend{dsr("s1", 0x41), dsr("s2", 0x42)}},
		{Name: "quic4", Addr: vipQUIC, Port: 443, Proto: 17, QUIC: true, Backends: quic},
		{Name: "l7", Addr: vipL7, Port: 8080, Proto: 6, Backends: []Backend{{Name: "self", Mode: ModeLocal, Weight: 1}}},
		{Name: "empty", Addr: vipNone, Port: 80, Proto: 6},
		{Name: "drain", Addr: vipDrn, Port: 80, Proto: 6, Backends: three("x", 0x50)},
		{Name: "down", Addr: vipDown, Port: 80, Proto: 6, Backends: three("y", 0x60)},
		{Name: "gone", Addr: vipGone, Port: 80, Proto: 6, Backends: three("z", 0x70)},
	}
}

type fixture struct {
	name string
	// setup runs before the packet; counters are compared from after it.
	setup func(e *env, f *fixture)
	pkt   pkt
	raw   []byte // a hand-made frame instead of pkt
	// action is the expected XDP verdict.
	action uint32
	// svc is the VIP the packet belongs to, "" for none.
	svc string
	// backend is the expected backend: a name, or "maglev" for wherever
	// flowhash + maglev in Go send this tuple.
	backend string
	// global and vip are the expected counter deltas, besides the VIP's
	// packets/bytes and the backend's packets/bytes/new_flows, which are
	// implied by svc and backend. Every other counter must not move.
	global map[string]uint64
	vip    map[string]uint64
	// check runs after the packet, for what the frame and counters do
	// not show (conntrack contents).
	check func(e *env, f *fixture)
}

const (
	syn    = 0x02
	ack    = 0x10
	synack = 0x12
	psh    = 0x08
)

func tcp4(dst netip.Addr, sport, dport uint16, flags uint8) pkt {
	return pkt{src: client4, dst: dst, proto: 6, sport: sport, dport: dport, tcpFlags: flags}
}

func udp4(dst netip.Addr, sport, dport uint16, payload []byte) pkt {
	return pkt{src: client4, dst: dst, proto: 17, sport: sport, dport: dport, payload: payload}
}

var newFlow = map[string]uint64{"new_flows": 1, "conntrack_misses": 1}
var newFlowGlobal = map[string]uint64{"ct_inserts": 1}

// send runs a packet through the program as part of a setup.
func send(e *env, p pkt) {
	e.t.Helper()
	if act, _ := e.run(p.build()); act != xdpTX && act != xdpPass {
		e.t.Fatalf("setup packet got %s", actionNames[act])
	}
}

// pinnedBackend opens a flow and returns which backend the model says it
// got (checked by the fixture that owns it).
func pinned(e *env, svc string, p pkt) string {
	send(e, p)
	return e.modelBackend(svc, p).Name
}

// withBackend returns the fixture services with one backend of one
// service changed.
func withBackend(e *env, svc, be string, change func(*Backend) bool) []Service {
	out := fixtureServices()
	for i := range out {
		if out[i].Name != svc {
			continue
		}
		var kept []Backend
		for _, b := range out[i].Backends {
			if b.Name != be || change(&b) {
				kept = append(kept, b)
			}
		}
		out[i].Backends = kept
	}
	return out
}

// Destination MACs that are not the LB's (lbMAC is 02:aa:aa:aa:aa:aa):
// another host's, differing in the first four bytes or only in the last
// two (the program compares a u32 and a u16), broadcast, and the IPv6
// multicast MAC of a solicited-node address.
var (
	otherMACHead = net.HardwareAddr{0x02, 0xaa, 0xaa, 0xab, 0xaa, 0xaa}
	otherMACTail = net.HardwareAddr{0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xab}
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	multicast6   = net.HardwareAddr{0x33, 0x33, 0xff, 0x00, 0x00, 0x10}
)

// toMAC readdresses p's frame.
func toMAC(p pkt, m net.HardwareAddr) pkt { p.dstMAC = m; return p }

// noEntry fails unless the fixture's tuple has no conntrack entry.
func noEntry(e *env, f *fixture) {
	e.t.Helper()
	p := f.pkt
	k := ctKey(p.src, p.dst, p.sport, p.dport, p.proto)
	var v bpf.LBCtEntry
	if err := e.d.objs.Conntrack.Lookup(&k, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		e.t.Errorf("a packet that is not ours made a conntrack entry (lookup: %v)", err)
	}
}

var notOurs = map[string]uint64{"pass_not_ours": 1}

func quicShort(node byte) []byte {
	// Short header: 0b01xxxxxx, then the destination connection ID whose
	// first byte is the node id, then some protected payload.
	return []byte{0x41, node, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03}
}

func fixtures() []*fixture {
	quicLong := append([]byte{0xc3, 0, 0, 0, 1, 8, 2, 9, 9, 9, 9, 9, 9, 9}, make([]byte, 16)...)
	fx := []*fixture{
		// --- not ours: untouched, no counter moves
		{name: "ipv4 tcp to a non-VIP address passes", pkt: tcp4(other4, 1000, 80, syn), action: xdpPass},
		{name: "ipv4 tcp to the VIP address on another port passes", pkt: tcp4(vipWeb4, 1001, 81, syn), action: xdpPass},
		{name: "ipv4 udp to a tcp-only VIP port passes", pkt: udp4(vipWeb4, 1002, 80, []byte("x")), action: xdpPass},
		{name: "ipv4 icmp to the VIP passes", pkt: pkt{src: client4, dst: vipWeb4, proto: 1, payload: []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0}}, action: xdpPass},
		{name: "ipv6 tcp to a non-VIP address passes", pkt: pkt{src: client6, dst: other6, proto: 6, sport: 1003, dport: 443, tcpFlags: syn}, action: xdpPass},
		{name: "ipv6 tcp to the VIP on another port passes", pkt: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 1004, dport: 80, tcpFlags: syn}, action: xdpPass},
		{name: "arp passes", raw: append(append(append([]byte{}, lbMAC...), clientMAC...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1), action: xdpPass},
		{name: "an ethernet header alone passes", raw: append(append(append([]byte{}, lbMAC...), clientMAC...), 0x88, 0xb5), action: xdpPass},

		// --- new flows and established flows
		{name: "ipv4 tcp syn opens a flow on the maglev backend", pkt: tcp4(vipWeb4, 2000, 80, syn), action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv4 tcp ack of an open flow follows conntrack",
			setup: func(e *env, f *fixture) { send(e, tcp4(vipWeb4, 2001, 80, syn)) },
			pkt:   tcp4(vipWeb4, 2001, 80, ack|psh), action: xdpTX, svc: "web4", backend: "maglev", vip: map[string]uint64{"conntrack_hits": 1}},
		{name: "ipv4 tcp without syn and without entry takes maglev so failover keeps flows", pkt: tcp4(vipWeb4, 2002, 80, ack), action: xdpTX, svc: "web4", backend: "maglev",
			vip: map[string]uint64{"new_flows": 1, "conntrack_misses": 1, "conntrack_misses_non_syn": 1}, global: newFlowGlobal},
		{name: "ipv4 tcp syn-ack without entry counts as non-syn miss", pkt: tcp4(vipWeb4, 2003, 80, synack), action: xdpTX, svc: "web4", backend: "maglev",
			vip: map[string]uint64{"new_flows": 1, "conntrack_misses": 1, "conntrack_misses_non_syn": 1}, global: newFlowGlobal},
		{name: "ipv4 tcp bare ack with zero-length payload is forwarded",
			setup: func(e *env, f *fixture) { send(e, tcp4(vipWeb4, 2004, 80, syn)) },
			pkt:   tcp4(vipWeb4, 2004, 80, ack), action: xdpTX, svc: "web4", backend: "maglev", vip: map[string]uint64{"conntrack_hits": 1}},
		{name: "ipv4 tcp with a large payload is forwarded untouched", pkt: func() pkt {
			p := tcp4(vipWeb4, 2005, 80, syn)
			p.payload = bytes.Repeat([]byte("payload!"), 150)
			return p
		}(),
			action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv4 with DF set is not a fragment", pkt: func() pkt { p := tcp4(vipWeb4, 2006, 80, syn); p.fragOff = 0x4000; return p }(),
			action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv4 udp first packet opens a flow", pkt: udp4(vipWeb4, 2100, 53, []byte("query")), action: xdpTX, svc: "dns4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv4 udp next packet follows conntrack",
			setup: func(e *env, f *fixture) { send(e, udp4(vipWeb4, 2101, 53, []byte("q1"))) },
			pkt:   udp4(vipWeb4, 2101, 53, []byte("q2")), action: xdpTX, svc: "dns4", backend: "maglev", vip: map[string]uint64{"conntrack_hits": 1}},
		{name: "ipv4 udp entry past the timeout is re-picked",
			setup: func(e *env, f *fixture) {
				send(e, udp4(vipWeb4, 2102, 53, []byte("q1")))
				k := ctKey(client4, vipWeb4, 2102, 53, 17)
				var v struct {
					ID, Pad uint32
					Last    uint64
				}
				if err := e.d.objs.Conntrack.Lookup(&k, &v); err != nil {
					e.t.Fatal(err)
				}
				v.Last = 1 // long before now - timeout
				if err := e.d.objs.Conntrack.Put(&k, &v); err != nil {
					e.t.Fatal(err)
				}
			},
			pkt: udp4(vipWeb4, 2102, 53, []byte("q2")), action: xdpTX, svc: "dns4", backend: "maglev", vip: map[string]uint64{"conntrack_repicks": 1}},
		{name: "ipv4 udp with zero-length payload is forwarded", pkt: udp4(vipWeb4, 2103, 53, nil), action: xdpTX, svc: "dns4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv6 tcp syn opens a flow", pkt: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2200, dport: 443, tcpFlags: syn}, action: xdpTX, svc: "web6", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "ipv6 tcp ack follows conntrack",
			setup: func(e *env, f *fixture) {
				send(e, pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2201, dport: 443, tcpFlags: syn})
			},
			pkt: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2201, dport: 443, tcpFlags: ack, payload: []byte("GET /")}, action: xdpTX, svc: "web6", backend: "maglev", vip: map[string]uint64{"conntrack_hits": 1}},

		// --- VLAN
		{name: "vlan tagged ipv4 syn is balanced and keeps its tag", pkt: func() pkt { p := tcp4(vipWeb4, 2300, 80, syn); p.vlans = []uint16{42}; return p }(),
			action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "vlan tagged ipv6 syn is balanced", pkt: pkt{vlans: []uint16{7}, src: client6, dst: vipWeb6, proto: 6, sport: 2301, dport: 443, tcpFlags: syn},
			action: xdpTX, svc: "web6", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "vlan tagged non-VIP passes", pkt: func() pkt { p := tcp4(other4, 2302, 80, syn); p.vlans = []uint16{42}; return p }(), action: xdpPass},
		{name: "double tagged frame passes", pkt: func() pkt { p := tcp4(vipWeb4, 2303, 80, syn); p.vlans = []uint16{100, 42}; return p }(),
			action: xdpPass, global: map[string]uint64{"pass_qinq": 1}},
		{name: "vlan tag cut short passes", raw: append(append(append([]byte{}, lbMAC...), clientMAC...), 0x81, 0x00, 0x00),
			action: xdpPass, global: map[string]uint64{"pass_trunc_l2": 1}},

		// --- IPv4 options
		{name: "ipv4 with 4 bytes of options is balanced on the right ports", pkt: func() pkt { p := tcp4(vipWeb4, 2400, 80, syn); p.ipOptions = []byte{1, 1, 1, 0}; return p }(),
			action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: map[string]uint64{"ct_inserts": 1, "ip_options": 1}},
		{name: "ipv4 with 40 bytes of options (ihl 15) is balanced", pkt: func() pkt { p := tcp4(vipWeb4, 2401, 80, syn); p.ipOptions = bytes.Repeat([]byte{1}, 40); return p }(),
			action: xdpTX, svc: "web4", backend: "maglev", vip: newFlow, global: map[string]uint64{"ct_inserts": 1, "ip_options": 1}},
		{name: "ipv4 udp with options is balanced", pkt: func() pkt {
			p := udp4(vipWeb4, 2402, 53, []byte("q"))
			p.ipOptions = []byte{1, 1, 1, 1, 1, 1, 1, 0}
			return p
		}(),
			action: xdpTX, svc: "dns4", backend: "maglev", vip: newFlow, global: map[string]uint64{"ct_inserts": 1, "ip_options": 1}},
		{name: "ipv4 options running past the frame pass", raw: func() []byte {
			p := tcp4(vipWeb4, 2403, 80, syn)
			p.ipOptions = bytes.Repeat([]byte{1}, 40)
			return p.build()[:14+30]
		}(),
			action: xdpPass, global: map[string]uint64{"pass_trunc_l3": 1}},

		// --- malformed and truncated at every layer
		{name: "ipv4 header cut short passes", raw: tcp4(vipWeb4, 2500, 80, syn).build()[:14+10], action: xdpPass, global: map[string]uint64{"pass_trunc_l3": 1}},
		{name: "one byte after ethernet passes", raw: tcp4(vipWeb4, 2501, 80, syn).build()[:15], action: xdpPass, global: map[string]uint64{"pass_trunc_l3": 1}},
		{name: "ipv4 ihl below 5 passes", pkt: func() pkt { p := tcp4(vipWeb4, 2502, 80, syn); p.ihl = 4; return p }(), action: xdpPass, global: map[string]uint64{"pass_bad_l3": 1}},
		{name: "ipv4 ethertype with version 6 passes", pkt: func() pkt { p := tcp4(vipWeb4, 2503, 80, syn); p.version = 6; return p }(), action: xdpPass, global: map[string]uint64{"pass_bad_l3": 1}},
		{name: "ipv4 total length below the header passes", pkt: func() pkt { p := tcp4(vipWeb4, 2504, 80, syn); p.totLen = 19; return p }(), action: xdpPass, global: map[string]uint64{"pass_bad_l3": 1}},
		{name: "ipv4 total length too short for tcp passes", pkt: func() pkt { p := tcp4(vipWeb4, 2505, 80, syn); p.totLen = 30; return p }(), action: xdpPass, global: map[string]uint64{"pass_trunc_l4": 1}},
		{name: "ipv4 tcp header cut short passes", raw: tcp4(vipWeb4, 2506, 80, syn).build()[:14+20+10], action: xdpPass, global: map[string]uint64{"pass_trunc_l4": 1}},
		{name: "ipv4 udp header cut short passes", raw: udp4(vipWeb4, 2507, 53, nil).build()[:14+20+4], action: xdpPass, global: map[string]uint64{"pass_trunc_l4": 1}},
		{name: "ipv6 header cut short passes", raw: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2508, dport: 443, tcpFlags: syn}.build()[:14+39], action: xdpPass, global: map[string]uint64{"pass_trunc_l3": 1}},
		{name: "ipv6 tcp header cut short passes", raw: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2509, dport: 443, tcpFlags: syn}.build()[:14+40+19], action: xdpPass, global: map[string]uint64{"pass_trunc_l4": 1}},
		{name: "ipv6 version nibble wrong passes", pkt: pkt{version: 4, src: client6, dst: vipWeb6, proto: 6, sport: 2510, dport: 443, tcpFlags: syn}, action: xdpPass, global: map[string]uint64{"pass_bad_l3": 1}},

		// --- fragments and extension headers
		{name: "ipv4 first fragment passes", pkt: func() pkt { p := tcp4(vipWeb4, 2600, 80, syn); p.fragOff = 0x2000; return p }(), action: xdpPass, global: map[string]uint64{"pass_frag_v4": 1}},
		{name: "ipv4 later fragment passes", pkt: func() pkt { p := udp4(vipWeb4, 2601, 53, []byte("rest")); p.fragOff = 185; return p }(), action: xdpPass, global: map[string]uint64{"pass_frag_v4": 1}},
		{name: "ipv4 last fragment passes", pkt: func() pkt { p := udp4(vipWeb4, 2602, 53, []byte("rest")); p.fragOff = 0x0001; return p }(), action: xdpPass, global: map[string]uint64{"pass_frag_v4": 1}},
		{name: "ipv6 fragment header passes", pkt: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2603, dport: 443, tcpFlags: syn, v6Ext: true, v6ExtHdr: 44}, action: xdpPass, global: map[string]uint64{"pass_frag_v6": 1}},
		{name: "ipv6 hop-by-hop header passes", pkt: pkt{src: client6, dst: vipWeb6, proto: 6, sport: 2604, dport: 443, tcpFlags: syn, v6Ext: true, v6ExtHdr: 0}, action: xdpPass, global: map[string]uint64{"pass_v6_ext": 1}},
		{name: "ipv6 destination options header passes", pkt: pkt{src: client6, dst: vipWeb6, proto: 17, sport: 2605, dport: 443, v6Ext: true, v6ExtHdr: 60}, action: xdpPass, global: map[string]uint64{"pass_v6_ext": 1}},

		// --- QUIC
		{name: "quic short header with node 1 goes to the local proxy", pkt: udp4(vipQUIC, 2700, 443, quicShort(1)), action: xdpPass, svc: "quic4", backend: "p1", vip: map[string]uint64{"quic_routed": 1}},
		{name: "quic short header with node 2 goes to that peer by dsr", pkt: udp4(vipQUIC, 2701, 443, quicShort(2)), action: xdpTX, svc: "quic4", backend: "p2", vip: map[string]uint64{"quic_routed": 1}},
		{name: "quic short header routes by id even when conntrack says otherwise",
			setup: func(e *env, f *fixture) { send(e, udp4(vipQUIC, 2702, 443, quicLong)) },
			pkt:   udp4(vipQUIC, 2702, 443, quicShort(3)), action: xdpTX, svc: "quic4", backend: "p3", vip: map[string]uint64{"quic_routed": 1}},
		{name: "quic short header with an unknown node takes the hash", pkt: udp4(vipQUIC, 2703, 443, quicShort(7)), action: 0, svc: "quic4", backend: "maglev",
			vip: map[string]uint64{"quic_unknown_node": 1, "new_flows": 1, "conntrack_misses": 1}, global: newFlowGlobal},
		{name: "quic short header with node 0 takes the hash", pkt: udp4(vipQUIC, 2704, 443, quicShort(0)), action: 0, svc: "quic4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "quic long header initial takes the hash", pkt: udp4(vipQUIC, 2705, 443, quicLong), action: 0, svc: "quic4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "quic packet without the fixed bit takes the hash", pkt: udp4(vipQUIC, 2706, 443, []byte{0x01, 2, 3, 4}), action: 0, svc: "quic4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "quic one-byte payload takes the hash", pkt: udp4(vipQUIC, 2707, 443, []byte{0x41}), action: 0, svc: "quic4", backend: "maglev", vip: newFlow, global: newFlowGlobal},
		{name: "quic empty payload takes the hash", pkt: udp4(vipQUIC, 2708, 443, nil), action: 0, svc: "quic4", backend: "maglev", vip: newFlow, global: newFlowGlobal},

		// --- forwarding modes and empty services
		{name: "local backend hands the packet to the stack", pkt: tcp4(vipL7, 2800, 8080, syn), action: xdpPass, svc: "l7", backend: "self", vip: newFlow, global: newFlowGlobal},
		// A SYN never looks conntrack up (see xdp_lb.c), so it is counted
		// as a miss only when it inserts.
		{name: "service without backends drops", pkt: tcp4(vipNone, 2801, 80, syn), action: xdpDrop, svc: "empty",
			vip: map[string]uint64{"drop_no_backend": 1}, global: map[string]uint64{"drop_no_backend": 1}},
		{name: "service without backends drops non-syn too", pkt: tcp4(vipNone, 2802, 80, ack), action: xdpDrop, svc: "empty",
			vip: map[string]uint64{"conntrack_misses": 1, "conntrack_misses_non_syn": 1, "drop_no_backend": 1}, global: map[string]uint64{"drop_no_backend": 1}},
		{name: "retransmitted syn follows its entry",
			setup: func(e *env, f *fixture) { send(e, tcp4(vipWeb4, 2803, 80, syn)) },
			pkt:   tcp4(vipWeb4, 2803, 80, syn), action: xdpTX, svc: "web4", backend: "maglev", vip: map[string]uint64{"conntrack_hits": 1}},
		{name: "syn for a tuple pinned to a down backend is re-picked",
			setup: func(e *env, f *fixture) {
				be := pinned(e, "down", tcp4(vipDown, 2804, 80, syn))
				e.apply(withBackend(e, "down", be, func(b *Backend) bool { b.Down = true; return true }))
			},
			pkt: tcp4(vipDown, 2804, 80, syn), action: xdpTX, svc: "down", backend: "maglev", vip: map[string]uint64{"conntrack_repicks": 1}},

		// --- backend churn
		{name: "drained backend keeps its established flow",
			setup: func(e *env, f *fixture) {
				be := pinned(e, "drain", tcp4(vipDrn, 2900, 80, syn))
				f.backend = be
				e.apply(withBackend(e, "drain", be, func(b *Backend) bool { b.Weight = 0; return true }))
			},
			pkt: tcp4(vipDrn, 2900, 80, ack), action: xdpTX, svc: "drain", vip: map[string]uint64{"conntrack_hits": 1}},
		{name: "down backend loses its flow to a re-pick",
			setup: func(e *env, f *fixture) {
				be := pinned(e, "down", tcp4(vipDown, 2901, 80, syn))
				e.apply(withBackend(e, "down", be, func(b *Backend) bool { b.Down = true; return true }))
				f.backend = "maglev"
				if e.modelBackend("down", f.pkt).Name == be {
					e.t.Fatalf("model still picks down backend %s", be)
				}
			},
			pkt: tcp4(vipDown, 2901, 80, ack), action: xdpTX, svc: "down", vip: map[string]uint64{"conntrack_repicks": 1}},
		{name: "removed backend loses its flow to a re-pick",
			setup: func(e *env, f *fixture) {
				be := pinned(e, "gone", tcp4(vipGone, 2902, 80, syn))
				e.apply(withBackend(e, "gone", be, func(b *Backend) bool { return false }))
				f.backend = "maglev"
			},
			pkt: tcp4(vipGone, 2902, 80, ack), action: xdpTX, svc: "gone", vip: map[string]uint64{"conntrack_repicks": 1}},

		// --- destination MAC: only frames addressed to the interface are
		// ours; the rest (a switch flooding another host's frames, the HA
		// standby) pass untouched and move no VIP or backend counter.
		{name: "vip syn to another host mac passes", pkt: toMAC(tcp4(vipWeb4, 3000, 80, syn), otherMACHead), action: xdpPass, global: notOurs, check: noEntry},
		{name: "vip syn to a mac differing only in its last two bytes passes", pkt: toMAC(tcp4(vipWeb4, 3001, 80, syn), otherMACTail), action: xdpPass, global: notOurs, check: noEntry},
		{name: "vip ack of an established flow to another host mac passes",
			setup: func(e *env, f *fixture) { send(e, tcp4(vipWeb4, 3002, 80, syn)) },
			pkt:   toMAC(tcp4(vipWeb4, 3002, 80, ack), otherMACTail), action: xdpPass, global: notOurs},
		{name: "vip ack without entry to another host mac passes", pkt: toMAC(tcp4(vipWeb4, 3003, 80, ack), otherMACHead), action: xdpPass, global: notOurs, check: noEntry},
		{name: "vip syn to broadcast passes", pkt: toMAC(tcp4(vipWeb4, 3004, 80, syn), broadcastMAC), action: xdpPass, global: notOurs, check: noEntry},
		{name: "ipv6 vip syn to a multicast mac passes", pkt: toMAC(pkt{src: client6, dst: vipWeb6, proto: 6, sport: 3005, dport: 443, tcpFlags: syn}, multicast6), action: xdpPass, global: notOurs, check: noEntry},
		{name: "vip udp to another host mac passes", pkt: toMAC(udp4(vipWeb4, 3006, 53, []byte("query")), otherMACHead), action: xdpPass, global: notOurs, check: noEntry},
		{name: "quic short header to another host mac passes", pkt: toMAC(udp4(vipQUIC, 3007, 443, quicShort(2)), otherMACTail), action: xdpPass, global: notOurs, check: noEntry},
		{name: "vlan tagged vip syn to another host mac passes", pkt: func() pkt { p := toMAC(tcp4(vipWeb4, 3008, 80, syn), otherMACHead); p.vlans = []uint16{42}; return p }(),
			action: xdpPass, global: notOurs, check: noEntry},
		{name: "vip syn of a service without backends to another host mac passes", pkt: toMAC(tcp4(vipNone, 3009, 80, syn), otherMACHead), action: xdpPass, global: notOurs},
		// Counted only on the VIP path: other packets pass as before.
		{name: "non-VIP tcp to another host mac passes uncounted", pkt: toMAC(tcp4(other4, 3010, 80, syn), otherMACHead), action: xdpPass},
		{name: "vip fragment to another host mac keeps its earlier reason", pkt: func() pkt { p := toMAC(tcp4(vipWeb4, 3011, 80, syn), broadcastMAC); p.fragOff = 0x2000; return p }(),
			action: xdpPass, global: map[string]uint64{"pass_frag_v4": 1}},
	}
	return fx
}

// counters flattens Stats into "global/x", "svc/s/x", "be/s/b/x".
func counters(st Stats) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range st.Global {
		out["global/"+k] = v
	}
	for _, s := range st.Services {
		for k, v := range uintFields(s) {
			out["svc/"+s.Name+"/"+k] = v
		}
		for _, b := range s.Backends {
			for k, v := range uintFields(b) {
				out["be/"+s.Name+"/"+b.Name+"/"+k] = v
			}
		}
	}
	return out
}

func uintFields(v any) map[string]uint64 {
	rv := reflect.ValueOf(v)
	out := map[string]uint64{}
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).Kind() == reflect.Uint64 {
			out[strings.Split(rv.Type().Field(i).Tag.Get("json"), ",")[0]] = rv.Field(i).Uint()
		}
	}
	return out
}

func TestXDPFixtures(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	fx := fixtures()
	if len(fx) < 40 {
		t.Fatalf("only %d fixtures", len(fx))
	}
	seen := map[string]bool{}
	for _, f := range fx {
		t.Run(f.name, func(t *testing.T) {
			if seen[f.name] {
				t.Fatalf("duplicate fixture name")
			}
			seen[f.name] = true
			e.t = t
			defer func() { e.t = nil }()
			if f.setup != nil {
				f.setup(e, f)
			}
			in := f.raw
			if in == nil {
				in = f.pkt.build()
			}
			before := counters(e.stats())
			act, out := e.run(in)
			after := counters(e.stats())

			var want *Backend
			if f.backend != "" {
				if f.backend == "maglev" {
					want = e.modelBackend(f.svc, f.pkt)
				} else {
					for i, b := range e.service(f.svc).Backends {
						if b.Name == f.backend {
							want = &e.service(f.svc).Backends[i]
						}
					}
				}
				if want == nil {
					t.Fatalf("no expected backend %q", f.backend)
				}
			}
			wantAct := f.action
			if wantAct == 0 && want != nil {
				wantAct = xdpTX
				if want.Mode == ModeLocal {
					wantAct = xdpPass
				}
			}
			if act != wantAct {
				t.Fatalf("action %s, want %s", actionNames[act], actionNames[wantAct])
			}

			// The frame: only the two MACs may change, and only on TX.
			if len(out) != len(in) {
				t.Fatalf("output is %d bytes, input %d", len(out), len(in))
			}
			if act == xdpTX {
				if !bytes.Equal(out[0:6], want.MAC) {
					t.Errorf("dst MAC %x, want backend %s %x", out[0:6], want.Name, want.MAC)
				}
				if !bytes.Equal(out[6:12], lbMAC) {
					t.Errorf("src MAC %x, want the interface's %x", out[6:12], lbMAC)
				}
				if !bytes.Equal(out[12:], in[12:]) {
					t.Errorf("bytes after the MACs changed")
				}
			} else if !bytes.Equal(out, in) {
				t.Errorf("packet changed on %s", actionNames[act])
			}
			checkGolden(t, f.name, act, in, out)

			beName := ""
			if want != nil {
				beName = want.Name
			}
			checkDelta(t, before, after, fixtureDelta(f.global, f.svc, f.vip, beName, len(in)))
			if f.check != nil {
				f.check(e, f)
			}
		})
	}
}

func TestFramesShorterThanEthernetNeverReachTheProgram(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	// A one-byte frame: the kernel refuses to run XDP on less than an
	// Ethernet header, as drivers drop runts before XDP.
	_, err := e.d.objs.XdpLb.Run(&ebpf.RunOptions{Data: []byte{0x45}, Repeat: 1})
	if err == nil {
		t.Fatal("a 1-byte frame ran; the program must then handle it (it only assumes the kernel's 14-byte minimum)")
	}
}

// fixtureDelta is how far the counters must move for one fixture packet
// of n bytes: the global ones in global, and unless svc (be) is empty,
// the VIP's packets, bytes and those in vip, and the backend's packets,
// bytes and new flow.
func fixtureDelta(global map[string]uint64, svc string, vip map[string]uint64, be string, n int) map[string]uint64 {
	want := map[string]uint64{}
	for k, v := range global {
		want["global/"+k] = v
	}
	if svc != "" {
		want["svc/"+svc+"/packets"] = 1
		want["svc/"+svc+"/bytes"] = uint64(n)
		for k, v := range vip {
			want["svc/"+svc+"/"+k] = v
		}
	}
	if be != "" {
		p := "be/" + svc + "/" + be + "/"
		want[p+"packets"] = 1
		want[p+"bytes"] = uint64(n)
		if vip["new_flows"] == 1 {
			want[p+"new_flows"] = 1
		}
	}
	return want
}

// checkDelta reports every counter (of before, after and want) that
// moved by other than want says.
func checkDelta(t *testing.T, before, after, want map[string]uint64) {
	t.Helper()
	keys := map[string]bool{}
	for k := range after {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		if d := after[k] - before[k]; d != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s moved by %d, want %d", k, d, want[k]))
		}
	}
	slices.Sort(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

func goldenName(name string) string { return goldenPath("xdp", name) }

func goldenPath(dir, name string) string {
	return xdpgolden.Path(filepath.Join("testdata", dir), name)
}

// checkGolden compares the run with testdata/xdp/<name>.golden; -update
// rewrites it.
func checkGolden(t *testing.T, name string, act uint32, in, out []byte) {
	t.Helper()
	checkGoldenFile(t, goldenName(name), act, in, out)
}

func checkGoldenFile(t *testing.T, path string, act uint32, in, out []byte) {
	t.Helper()
	xdpgolden.Check(t, path, act, in, out, *update, "go test ./l4/ -run 'TestXDPFixtures|TestEncap' -update")
}
