package l4

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/bpf"

	"github.com/portcullis-lb/portcullis/l4/flowhash"
	"github.com/portcullis-lb/portcullis/l4/internal/bpfconv"
	"github.com/portcullis-lb/portcullis/l4/maglev"
)

func sevenBackends() []Backend {
	var bs []Backend
	for i := range 7 {
		b := dsr(fmt.Sprintf("n%d", i), byte(0x80+i))
		b.Weight = uint32(1 + i%3)
		bs = append(bs, b)
	}
	return bs
}

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		b[0] = 0x20
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{byte(r.IntN(223) + 1), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
}

// The BPF program and l4/flowhash + l4/maglev must pick the same backend
// for every flow, or `maglev explain` lies and nodes disagree.
func TestBPFAndGoAgreeOnEveryFlowsBackend(t *testing.T) {
	for _, cfg := range []Config{
		{ConntrackSize: 16384, HashSeed: 0, MaglevSize: 65537},
		{ConntrackSize: 16384, HashSeed: 0xdeadbeef, MaglevSize: 251},
	} {
		t.Run(fmt.Sprintf("seed %#x M %d", cfg.HashSeed, cfg.MaglevSize), func(t *testing.T) {
			v4 := netip.MustParseAddr("203.0.113.1")
			v6 := netip.MustParseAddr("2001:db8:1::1")
			svcs := []Service{
				{Name: "tcp4", Addr: v4, Port: 443, Proto: 6, Backends: sevenBackends()},
				{Name: "udp4", Addr: v4, Port: 443, Proto: 17, Backends: sevenBackends()},
				{Name: "tcp6", Addr: v6, Port: 443, Proto: 6, Backends: sevenBackends()},
			}
			e := newEnv(t, cfg, svcs)
			tables := map[string]*maglev.Table{}
			for i := range svcs {
				tab, err := maglev.New(maglevInput(&svcs[i]), uint64(cfg.MaglevSize), uint64(cfg.HashSeed))
				if err != nil {
					t.Fatal(err)
				}
				tables[svcs[i].Name] = tab
			}
			r := rand.New(rand.NewPCG(1, uint64(cfg.HashSeed)))
			hits := map[string]int{}
			for i := range 3000 {
				s := &svcs[i%3]
				p := pkt{src: randAddr(r, s.Addr.Is6()), dst: s.Addr, proto: s.Proto, sport: uint16(r.IntN(65535) + 1), dport: s.Port, tcpFlags: syn}
				act, out := e.run(p.build())
				if act != xdpTX {
					t.Fatalf("flow %d: %s", i, actionNames[act])
				}
				h := flowhash.Hash(cfg.HashSeed, p.src, p.dst, p.sport, p.dport, p.proto)
				want := s.Backends[tables[s.Name].Lookup(h)]
				if !bytes.Equal(out[0:6], want.MAC) {
					t.Fatalf("%s flow %s:%d -> %s:%d: BPF sent to %x, Go says %s (%x)", s.Name, p.src, p.sport, p.dst, p.dport, out[0:6], want.Name, want.MAC)
				}
				hits[want.Name]++
			}
			if len(hits) != 7 {
				t.Fatalf("only %d of 7 backends got flows: %v", len(hits), hits)
			}
		})
	}
}

// An Apply with nothing changed must write nothing: it runs on every
// health check result.
func TestApplyIsIdempotent(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	w := e.d.writes
	e.apply(fixtureServices())
	if e.d.writes != w {
		t.Fatalf("second Apply of the same services made %d map writes", e.d.writes-w)
	}
	// Flapping one backend's health touches its record and one table only.
	w = e.d.writes
	e.apply(withBackend(e, "web4", "b2", func(b *Backend) bool { b.Down = true; return true }))
	if n := e.d.writes - w; n != 3 { // table buffer, table pointer, record
		t.Fatalf("marking one backend down made %d map writes, want 3", n)
	}
}

func innerID(t *testing.T, m *ebpf.Map) uint32 {
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

// After Apply the new table is wholly in force, and the buffer written
// next is the one packets no longer see.
func TestApplyFlipsMaglevBuffers(t *testing.T) {
	cfg := fixtureConfig()
	cfg.MaglevSize = 251
	svcs := func(weights ...uint32) []Service {
		bs := sevenBackends()
		for i := range bs {
			bs[i].Weight = weights[i%len(weights)]
		}
		return []Service{{Name: "web", Addr: vipWeb4, Port: 80, Proto: 6, Backends: bs}}
	}
	e := newEnv(t, cfg, svcs(1))
	v := e.d.st.vips[vipKey(vipWeb4, 80, 6)]
	installed := func() uint32 {
		var id uint32
		if err := e.d.objs.MaglevTables.Lookup(v.meta.VipNum, &id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	check := func(step string, s []Service) {
		t.Helper()
		if got, want := installed(), innerID(t, v.tables[v.active]); got != want {
			t.Fatalf("%s: installed map %d, want active buffer %d", step, got, want)
		}
		tab, err := maglev.New(maglevInput(&s[0]), 251, uint64(cfg.HashSeed))
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]uint32{}
		for name, bs := range v.backends {
			ids[name] = bs.id
		}
		for slot := range uint32(251) {
			var chunk [maglevChunk]uint16
			if err := v.tables[v.active].Lookup(slot/maglevChunk, &chunk); err != nil {
				t.Fatal(err)
			}
			got := uint32(chunk[slot%maglevChunk])
			want := uint32(0)
			if i := tab.Slots[slot]; i >= 0 {
				want = ids[s[0].Backends[i].Name]
			}
			if got != want {
				t.Fatalf("%s: slot %d holds backend id %d, want %d", step, slot, got, want)
			}
		}
	}
	check("first apply", svcs(1))
	first := v.active

	s2 := svcs(1, 2)
	e.apply(s2)
	check("second apply", s2)
	if v.active == first {
		t.Fatal("second table written into the buffer packets were using")
	}
	s3 := svcs(3, 1, 1)
	e.apply(s3)
	check("third apply", s3)
	if v.active != first {
		t.Fatal("third table not written into the buffer freed by the second flip")
	}
}

func TestApplyRemovesServicesAndReusesTheirIDs(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	p := tcp4(vipWeb4, 3000, 80, syn)
	if act, _ := e.run(p.build()); act != xdpTX {
		t.Fatalf("before removal: %s", actionNames[act])
	}
	e.apply(fixtureServices()[1:]) // web4 gone
	if act, _ := e.run(tcp4(vipWeb4, 3000, 80, ack).build()); act != xdpPass {
		t.Fatalf("after removal a packet of an old flow got %s, want XDP_PASS (no longer a VIP)", actionNames[act])
	}
	if act, _ := e.run(udp4(vipWeb4, 3001, 53, []byte("q")).build()); act != xdpTX {
		t.Fatalf("another service on the same address broke: %s", actionNames[act])
	}
	// Re-adding it balances again with fresh ids and no stale state.
	e.apply(fixtureServices())
	if act, _ := e.run(tcp4(vipWeb4, 3000, 80, ack).build()); act != xdpTX {
		t.Fatalf("after re-adding: %s", actionNames[act])
	}
	st := e.stats()
	for _, s := range st.Services {
		if s.Name == "web4" && s.Packets != 1 {
			t.Fatalf("re-added service starts with %d packets, want its counters reset", s.Packets)
		}
	}
}

func TestApplyRejectsInvalidServicesAndChangesNothing(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	cases := map[string]func(s []Service) []Service{
		"duplicate name":       func(s []Service) []Service { s[1].Name = s[0].Name; return s },
		"duplicate vip":        func(s []Service) []Service { s[1].Port, s[1].Proto = s[0].Port, s[0].Proto; return s },
		"bad proto":            func(s []Service) []Service { s[0].Proto = 1; return s },
		"quic over tcp":        func(s []Service) []Service { s[0].QUIC = true; return s },
		"port zero":            func(s []Service) []Service { s[0].Port = 0; return s },
		"no address":           func(s []Service) []Service { s[0].Addr = netip.Addr{}; return s },
		"dsr without mac":      func(s []Service) []Service { s[0].Backends[0].MAC = nil; return s },
		"unknown mode":         func(s []Service) []Service { s[0].Backends[0].Mode = "ipip"; return s },
		"duplicate backend":    func(s []Service) []Service { s[0].Backends[1].Name = s[0].Backends[0].Name; return s },
		"duplicate quic node":  func(s []Service) []Service { s[3].Backends[1].QUICNodeID = 1; return s },
		"backend without name": func(s []Service) []Service { s[0].Backends[0].Name = ""; return s },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			w := e.d.writes
			err := e.d.Apply(mutate(fixtureServices()))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if e.d.writes != w {
				t.Fatal("a rejected Apply wrote to the maps")
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	// Checked before anything is loaded: no root needed.
	for name, cfg := range map[string]Config{
		"maglev size not prime": {MaglevSize: 65536},
		"unknown mode":          {Mode: "offload"},
		"negative udp timeout":  {UDPTimeout: -1},
	} {
		if _, err := newDataplane(cfg, quietLog(), nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestStatsCountConntrackEntriesAndEvictions(t *testing.T) {
	cfg := fixtureConfig()
	cfg.ConntrackSize = 256
	e := newEnv(t, cfg, fixtureServices())
	// A SYN flood of 4x the table: the LRU keeps at most its capacity
	// and the difference shows up as evictions.
	for i := range 1024 {
		e.run(tcp4(vipWeb4, uint16(10000+i), 80, syn).build())
	}
	st := e.stats()
	c := st.Conntrack
	if c.Inserts != 1024 || c.Entries == 0 || c.Entries > 256+64 || c.EvictionsEstimate != c.Inserts-c.Entries {
		t.Fatalf("conntrack stats %+v after 1024 new flows into 256 slots", c)
	}
}

// Two VIPs whose (address, port) fold to the same vip_index slot must
// both work, through the hash fallback, and a third address on that fold
// that is no VIP must still pass.
func TestVIPsSharingAnIndexSlotBothBalance(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.10")
	want := filterIndex(vipKey(a, 80, 6), 65536)
	var same []netip.Addr
	for i := 0; len(same) < 2 && i < 1<<24; i++ {
		b := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if filterIndex(vipKey(b, 80, 6), 65536) == want {
			same = append(same, b)
		}
	}
	if len(same) < 2 {
		t.Fatal("no colliding address found")
	}
	svcs := []Service{
		{Name: "a", Addr: a, Port: 80, Proto: 6, Backends: []Backend{dsr("a1", 1)}},
		{Name: "b", Addr: same[0], Port: 80, Proto: 6, Backends: []Backend{dsr("b1", 2)}},
	}
	e := newEnv(t, fixtureConfig(), svcs)
	if got := e.d.st.index[want]; got != vipIndexCollide {
		t.Fatalf("vip_index[%d] = %d, want the collision marker", want, got)
	}
	for _, c := range []struct {
		dst  netip.Addr
		act  uint32
		dmac byte
	}{{a, xdpTX, 1}, {same[0], xdpTX, 2}, {same[1], xdpPass, 0}} {
		act, out := e.run(tcp4(c.dst, 4000, 80, syn).build())
		if act != c.act || (act == xdpTX && out[5] != c.dmac) {
			t.Errorf("%s: %s to %x, want %s", c.dst, actionNames[act], out[0:6], actionNames[c.act])
		}
	}
	// Removing one VIP turns the slot back into a direct entry.
	e.apply(svcs[:1])
	if got := e.d.st.index[want]; got == vipIndexCollide || got == 0 {
		t.Fatalf("vip_index[%d] = %#x after removing one VIP", want, got)
	}
	if act, _ := e.run(tcp4(same[0], 4001, 80, syn).build()); act != xdpPass {
		t.Errorf("removed VIP still balanced: %s", actionNames[act])
	}
	if act, _ := e.run(tcp4(a, 4002, 80, syn).build()); act != xdpTX {
		t.Errorf("remaining VIP: %s", actionNames[act])
	}
}

func TestCollectorExportsConsistentMetrics(t *testing.T) {
	e := newEnv(t, fixtureConfig(), fixtureServices())
	e.run(tcp4(vipWeb4, 5000, 80, syn).build())
	e.run(tcp4(vipWeb4, 5001, 80, syn).build()[:30]) // truncated
	e.run(toMAC(tcp4(vipWeb4, 5002, 80, syn), otherMACHead).build())
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.d.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"portcullis_l4_service_packets_total,service=web4":                  1,
		"portcullis_l4_service_new_flows_total,service=web4":                1,
		"portcullis_l4_exceptions_total,reason=pass_trunc_l3":               1,
		"portcullis_l4_exceptions_total,reason=pass_not_ours":               1,
		"portcullis_l4_conntrack_capacity":                                  4096,
		"portcullis_l4_backend_up,backend=b1,service=web4":                  1,
		"portcullis_l4_service_drop_no_backend_total,service=empty":         0,
		"portcullis_l4_backend_packets_total,backend=self,service=l7":       0,
		"portcullis_l4_service_conntrack_misses_non_syn_total,service=dns4": 0,
	} {
		v, ok := got[name]
		if !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// Past SYNFloodRate SYNs in a second on one CPU, a SYN is balanced by
// Maglev without a conntrack entry, and the flow's first non-SYN packet
// opens the entry instead.
func TestSYNFloodGuardDefersEntriesToTheACK(t *testing.T) {
	// The budget is per CPU: stay on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var one unix.CPUSet
	for c := range 1024 {
		if set.IsSet(c) {
			one.Set(c)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &set)

	const rate = 100
	cfg := fixtureConfig()
	cfg.SYNFloodRate = rate
	e := newEnv(t, cfg, fixtureServices())
	web := e.d.st.vips[vipKey(vipWeb4, 80, 6)].meta.VipNum
	var p pkt
	unpinned := -1
	// The window's clock is read lazily, so the first window may begin
	// only when the budget is first crossed: at most 2*rate+1 SYNs
	// insert before one is turned away.
	for i := range 4*rate + 64 {
		p = tcp4(vipWeb4, uint16(20000+i), 80, syn)
		act, out := e.run(p.build())
		want := e.modelBackend("web4", p)
		if act != xdpTX || !bytes.Equal(out[0:6], want.MAC) {
			t.Fatalf("SYN %d: %s to %x, want XDP_TX to %s", i, actionNames[act], out[0:6], want.Name)
		}
		if st := e.stats(); st.Global["ct_syn_unpinned"] > 0 {
			unpinned = i
			break
		}
	}
	if unpinned < rate || unpinned > 2*rate+1 {
		t.Fatalf("first SYN without an entry was number %d, want %d..%d", unpinned, rate, 2*rate+1)
	}
	st := e.stats()
	if st.Conntrack.Inserts != uint64(unpinned) || st.Global["ct_syn_unpinned"] != 1 {
		t.Fatalf("after %d SYNs: %d inserts, %d unpinned; want %d and 1", unpinned+1, st.Conntrack.Inserts, st.Global["ct_syn_unpinned"], unpinned)
	}
	k := ctKey(p.src, p.dst, p.sport, p.dport, p.proto)
	var v bpf.LBCtEntry
	if err := e.d.objs.Conntrack.Lookup(&k, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("the turned-away SYN has an entry (%v)", err)
	}
	// Its handshake ACK opens the entry, on the backend the SYN went to.
	var before []bpf.LBVipCounters
	if err := e.d.objs.VipStats.Lookup(web, &before); err != nil {
		t.Fatal(err)
	}
	ackp := p
	ackp.tcpFlags = ack
	if act, _ := e.run(ackp.build()); act != xdpTX {
		t.Fatalf("ACK: %s", actionNames[act])
	}
	if err := e.d.objs.Conntrack.Lookup(&k, &v); err != nil {
		t.Fatalf("the ACK opened no entry: %v", err)
	}
	if v.BackendId != e.d.st.vips[vipKey(vipWeb4, 80, 6)].backends[e.modelBackend("web4", p).Name].id {
		t.Fatalf("entry names backend id %d, not the SYN's backend", v.BackendId)
	}
	var after []bpf.LBVipCounters
	if err := e.d.objs.VipStats.Lookup(web, &after); err != nil {
		t.Fatal(err)
	}
	var b, a bpf.LBVipCounters
	bpfconv.SumInto(&b, before)
	bpfconv.SumInto(&a, after)
	if a.NewFlows-b.NewFlows != 1 || a.CtMissNonSyn-b.CtMissNonSyn != 1 {
		t.Fatalf("ACK counted new_flows +%d, misses_non_syn +%d; want +1 each", a.NewFlows-b.NewFlows, a.CtMissNonSyn-b.CtMissNonSyn)
	}
}
