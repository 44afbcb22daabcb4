//go:build linux

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The lab: one bridge; client, witness and LB nodes a, b, c on 10.0.0.0/24;
// the floating VIP 10.0.0.200. Every node serves TCP :80 answering its own
// name, so the client sees who holds the VIP.
var (
	vip     = netip.MustParseAddr("10.0.0.200")
	hostIPs = map[string]string{"client": "10.0.0.1", "a": "10.0.0.2", "b": "10.0.0.3", "c": "10.0.0.4", "witness": "10.0.0.100"}
	key1    = bytes.Repeat([]byte{1}, 32)
	key2    = bytes.Repeat([]byte{2}, 32)
)

type lab struct {
	t     *testing.T
	lab   *netlab.Lab
	hosts map[string]*netlab.Host
	log   *slog.Logger
}

// testLog sends slog lines to t.Log until the test ends (memberlist's
// goroutines may still log a line while shutting down).
type testLog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func newLab(t *testing.T, nodes ...string) *lab {
	t.Helper()
	tl := &testLog{t: t}
	t.Cleanup(func() { tl.mu.Lock(); tl.done = true; tl.mu.Unlock() })
	l := &lab{t: t, lab: netlab.New(t, netlab.Options{Prefix: "pcclu"}), hosts: map[string]*netlab.Host{},
		log: slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	for _, name := range append([]string{"client", "witness"}, nodes...) {
		h := l.lab.AddHost(name, netip.MustParsePrefix(hostIPs[name]+"/24"))
		l.hosts[name] = h
	}
	for _, name := range nodes {
		ln, err := l.hosts[name].Listen("tcp", "0.0.0.0:80")
		if err != nil {
			t.Fatal(err)
		}
		go serveName(ln, name)
	}
	return l
}

func serveName(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(name))
		c.Close()
	}
}

func (l *lab) opts(name string, prio int) Options {
	h := l.hosts[name]
	var peers []string
	for _, n := range []string{"a", "b", "c"} {
		if l.hosts[n] != nil {
			peers = append(peers, hostIPs[n]+":7946")
		}
	}
	return Options{
		Name: name, Priority: prio, Bind: hostIPs[name] + ":7946", Peers: peers, Key: key1,
		Profile: testProfile(), Interface: "eth0",
		VIPs:        []VIP{{Name: "web", Addr: vip}},
		GARP:        GARPConfig{Count: 3, Interval: 100 * time.Millisecond},
		HealthPoll:  100 * time.Millisecond,
		Netlink:     h.Handle(),
		InNamespace: h.Do,
		Logger:      l.log,
	}
}

func (l *lab) start(o Options) *Node {
	l.t.Helper()
	n, err := Start(o)
	if err != nil {
		l.t.Fatalf("start %s: %v", o.Name, err)
	}
	l.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n.Leave(ctx)
	})
	return n
}

// crash is LAB.md's crash: the link goes down first (a dead node's kernel
// must not answer ARP for the VIP), then memberlist stops without leaving.
func (l *lab) crash(name string, n *Node) {
	l.t.Helper()
	if err := l.hosts[name].SetLinkDown(); err != nil {
		l.t.Fatal(err)
	}
	n.crash()
}

func (l *lab) hasVIP(name string) bool {
	l.t.Helper()
	have, err := addrsOn(l.hosts[name].Handle(), "eth0")
	if err != nil {
		l.t.Fatal(err)
	}
	return have[vip]
}

// connect opens a new TCP connection to the VIP from the client and
// returns the name of the node that answered.
func (l *lab) connect(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := l.hosts["client"].Dial(ctx, "tcp", netip.AddrPortFrom(vip, 80).String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return string(b), err
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

// prober connects every 20 ms, as a client retrying would, and records
// who answered.
type prober struct {
	mu      sync.Mutex
	results []probe
	stop    atomic.Bool
	done    chan struct{}
}

type probe struct {
	at  time.Time
	who string
}

func (l *lab) probe() *prober {
	p := &prober{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for !p.stop.Load() {
			start := time.Now()
			who, err := l.connect(150 * time.Millisecond)
			if err != nil {
				who = ""
			}
			p.mu.Lock()
			p.results = append(p.results, probe{at: start, who: who})
			p.mu.Unlock()
			time.Sleep(time.Until(start.Add(20 * time.Millisecond)))
		}
	}()
	return p
}

func (p *prober) finish() []probe {
	p.stop.Store(true)
	<-p.done
	return p.results
}

// servedBy reports whether a probe started after t0 was answered by who.
func (p *prober) servedBy(who string, t0 time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.results {
		if r.at.After(t0) && r.who == who {
			return true
		}
	}
	return false
}

// gap is the time between the last probe answered by from and the first
// answered by to, and how many probes in between failed.
func gap(rs []probe, from, to string) (time.Duration, int) {
	var last, first time.Time
	failed := 0
	for _, r := range rs {
		switch {
		case r.who == from && first.IsZero():
			last = r.at
			failed = 0
		case r.who == to && first.IsZero() && !last.IsZero():
			first = r.at
		case r.who == "" && first.IsZero() && !last.IsZero():
			failed++
		}
	}
	if last.IsZero() || first.IsZero() {
		return -1, failed
	}
	return first.Sub(last), failed
}

func owner(ns ...*Node) string {
	var o string
	for i, n := range ns {
		if i == 0 {
			o = n.Owners()["web"]
		} else if n.Owners()["web"] != o {
			return "?"
		}
	}
	return o
}

// pair starts a (priority 200) and b (100) and waits for a to hold the VIP.
func (l *lab) pair(mod func(*Options)) (*Node, *Node) {
	l.t.Helper()
	oa, ob := l.opts("a", 200), l.opts("b", 100)
	if mod != nil {
		mod(&oa)
		mod(&ob)
	}
	a := l.start(oa)
	b := l.start(ob)
	waitFor(l.t, 5*time.Second, "a elected and holding the VIP", func() bool {
		return owner(a, b) == "a" && a.Holds("web") && len(b.Members()) == 2
	})
	return a, b
}

func TestPairTheHigherPriorityNodeOwnsTheVIPAndServesIt(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.pair(nil)
	if !l.hasVIP("a") || l.hasVIP("b") {
		t.Fatalf("VIP on a: %v, on b: %v; want only a", l.hasVIP("a"), l.hasVIP("b"))
	}
	who, err := l.connect(time.Second)
	if err != nil || who != "a" {
		t.Fatalf("client → VIP: %q, %v; want a", who, err)
	}
	mac, _, _ := l.hosts["client"].Neighbor(vip)
	if mac.String() != l.hosts["a"].MAC.String() {
		t.Fatalf("client's neighbour entry for the VIP is %s, want a's %s", mac, l.hosts["a"].MAC)
	}
	for _, m := range b.Members() {
		if m.Name == "a" && (m.State != "alive" || !m.Healthy || m.Priority != 200 || len(m.Holds) != 1) {
			t.Fatalf("b sees a as %+v", m)
		}
	}
	if v := gauge(a.m.vipOwner.WithLabelValues("web")); v != 1 {
		t.Fatalf("portcullis_vip_owner on a = %v", v)
	}
	if v := gauge(b.m.vipOwner.WithLabelValues("web")); v != 0 {
		t.Fatalf("portcullis_vip_owner on b = %v", v)
	}

	// Health votes travel and the agreed rule applies on both nodes.
	agree := func(want bool) func() bool {
		return func() bool { return a.AgreedDown("web", "be1") == want && b.AgreedDown("web", "be1") == want }
	}
	a.SetVote("web", "be1", VoteDown)
	waitFor(t, 2*time.Second, "a alone has a view and says down: down", agree(true))
	b.SetVote("web", "be1", VoteUp)
	waitFor(t, 2*time.Second, "a says down, b up: not down", agree(false))
	b.SetVote("web", "be1", VoteDown)
	waitFor(t, 2*time.Second, "both say down: down", agree(true))
}

func TestCrashedOwnerIsReplacedAndTheClientFollows(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.pair(nil)
	p := l.probe()
	waitFor(t, 2*time.Second, "client served by a", func() bool { return p.servedBy("a", time.Time{}) })
	t0 := time.Now()
	l.crash("a", a)
	took := waitFor(t, 10*time.Second, "b takes the VIP", func() bool { return b.Holds("web") })
	waitFor(t, 10*time.Second, "client served by b", func() bool { return p.servedBy("b", t0) })
	rs := p.finish()
	g, failed := gap(rs, "a", "b")
	t.Logf("crash failover (fast profile): b held the VIP %s after the crash; client gap %s (%d failed connection attempts)", took.Round(time.Millisecond), g.Round(time.Millisecond), failed)
	mac, _, _ := l.hosts["client"].Neighbor(vip)
	if mac.String() != l.hosts["b"].MAC.String() {
		t.Fatalf("client's neighbour entry for the VIP is %s, want b's %s", mac, l.hosts["b"].MAC)
	}
	if !l.hasVIP("b") {
		t.Fatal("the VIP is not on b's interface")
	}
}

func TestGracefulLeaveHandsTheVIPOverAtOnce(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.pair(nil)
	p := l.probe()
	waitFor(t, 2*time.Second, "client served by a", func() bool { return p.servedBy("a", time.Time{}) })
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	left := time.Since(t0)
	if !b.Holds("web") {
		t.Fatal("Leave returned before b held the VIP")
	}
	waitFor(t, 5*time.Second, "client served by b", func() bool { return p.servedBy("b", t0) })
	g, failed := gap(p.finish(), "a", "b")
	t.Logf("graceful leave (fast profile): Leave took %s; client gap %s (%d failed connection attempts)", left.Round(time.Millisecond), g.Round(time.Millisecond), failed)
	if l.hasVIP("a") {
		t.Fatal("a still has the VIP address after Leave")
	}
	waitFor(t, 2*time.Second, "b sees a as left", func() bool {
		for _, m := range b.Members() {
			if m.Name == "a" {
				return m.State == "left"
			}
		}
		return false
	})
}

func TestAReturningOwnerDoesNotTakeTheVIPBackUnlessPreempt(t *testing.T) {
	for _, preempt := range []bool{false, true} {
		t.Run(fmt.Sprintf("preempt=%v", preempt), func(t *testing.T) {
			l := newLab(t, "a", "b")
			a, b := l.pair(func(o *Options) { o.VIPs[0].Preempt = preempt })
			l.crash("a", a)
			waitFor(t, 10*time.Second, "b takes the VIP", func() bool { return b.Holds("web") })
			// a comes back: its stale address (left by the crash) is removed
			// by Start, and it rejoins b.
			if err := l.hosts["a"].SetLinkUp(); err != nil {
				t.Fatal(err)
			}
			oa := l.opts("a", 200)
			oa.VIPs[0].Preempt = preempt
			a2 := l.start(oa)
			waitFor(t, 5*time.Second, "b sees a alive again", func() bool {
				for _, m := range b.Members() {
					if m.Name == "a" {
						return m.State == "alive" && m.Healthy
					}
				}
				return false
			})
			if !preempt {
				time.Sleep(1500 * time.Millisecond) // several probe and gossip rounds
				if !b.Holds("web") || a2.Holds("web") || owner(a2, b) != "b" {
					t.Fatalf("non-preemptive VIP moved: b holds %v, a holds %v, owners %v/%v", b.Holds("web"), a2.Holds("web"), a2.Owners(), b.Owners())
				}
				if l.hasVIP("a") {
					t.Fatal("a has the VIP address")
				}
				return
			}
			waitFor(t, 5*time.Second, "preempt: a takes the VIP back", func() bool { return a2.Holds("web") && !b.Holds("web") })
			who, err := l.connect(time.Second)
			if err != nil || who != "a" {
				t.Fatalf("client → VIP: %q, %v; want a", who, err)
			}
		})
	}
}

func TestWitness(t *testing.T) {
	l := newLab(t, "a", "b")
	ln, err := l.hosts["witness"].Listen("tcp", "0.0.0.0:9")
	if err != nil {
		t.Fatal(err)
	}
	go serveName(ln, "witness")
	a, b := l.pair(func(o *Options) {
		o.Witness = &Witness{Kind: WitnessTCP, Address: hostIPs["witness"] + ":9", Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Fails: 2}
	})
	cut := func(name string) *netlink.Route {
		r := &netlink.Route{Dst: hostPrefix(netip.MustParseAddr(hostIPs["witness"])), Type: unix.RTN_UNREACHABLE}
		if err := l.hosts[name].Handle().RouteAdd(r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra := cut("a")
	waitFor(t, 5*time.Second, "a loses its witness and gives the VIP to b", func() bool {
		return !a.Holds("web") && b.Holds("web") && !l.hasVIP("a")
	})
	if v := gauge(a.m.witnessUp); v != 0 {
		t.Fatalf("portcullis_cluster_witness_up on a = %v", v)
	}
	rb := cut("b")
	waitFor(t, 5*time.Second, "both lose the witness: nobody holds the VIP", func() bool {
		return !a.Holds("web") && !b.Holds("web") && owner(a, b) == ""
	})
	waitFor(t, time.Second, "the unowned alert on both nodes", func() bool {
		return gauge(a.m.vipUnowned.WithLabelValues("web")) == 1 && gauge(b.m.vipUnowned.WithLabelValues("web")) == 1
	})
	if l.hasVIP("a") || l.hasVIP("b") {
		t.Fatal("a VIP address is still on a node")
	}
	// The witness comes back for b only: b claims again.
	if err := l.hosts["b"].Handle().RouteDel(rb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b reaches the witness and takes the VIP", func() bool { return b.Holds("web") })
	if v := gauge(b.m.vipUnowned.WithLabelValues("web")); v != 0 {
		t.Fatalf("portcullis_vip_unowned on b = %v after b took the VIP", v)
	}
	_ = ra
}

func TestANodeWithTheWrongKeyCannotJoin(t *testing.T) {
	l := newLab(t, "a", "c")
	a := l.start(l.opts("a", 200))
	oc := l.opts("c", 100)
	oc.Key = key2
	c := l.start(oc)
	time.Sleep(1500 * time.Millisecond) // several probe, gossip and rejoin rounds
	for _, m := range a.Members() {
		if m.Name == "c" {
			t.Fatalf("a sees c, which has another key: %+v", m)
		}
	}
	if ms := c.Members(); len(ms) != 1 {
		t.Fatalf("c sees %d members, want only itself", len(ms))
	}
	// Both think they are alone: each holds the VIP. That is what a wrong
	// key means, and why the digest and members are in the admin API.
	if !a.Holds("web") {
		t.Fatal("a does not hold the VIP")
	}
}

func TestReleaseMovesTheVIPToThePeer(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.pair(nil)
	if err := b.Release("web"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Release on the non-owner: %v, want ErrNotOwner", err)
	}
	if err := a.Release("web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "b takes the released VIP", func() bool { return b.Holds("web") && !a.Holds("web") })
	waitFor(t, 3*time.Second, "the client follows", func() bool { who, _ := l.connect(200 * time.Millisecond); return who == "b" })
	// Non-preemptive: b keeps it although a (higher priority) is back to
	// offering it.
	time.Sleep(500 * time.Millisecond)
	if !b.Holds("web") {
		t.Fatal("the VIP went back to a")
	}
	l.crash("a", a)
	waitFor(t, 5*time.Second, "b sees a dead", func() bool { return len(b.Members()) == 2 && b.Members()[0].State == "dead" })
	if err := b.Release("web"); !errors.Is(err, ErrNoTakeover) {
		t.Fatalf("Release with no other node: %v, want ErrNoTakeover", err)
	}
	if !b.Holds("web") {
		t.Fatal("a refused release dropped the VIP")
	}
}

func TestWitnessProbeKinds(t *testing.T) {
	l := newLab(t, "a")
	ln, err := l.hosts["witness"].Listen("tcp", "0.0.0.0:9")
	if err != nil {
		t.Fatal(err)
	}
	go serveName(ln, "witness")
	for _, tc := range []struct {
		kind WitnessKind
		addr string
		ok   bool
	}{
		{WitnessTCP, "10.0.0.100:9", true},
		{WitnessTCP, "10.0.0.100:10", true}, // refused: the host answered
		{WitnessTCP, "10.0.0.99:9", false},
		{WitnessICMP, "10.0.0.100", true},
		{WitnessICMP, "10.0.0.99", false},
		{WitnessARP, "10.0.0.100", true},
		{WitnessARP, "10.0.0.99", false},
	} {
		w := newWitnessProber(Witness{Kind: tc.kind, Address: tc.addr, Timeout: 300 * time.Millisecond}, "eth0", l.hosts["a"].Do)
		if err := w.probe(); (err == nil) != tc.ok {
			t.Errorf("%s %s: %v, want reachable=%v", tc.kind, tc.addr, err, tc.ok)
		}
	}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// testProfile is the fast profile with more slack for 2 busy cores: a probe
// that misses its 100 ms timeout because the test machine is loaded must not
// be taken for a dead node (which, right after a restart, makes the
// returning node claim a non-preemptive VIP). Detection takes ~1–1.5 s.
func testProfile() Profile {
	p := FastProfile()
	p.ProbeInterval = 300 * time.Millisecond
	p.ProbeTimeout = 200 * time.Millisecond
	p.SuspicionMult = 3
	return p
}
