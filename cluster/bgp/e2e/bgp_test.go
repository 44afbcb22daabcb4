//go:build linux

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/cluster/bgp"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// Every wait of these tests is bounded by one of these.
const (
	announceWithin = 30 * time.Second // daemon start → route on the router
	withdrawWithin = 10 * time.Second // session closed → route gone
	exchangeWithin = 3 * time.Second
)

// testTimers: short timers, so a test that fails on a missing withdraw
// fails within seconds rather than the default 90s hold time.
var testTimers = Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second}

type bgpTest struct {
	t     *testing.T
	lab   *Lab
	nodes map[int]*Node
}

func xdpMode() string {
	if m := os.Getenv("PORTCULLIS_E2E_XDP_MODE"); m != "" {
		return m
	}
	return "generic"
}

// speaker: PORTCULLIS_BGP_E2E_SPEAKER=bird runs the tests with bird as
// each node's speaker (the lab's reference), default the daemon's own BGP.
func speaker() string {
	if s := os.Getenv("PORTCULLIS_BGP_E2E_SPEAKER"); s != "" {
		return s
	}
	return SpeakerPortcullis
}

func newBGPTest(t *testing.T, o Options) *bgpTest {
	t.Helper()
	nl := netlab.New(t, netlab.Options{Prefix: "bgpe", StopGrace: 3 * time.Second})
	if _, _, err := FindBird(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if d := os.Getenv("PORTCULLIS_E2E_LOGDIR"); d != "" {
		dir = filepath.Join(d, fmt.Sprintf("%s-%d", t.Name(), time.Now().Unix()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.Bin, o.Dir, o.XDPMode, o.Speaker = testbin.Portcullis(t), dir, xdpMode(), speaker()
	o.Cluster = os.Getenv("PORTCULLIS_BGP_E2E_CLUSTER") != "0"
	if o.Timers == (Timers{}) {
		o.Timers = testTimers
	}
	lab, err := Build(nl, o)
	if err != nil {
		e2etest.SkipIfUnsupported(t, "the lab", err)
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	e2etest.RequireXDP(t, lab.Node(1), o.XDPMode)
	if err := lab.StartBird(); err != nil {
		t.Fatal(err)
	}
	bt := &bgpTest{t: t, lab: lab, nodes: map[int]*Node{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, args := range [][]string{{"show", "protocols", "all"}, {"show", "route", "all"}} {
				out, err := lab.Birdc(args...)
				t.Logf("birdc %s (err %v):\n%s", strings.Join(args, " "), err, out)
			}
			t.Logf("router bird log:\n%s", e2etest.Tail(lab.Bird.Logs(), 4096))
			for i := 1; i <= len(lab.Nodes); i++ {
				if n := bt.nodes[i]; n != nil {
					if !n.Proc.Exited() {
						n.Proc.Kill(syscall.SIGQUIT) // goroutine dump, in case it is stuck
						n.Proc.Wait()
					}
					t.Logf("%s log, last 6 KiB:\n%s", n.Name, e2etest.Tail(n.Logs(), 6144))
				}
			}
		}
		// In parallel: a SIGTERMed node withdraws, then waits out the
		// withdraw settle (2s) and leaves the cluster before it exits.
		var wg sync.WaitGroup
		for _, n := range bt.nodes {
			wg.Go(func() { n.Stop(6 * time.Second) })
		}
		wg.Wait()
	})
	return bt
}

// start starts node i and waits until it is ready.
func (bt *bgpTest) start(i int) *Node {
	bt.t.Helper()
	n, err := bt.lab.StartNode(i)
	if err != nil {
		bt.t.Fatal(err)
	}
	bt.nodes[i] = n
	return n
}

// nexthops waits until the router's route for the VIP has exactly the
// given nodes as next hops.
func (bt *bgpTest) nexthops(within time.Duration, idx ...int) time.Duration {
	bt.t.Helper()
	d, err := bt.lab.WaitNexthops(NodeAddrs(idx...), within, 0)
	if err != nil {
		bt.t.Fatal(err)
	}
	return d
}

// openFlows opens n established flows and closes them at the end of the
// test (an open socket would keep the client's namespace alive).
func (bt *bgpTest) openFlows(n int) []*e2etest.Flow {
	bt.t.Helper()
	flows, err := OpenFlows(bt.t.Context(), bt.lab.Client, n, 16, exchangeWithin)
	bt.t.Cleanup(func() { CloseFlows(flows) })
	if err != nil {
		bt.t.Fatal(err)
	}
	return flows
}

// checkFlows fails the test unless every flow still answers from its
// backend.
func (bt *bgpTest) checkFlows(when string, flows []*e2etest.Flow) {
	bt.t.Helper()
	c := CheckFlows(flows, 16, exchangeWithin)
	if c.OK != c.Total {
		bt.t.Errorf("%s: %s", when, c.Failures())
		return
	}
	bt.t.Logf("%s: all %d flows still answer from their backend", when, c.Total)
}

// newConns fails the test unless n new connections all get an answer.
func (bt *bgpTest) newConns(when string, n int) map[string]int {
	bt.t.Helper()
	res := e2etest.RunConns(bt.t.Context(), bt.lab.Client, VIPAddr(), n, 16, 2, exchangeWithin)
	if len(res.Errs) > 0 || res.Skipped > 0 {
		bt.t.Fatalf("%s: %s", when, res.Failures(n))
	}
	return res.PerBackend
}

// checkAPI checks, for up to 5s, that the daemon's BGP view and metrics
// say: the router's session established with the configured hold time
// negotiated, and the VIP announced or not (with reason, if not empty).
// A mismatch is a test error, not fatal: the router's route is the ground
// truth, the API only reports it.
func (bt *bgpTest) checkAPI(n *Node, announced bool, reason string) {
	bt.t.Helper()
	if bt.lab.Opts.Speaker != SpeakerPortcullis {
		return
	}
	var last string
	deadline := time.Now().Add(5 * time.Second)
	for {
		last = bt.apiMismatch(n, announced, reason)
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			bt.t.Errorf("%s: %s", n.Name, last)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiMismatch is what checkAPI finds wrong, or "".
func (bt *bgpTest) apiMismatch(n *Node, announced bool, reason string) string {
	router := RouterNodeSide.Addr().String()
	v, err := n.BGP()
	const path = "/api/v1/bgp"
	if err != nil {
		return fmt.Sprintf("BGP view: %v", err)
	}
	i := slices.IndexFunc(v.Peers, func(p bgp.PeerStatus) bool { return p.Address == router })
	if i < 0 {
		return fmt.Sprintf("GET %s: no peer %s: %+v", path, router, v)
	}
	p := v.Peers[i]
	hold := uint64(secs(bt.lab.Opts.Timers.hold()))
	if p.ASN != RouterASN || p.State != "established" || p.HoldTime != hold {
		return fmt.Sprintf("GET %s: peer %+v, want AS %d, established, hold_time_s %d", path, p, RouterASN, hold)
	}
	if bt.lab.Opts.Timers.BFD && p.BFD != "up" {
		return fmt.Sprintf("GET %s: peer %+v, want bfd up", path, p)
	}
	j := slices.IndexFunc(v.VIPs, func(x bgp.VIPStatus) bool { return x.VIP == VIPName })
	if j < 0 {
		return fmt.Sprintf("GET %s: no VIP %s: %+v", path, VIPName, v)
	}
	x := v.VIPs[j]
	if x.Prefix != VIPPrefix.String() || x.Announced != announced || reason != "" && string(x.Reason) != reason {
		return fmt.Sprintf("GET %s: VIP %+v, want prefix %s, announced %v, reason %q", path, x, VIPPrefix, announced, reason)
	}
	m, err := n.Metrics()
	if err != nil {
		return fmt.Sprintf("metrics: %v", err)
	}
	if v, ok := m.Get("portcullis_bgp_peer_established", "peer="+router); !ok || v != 1 {
		return fmt.Sprintf("portcullis_bgp_peer_established{peer=%q} = %v (present %v), want 1", router, v, ok)
	}
	want := 0.0
	if announced {
		want = 1
	}
	if v, ok := m.Get("portcullis_bgp_announced", "vip="+VIPName); !ok || v != want {
		return fmt.Sprintf("portcullis_bgp_announced{vip=%q} = %v (present %v), want %v", VIPName, v, ok, want)
	}
	return ""
}

// counters returns every running node's VIP counters by node index.
func (bt *bgpTest) counters(idx ...int) map[int]Counters {
	bt.t.Helper()
	out := map[int]Counters{}
	for _, i := range idx {
		c, err := bt.nodes[i].Counters()
		if err != nil {
			bt.t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// TestECMPAcrossThreeNodes: three nodes announce the VIP, the router
// installs one route with the three of them as next hops, and 200 new
// connections from one client all get an answer, spread over the three
// nodes (their fast-path counters) and the three backends.
func TestECMPAcrossThreeNodes(t *testing.T) {
	bt := newBGPTest(t, Options{})
	for i := 1; i <= 3; i++ {
		bt.start(i)
	}
	d := bt.nexthops(announceWithin, 1, 2, 3)
	t.Logf("router: %s via %v (%v after the last node was ready)", VIPPrefix, NodeAddrs(1, 2, 3), d.Round(time.Millisecond))
	for i := 1; i <= 3; i++ {
		bt.checkAPI(bt.nodes[i], true, "serving")
	}
	if bt.lab.Opts.Cluster {
		for i := 1; i <= 3; i++ {
			n := bt.nodes[i]
			e2etest.Eventually(t, n.Name+" sees the 3 nodes alive in the cluster", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
				m, err := n.AliveMembers()
				return err == nil && slices.Equal(m, []string{"lb1", "lb2", "lb3"}), fmt.Sprintf("%v %v", m, err)
			})
		}
	}

	before := bt.counters(1, 2, 3)
	const conns = 200
	perBackend := bt.newConns("200 connections over ECMP", conns)
	after := bt.counters(1, 2, 3)

	var spread []string
	total := 0.0
	for i := 1; i <= 3; i++ {
		flows := after[i].NewFlows - before[i].NewFlows
		pkts := after[i].Packets - before[i].Packets
		total += flows
		spread = append(spread, fmt.Sprintf("lb%d %v flows/%v packets", i, flows, pkts))
		if flows == 0 || pkts == 0 {
			t.Errorf("lb%d's fast path saw no connection (new flows %v, packets %v): ECMP did not spread over it", i, flows, pkts)
		}
	}
	t.Logf("per node: %s; per backend: %v", strings.Join(spread, ", "), perBackend)
	if total < conns {
		t.Errorf("the nodes counted %v new flows for %d connections", total, conns)
	}
	for _, be := range bt.lab.Backends {
		if perBackend[be.Name] == 0 {
			t.Errorf("backend %s answered none of %d connections: %v", be.Name, conns, perBackend)
		}
	}
}

// TestNodeLossKeepsFlows: with 60 established flows over three nodes,
// SIGKILL of lb2 closes its session and the router drops it from the
// ECMP group at once; new connections work and every established flow
// (those moved from lb2, and those the hash-threshold rehash moved between
// lb1 and lb3) still answers from the same backend, picked again by
// Maglev on a node with no conntrack entry for it. Then SIGTERM of lb3:
// its route is withdrawn while the process still runs (withdraw before
// drain), and again no flow breaks.
func TestNodeLossKeepsFlows(t *testing.T) {
	bt := newBGPTest(t, Options{})
	for i := 1; i <= 3; i++ {
		bt.start(i)
	}
	bt.nexthops(announceWithin, 1, 2, 3)
	flows := bt.openFlows(60)
	t.Logf("60 flows: %v", PerBackend(flows))
	before := bt.counters(1, 3)

	lb2 := bt.nodes[2]
	if err := lb2.Kill(); err != nil {
		t.Fatal(err)
	}
	d := bt.nexthops(withdrawWithin, 1, 3)
	t.Logf("SIGKILL lb2: the router dropped it %v later", d.Round(time.Millisecond))
	bt.newConns("new connections after lb2 died", 30)
	bt.checkFlows("after lb2's SIGKILL", flows)
	after := bt.counters(1, 3)
	moved := 0.0
	for _, i := range []int{1, 3} {
		m := after[i].MissesNonSYN - before[i].MissesNonSYN
		moved += m
		t.Logf("lb%d: %v non-SYN conntrack misses (packets of flows it took over)", i, m)
	}
	if moved == 0 {
		t.Errorf("lb1 and lb3 counted no packet of a flow they had no conntrack entry for: no flow moved, so the rehash was not exercised")
	}

	// SIGTERM: the withdraw must come before the exit.
	lb3 := bt.nodes[3]
	termed := time.Now()
	if err := lb3.Term(); err != nil {
		t.Fatal(err)
	}
	var withdrawnAt time.Time
	aliveAtWithdraw := false
	for time.Since(termed) < withdrawWithin+5*time.Second {
		nh, err := bt.lab.VIPNexthops()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(nh, NodeAddr(3).Addr()) {
			withdrawnAt = time.Now()
			aliveAtWithdraw = !lb3.Proc.Exited()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if withdrawnAt.IsZero() {
		t.Fatalf("SIGTERM lb3: still a next hop of %s after %v", VIPPrefix, withdrawWithin+5*time.Second)
	}
	select {
	case <-lb3.Proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("SIGTERM lb3: still running 20s later")
	}
	exited := time.Now()
	t.Logf("SIGTERM lb3: route withdrawn after %v, process exited after %v (exit: %v)",
		withdrawnAt.Sub(termed).Round(time.Millisecond), exited.Sub(termed).Round(time.Millisecond), lb3.Proc.Wait())
	switch {
	case bt.lab.Opts.Speaker != SpeakerPortcullis:
		// The reference bird speaker withdraws by closing its session;
		// the ordering is the daemon's.
	case !aliveAtWithdraw:
		t.Errorf("SIGTERM lb3: the route lost lb3 only once the process had exited: the daemon did not withdraw before exiting (the session just closed)")
	case exited.Sub(withdrawnAt) < 500*time.Millisecond:
		t.Errorf("SIGTERM lb3: the process exited %v after its route was withdrawn: no settle for the routers to converge", exited.Sub(withdrawnAt).Round(time.Millisecond))
	}
	if err := lb3.Proc.Wait(); err != nil {
		t.Errorf("SIGTERM lb3: exit status %v, want 0", err)
	}
	bt.nexthops(withdrawWithin, 1)
	bt.checkFlows("after lb3's SIGTERM", flows)
	bt.newConns("new connections with lb1 alone", 20)
}

// TestNodeJoinKeepsFlows: with two nodes announcing and 60 established
// flows, a third node starts and joins the ECMP group; every established
// flow still answers from its backend (those the rehash moved to lb3 are
// picked again by Maglev there) and new connections reach lb3 too.
func TestNodeJoinKeepsFlows(t *testing.T) {
	bt := newBGPTest(t, Options{})
	bt.start(1)
	bt.start(2)
	bt.nexthops(announceWithin, 1, 2)
	flows := bt.openFlows(60)
	t.Logf("60 flows: %v", PerBackend(flows))

	bt.start(3)
	d := bt.nexthops(announceWithin, 1, 2, 3)
	t.Logf("lb3 joined the ECMP group %v after it was ready", d.Round(time.Millisecond))
	bt.checkAPI(bt.nodes[3], true, "serving")
	before := bt.counters(3)
	bt.checkFlows("after lb3 joined", flows)
	mid := bt.counters(3)
	t.Logf("lb3 took over established flows: %v non-SYN conntrack misses", mid[3].MissesNonSYN-before[3].MissesNonSYN)
	if mid[3].MissesNonSYN == before[3].MissesNonSYN {
		t.Errorf("lb3 took over none of the 60 established flows: the rehash was not exercised")
	}
	bt.newConns("new connections with three nodes", 60)
	after := bt.counters(3)
	if after[3].NewFlows == mid[3].NewFlows {
		t.Errorf("lb3 got none of 60 new connections")
	}
}

// TestNodeVanishesWithBFD: with BFD (100ms×3) on every session and a 9s
// hold time, a node that vanishes from the network (eth0 down, then
// SIGKILL: no FIN, no NOTIFICATION) is dropped from the ECMP group by BFD
// well before the hold time; the established flows survive, and when the
// node comes back (link up, daemon restarted) it rejoins and they still
// answer from their backends.
func TestNodeVanishesWithBFD(t *testing.T) {
	bt := newBGPTest(t, Options{Timers: Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second, BFD: true, BFDInterval: 100 * time.Millisecond, BFDMult: 3}})
	for i := 1; i <= 3; i++ {
		bt.start(i)
	}
	bt.nexthops(announceWithin, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		bt.checkAPI(bt.nodes[i], true, "serving")
	}
	flows := bt.openFlows(60)

	if err := bt.nodes[2].Crash(); err != nil {
		t.Fatal(err)
	}
	d := bt.nexthops(withdrawWithin, 1, 3)
	t.Logf("lb2 vanished (link down + SIGKILL): the router dropped it %v later", d.Round(time.Millisecond))
	if d > 2*time.Second {
		t.Errorf("lb2 dropped %v after it vanished: BFD 100ms×3 should notice in about 300ms (the hold time is 9s)", d.Round(time.Millisecond))
	}
	bt.checkFlows("after lb2 vanished", flows)

	if err := bt.lab.RestoreLink(2); err != nil {
		t.Fatal(err)
	}
	bt.start(2)
	d = bt.nexthops(announceWithin, 1, 2, 3)
	t.Logf("lb2 back: in the ECMP group %v after its daemon was ready", d.Round(time.Millisecond))
	bt.checkAPI(bt.nodes[2], true, "serving")
	bt.checkFlows("after lb2 came back", flows)
}

// TestWithdrawWhenNoBackend: with a tcp health check on the backends, a
// node announces the VIP only while it has a usable backend: one backend
// down changes nothing at the router, all three down withdraw the VIP on
// every node (the route disappears, the API says no_usable_backend), and
// the backends' return announces it again.
func TestWithdrawWhenNoBackend(t *testing.T) {
	if speaker() != SpeakerPortcullis {
		t.Skip("the reference bird speaker does not follow the daemon's health")
	}
	bt := newBGPTest(t, Options{HealthChecks: true})
	for i := 1; i <= 3; i++ {
		bt.start(i)
	}
	bt.nexthops(announceWithin, 1, 2, 3)
	backendUp := func(be string, want float64) {
		t.Helper()
		for i := 1; i <= 3; i++ {
			n := bt.nodes[i]
			e2etest.Eventually(t, fmt.Sprintf("%s: backend %s up=%v", n.Name, be, want), 10*time.Second, 50*time.Millisecond, func() (bool, string) {
				m, err := n.Metrics()
				if err != nil {
					return false, err.Error()
				}
				v, ok := m.Get("portcullis_l4_backend_up", "service="+VIPName, "backend="+be)
				return ok && v == want, fmt.Sprintf("portcullis_l4_backend_up = %v (present %v)", v, ok)
			})
		}
	}

	bt.lab.Echo(1).Stop()
	backendUp("be1", 0)
	perBackend := bt.newConns("new connections with be1 down", 30)
	if perBackend["be1"] > 0 {
		t.Errorf("be1 is down but answered %d connections: %v", perBackend["be1"], perBackend)
	}
	if nh, err := bt.lab.VIPNexthops(); err != nil || !slices.Equal(nh, NodeAddrs(1, 2, 3)) {
		t.Errorf("with be1 down the route should keep its 3 next hops: %v %v", nh, err)
	}

	bt.lab.Echo(2).Stop()
	bt.lab.Echo(3).Stop()
	d := bt.nexthops(withdrawWithin)
	t.Logf("every backend down: the route is gone %v later", d.Round(time.Millisecond))
	for i := 1; i <= 3; i++ {
		bt.checkAPI(bt.nodes[i], false, "no_usable_backend")
	}

	for i := 1; i <= 3; i++ {
		if err := bt.lab.Echo(i).Start(); err != nil {
			t.Fatal(err)
		}
	}
	d = bt.nexthops(announceWithin, 1, 2, 3)
	t.Logf("backends back: the route has its 3 next hops again %v later", d.Round(time.Millisecond))
	for i := 1; i <= 3; i++ {
		bt.checkAPI(bt.nodes[i], true, "serving")
	}
	bt.newConns("new connections with the backends back", 30)
}

// TestFloatingAndBGPVIPsCoexist: one config carries both modes. The BGP
// VIP is announced by all three nodes (ECMP); FloatVIP floats in the
// cluster (equal priorities: the smallest name, lb1, holds it), is not
// announced, and is reached through the router by ARP to its owner.
// Killing the owner moves FloatVIP to another node by the cluster's
// election while the router drops that node's BGP next hop; both VIPs
// keep answering.
func TestFloatingAndBGPVIPsCoexist(t *testing.T) {
	if speaker() != SpeakerPortcullis || os.Getenv("PORTCULLIS_BGP_E2E_CLUSTER") == "0" {
		t.Skip("needs the daemon's own BGP and its cluster section")
	}
	bt := newBGPTest(t, Options{FloatingVIP: true})
	for i := 1; i <= 3; i++ {
		bt.start(i)
	}
	bt.nexthops(announceWithin, 1, 2, 3)
	owner := func(n *Node) string {
		var cv struct {
			Owners map[string]string `json:"owners"`
		}
		if err := n.GetJSON("/api/v1/cluster", &cv); err != nil {
			return "error: " + err.Error()
		}
		return cv.Owners[FloatVIPName]
	}
	e2etest.Eventually(t, "lb1 to hold the floating VIP", announceWithin, 50*time.Millisecond, func() (bool, string) {
		o := owner(bt.nodes[2])
		return o == "lb1", "owner " + o
	})
	floatAddr := netip.AddrPortFrom(FloatVIP, VIPPort).String()
	conns := func(when string) {
		t.Helper()
		res := e2etest.RunConns(t.Context(), bt.lab.Client, floatAddr, 30, 8, 2, exchangeWithin)
		if len(res.Errs) > 0 || res.Skipped > 0 {
			t.Fatalf("%s: %s", when, res.Failures(30))
		}
		t.Logf("%s: 30 connections to the floating VIP answered by %v", when, res.PerBackend)
	}
	conns("floating VIP on lb1")
	bt.newConns("BGP VIP beside it", 30)
	for i := 1; i <= 3; i++ {
		v, err := bt.nodes[i].BGP()
		if err != nil {
			t.Fatal(err)
		}
		if len(v.VIPs) != 1 || v.VIPs[0].VIP != VIPName {
			t.Errorf("lb%d announces %+v, want only %s (the floating VIP is not announced)", i, v.VIPs, VIPName)
		}
	}

	if err := bt.nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	bt.nexthops(withdrawWithin, 2, 3)
	d := e2etest.Eventually(t, "another node to take the floating VIP", withdrawWithin, 20*time.Millisecond, func() (bool, string) {
		o := owner(bt.nodes[2])
		return o == "lb2" || o == "lb3", "owner " + o
	})
	t.Logf("lb1 killed: the router dropped its BGP next hop, and the floating VIP moved within %v", d.Round(time.Millisecond))
	// The new owner's gratuitous ARP moves the router's neighbour entry;
	// allow it a moment before every connection must work.
	e2etest.Eventually(t, "the floating VIP to answer again", withdrawWithin, 50*time.Millisecond, func() (bool, string) {
		res := e2etest.RunConns(t.Context(), bt.lab.Client, floatAddr, 4, 4, 1, 500*time.Millisecond)
		return len(res.Errs) == 0 && res.Skipped == 0, res.Failures(4)
	})
	conns("floating VIP after the failover")
	bt.newConns("BGP VIP after the failover", 30)
}
