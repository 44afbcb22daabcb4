package cluster

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
)

// Errors callers branch on.
var (
	// ErrRestartRequired: Update was given a change that only a restart
	// can apply (name, bind, advertise, key, profile, interface).
	ErrRestartRequired = errors.New("cluster: restart required")
	// ErrNotOwner: Release was called on a node that does not hold the VIP.
	ErrNotOwner = errors.New("cluster: this node does not hold the VIP")
	// ErrNoTakeover: Release was refused because no other node could take
	// the VIP (the VIP would go unowned).
	ErrNoTakeover = errors.New("cluster: no other alive, healthy node can take the VIP")
	// ErrUnknownVIP: the name is not a floating VIP of this node.
	ErrUnknownVIP = errors.New("cluster: unknown VIP")
	// ErrStopped: the node has left or crashed.
	ErrStopped = errors.New("cluster: node stopped")
)

// Member is one node as this node sees it (Node.Members).
type Member struct {
	Name     string         `json:"name"`
	Addr     netip.AddrPort `json:"addr"`
	State    string         `json:"state"` // alive, dead or left (memberlist v0.7 does not expose "suspect": a suspect member shows as alive)
	Self     bool           `json:"self"`
	Priority int            `json:"priority"`
	XDP      bool           `json:"xdp"`
	L7       bool           `json:"l7"`
	Witness  bool           `json:"witness"` // reachable, or none configured
	Leaving  bool           `json:"leaving"`
	Healthy  bool           `json:"healthy"` // eligible to own VIPs
	Digest   string         `json:"digest"`  // first 16 hex digits of its config digest
	Serves   []string       `json:"serves"`  // VIPs it can serve (names this node knows)
	Holds    []string       `json:"holds"`   // VIPs whose address it holds
}

// peer is what this node knows of another member, copied out of
// memberlist's callbacks (memberlist mutates its own structs later).
type peer struct {
	name   string
	addr   netip.AddrPort
	alive  bool
	meta   meta
	metaOK bool
}

// Node is this daemon's membership in the cluster and the floating VIPs
// it holds. Its methods are safe for concurrent use.
type Node struct {
	ml *memberlist.Memberlist
	// self is this node's gossip address, read once after memberlist is
	// created. memberlist.LocalNode takes memberlist's node lock, and
	// memberlist calls our event delegate with that lock held while the
	// delegate takes n.mu: calling LocalNode under n.mu would deadlock.
	self  netip.AddrPort
	q     *memberlist.TransmitLimitedQueue
	nl    *netlink.Handle
	ownNL bool
	m     *metricSet

	metaBytes atomic.Pointer[[]byte] // what NodeMeta returns

	mu        sync.Mutex
	opts      Options // current options (normalized)
	log       *slog.Logger
	peers     map[string]*peer
	holds     map[string]netip.Addr // VIP name → address held on the interface
	declined  map[string]bool       // VIPs this node stands down from (Release)
	owners    map[string]string     // last election result
	health    Health
	witnessUp bool
	leaving   bool
	stopped   bool
	votes     voteStore
	announce  map[string]context.CancelFunc
	witness   *witnessProber
	// agreedDirty: votes or membership changed since OnAgreedChange last ran.
	agreedDirty bool
	// user holds the handlers of user messages (usermsg.go).
	user userHandlers

	wake     chan struct{}
	stop     chan struct{}
	loopDone chan struct{}
	bg       sync.WaitGroup // rejoin and witness goroutines
	annWG    sync.WaitGroup // announcement bursts
}

// Start creates the node: it removes VIP addresses a previous run may have
// left on the interface, probes the witness once, starts memberlist on
// Bind (encrypted with Key), joins Peers, and only then takes part in
// elections, so a restarting node first learns who holds what instead of
// claiming a VIP a peer holds.
func Start(opts Options) (*Node, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	n := &Node{
		opts:     o,
		log:      o.Logger.With("component", "cluster", "node", o.Name),
		peers:    map[string]*peer{},
		holds:    map[string]netip.Addr{},
		declined: map[string]bool{},
		owners:   map[string]string{},
		votes:    newVoteStore(),
		announce: map[string]context.CancelFunc{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		m:        newMetrics(),
		nl:       o.Netlink,
	}
	if n.nl == nil {
		if n.nl, err = netlink.NewHandle(); err != nil {
			return nil, fmt.Errorf("cluster: netlink: %w", err)
		}
		n.ownNL = true
	}
	ok := false
	defer func() {
		if !ok && n.ownNL {
			n.nl.Close()
		}
	}()
	if err := n.removeStale(o.VIPs); err != nil {
		return nil, err
	}
	n.health = n.readHealth()
	n.witnessUp = true
	if o.Witness != nil {
		n.witness = newWitnessProber(*o.Witness, o.Interface, o.InNamespace)
		n.witnessUp = n.witness.first()
		n.log.Info("witness probed", "kind", o.Witness.Kind, "address", o.Witness.Address, "reachable", n.witnessUp)
	}
	n.publishLocked()

	mc, err := n.memberlistConfig()
	if err != nil {
		return nil, err
	}
	n.q = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if ml := n.ml; ml != nil {
				return ml.NumMembers()
			}
			return 1
		},
		RetransmitMult: 3,
	}
	err = o.InNamespace(func() error {
		ip, port, _ := splitIPPort(o.Bind)
		t, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip.String()}, BindPort: port, Logger: mc.Logger,
		})
		if err != nil {
			return err
		}
		mc.Transport = newNSTransport(t, o.InNamespace)
		ml, err := memberlist.Create(mc)
		if err != nil {
			t.Shutdown()
			return err
		}
		n.ml = ml
		ln := ml.LocalNode()
		a, _ := netip.AddrFromSlice(ln.Addr)
		n.self = netip.AddrPortFrom(a.Unmap(), ln.Port)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: memberlist on %s: %w", o.Bind, err)
	}
	if peers := n.otherPeers(); len(peers) > 0 {
		joined, err := n.ml.Join(peers)
		if joined > 0 {
			n.log.Info("joined the cluster", "peers", joined, "members", n.ml.NumMembers())
		} else {
			// Alone: the first node up, or the peers are down. Either way
			// this node may claim VIPs now; a peer that holds one will be
			// found by the rejoin loop and the election will settle it.
			n.log.Warn("no peer answered; running alone until one does", "peers", strings.Join(peers, ","), "err", err)
		}
	}
	ok = true
	go n.loop()
	n.bg.Add(1)
	go n.rejoinLoop()
	if n.witness != nil {
		n.bg.Add(1)
		go n.witnessLoop(n.witness)
	}
	n.kick()
	return n, nil
}

func (n *Node) memberlistConfig() (*memberlist.Config, error) {
	o := n.opts
	mc := memberlist.DefaultLANConfig()
	mc.Name = o.Name
	ip, port, _ := splitIPPort(o.Bind)
	mc.BindAddr, mc.BindPort = ip.String(), port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port
	if o.Advertise != "" {
		aip, aport, _ := splitIPPort(o.Advertise)
		mc.AdvertiseAddr, mc.AdvertisePort = aip.String(), aport
	}
	kr, err := memberlist.NewKeyring(nil, o.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip key: %w", err)
	}
	mc.Keyring = kr
	// Both directions verified: a node without the key can neither join
	// nor inject anything (memberlist's defaults, set here so a future
	// default cannot silently weaken it).
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.ProbeInterval = o.Profile.ProbeInterval
	mc.ProbeTimeout = o.Profile.ProbeTimeout
	mc.SuspicionMult = o.Profile.SuspicionMult
	mc.GossipInterval = o.Profile.GossipInterval
	if o.Profile.ProbeInterval < time.Second {
		// A join or push/pull to a dead peer must not stall a fast
		// cluster's rejoin loop for memberlist's 10 s default.
		mc.TCPTimeout = 2 * time.Second
	}
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	mc.Logger = log.New(&logAdapter{log: n.log}, "", 0)
	return mc, nil
}

// otherPeers is Peers without this node's own address: every node may
// share one peers list.
func (n *Node) otherPeers() []string {
	self := map[string]bool{n.opts.Bind: true}
	if n.opts.Advertise != "" {
		self[n.opts.Advertise] = true
	}
	if n.self.IsValid() {
		self[n.self.String()] = true
	}
	var out []string
	for _, p := range n.opts.Peers {
		if !self[p] {
			out = append(out, p)
		}
	}
	return out
}

// kick asks the loop to run an election now.
func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// loop is the only goroutine that adds or removes VIP addresses, so
// transitions never race each other. It runs an election on every
// membership, metadata, witness or health change and every HealthPoll.
func (n *Node) loop() {
	defer close(n.loopDone)
	poll := time.NewTicker(n.opts.HealthPoll)
	defer poll.Stop()
	var refresh <-chan time.Time
	if r := n.opts.GARP.Refresh; r > 0 {
		t := time.NewTicker(r)
		defer t.Stop()
		refresh = t.C
	}
	for {
		select {
		case <-n.stop:
			return
		case <-n.wake:
		case <-poll.C:
		case <-refresh:
			n.refreshAnnouncements()
			continue
		}
		n.reconcile()
	}
}

// transition is one planned address change.
type transition struct {
	vip    VIP
	old    netip.Addr // for losses: the address held
	reason string
}

// reconcile runs the election for every VIP and applies this node's part
// of the result: losses first (remove the address, so two nodes never
// answer ARP for longer than necessary), then gains, then the metadata
// update that tells the others.
func (n *Node) reconcile() {
	n.mu.Lock()
	if n.stopped || n.leaving {
		n.mu.Unlock()
		return
	}
	n.health = n.readHealth()
	// A health change alone (say the witness came back) must be gossiped
	// too, not only a change of the VIPs held.
	healthChanged := n.publishLocked()
	cands := n.candidatesLocked()
	selfBad := n.unhealthyLocked()
	var gains, losses []transition
	configured := map[string]bool{}
	unowned := map[string]bool{}
	for _, v := range n.opts.VIPs {
		configured[v.Name] = true
		h := vipHash(v.Name)
		n.settleDeclineLocked(v, h, cands)
		d := elect(h, v.Preempt, cands)
		if prev, seen := n.owners[v.Name]; !seen || prev != d.Owner {
			n.log.Info("vip owner", "vip", v.Name, "owner", orNobody(d.Owner), "previous", orNobody(prev), "reason", d.Reason)
		}
		n.owners[v.Name] = d.Owner
		unowned[v.Name] = d.Owner == ""
		held, holding := n.holds[v.Name]
		switch {
		case d.Owner == n.opts.Name && holding && held != v.Addr:
			losses = append(losses, transition{vip: v, old: held, reason: "the VIP's address changed in the config"})
			gains = append(gains, transition{vip: v, reason: d.Reason})
		case d.Owner == n.opts.Name && !holding:
			gains = append(gains, transition{vip: v, reason: d.Reason})
		case d.Owner != n.opts.Name && holding:
			reason := d.Reason
			if selfBad != "" {
				reason = "this node is not eligible: " + selfBad
			} else if n.declined[v.Name] {
				reason = "released by request: " + d.Reason
			}
			losses = append(losses, transition{vip: v, old: held, reason: reason})
		}
	}
	for name, addr := range n.holds {
		if !configured[name] {
			losses = append(losses, transition{vip: VIP{Name: name, Addr: addr}, old: addr, reason: "no longer a floating VIP in the config"})
			delete(n.owners, name)
		}
	}
	n.mu.Unlock()

	for _, t := range losses {
		n.lose(t)
	}
	for _, t := range gains {
		n.gain(t)
	}
	n.mu.Lock()
	changed := n.publishLocked() || healthChanged
	n.updateMetricsLocked(unowned)
	onAgreed := n.opts.OnAgreedChange
	n.mu.Unlock()
	if changed {
		n.pushMeta()
	}
	if onAgreed != nil && n.takeAgreedDirty() {
		onAgreed()
	}
}

// settleDeclineLocked ends a Release stand-down once it has done its job:
// another node holds the VIP (non-preemptive: it stays there), or nobody
// else can take it (a manual release must never leave a VIP unowned).
func (n *Node) settleDeclineLocked(v VIP, h uint32, cands []candidate) {
	if !n.declined[v.Name] {
		return
	}
	otherHolds, otherEligible := false, false
	for _, c := range cands {
		if c.Name == n.opts.Name || !c.Alive || !c.Meta.healthy() || !hasHash(c.Meta.Serves, h) {
			continue
		}
		otherEligible = true
		otherHolds = otherHolds || hasHash(c.Meta.Holds, h)
	}
	if !otherEligible || otherHolds && !v.Preempt {
		delete(n.declined, v.Name)
		for i := range cands {
			if cands[i].Name == n.opts.Name {
				cands[i].Meta.Serves = n.selfMetaLocked().Serves
			}
		}
	}
}

func orNobody(s string) string {
	if s == "" {
		return "(nobody)"
	}
	return s
}

// candidatesLocked is this node's view: itself (from its live state, not
// the echo of its gossip) and every other member it knows.
func (n *Node) candidatesLocked() []candidate {
	out := []candidate{{Name: n.opts.Name, Alive: true, Meta: n.selfMetaLocked()}}
	for _, p := range n.peers {
		if p.metaOK {
			out = append(out, candidate{Name: p.name, Alive: p.alive, Meta: p.meta})
		}
	}
	return out
}

func (n *Node) selfMetaLocked() meta {
	m := meta{
		Priority: n.opts.Priority,
		XDP:      n.health.XDP,
		L7:       n.health.L7,
		Witness:  n.witnessUp,
		Leaving:  n.leaving,
		Digest:   digestPrefix(n.opts.ConfigDigest),
	}
	if !n.leaving {
		var serves []string
		for _, v := range n.opts.VIPs {
			if !n.declined[v.Name] {
				serves = append(serves, v.Name)
			}
		}
		m.Serves = sortedHashes(serves)
		var holds []string
		for name := range n.holds {
			holds = append(holds, name)
		}
		m.Holds = sortedHashes(holds)
	}
	return m
}

// unhealthyLocked says why this node may not own VIPs, or "".
func (n *Node) unhealthyLocked() string {
	var why []string
	if !n.witnessUp {
		why = append(why, "witness unreachable")
	}
	if !n.health.XDP {
		why = append(why, "XDP not attached")
	}
	if !n.health.L7 {
		why = append(why, "L7 listeners not up")
	}
	if n.leaving {
		why = append(why, "leaving")
	}
	return strings.Join(why, ", ")
}

func (n *Node) readHealth() Health {
	if n.opts.Health == nil {
		return Health{XDP: true, L7: true}
	}
	return n.opts.Health()
}

// publishLocked recomputes the metadata; it reports whether it changed.
func (n *Node) publishLocked() bool {
	m := n.selfMetaLocked()
	b := m.encode()
	if old := n.metaBytes.Load(); old != nil && bytes.Equal(*old, b) {
		return false
	}
	n.metaBytes.Store(&b)
	return true
}

// pushMeta gossips the new metadata. Never called with n.mu held:
// memberlist calls back into the node (NodeMeta, events) under its own lock.
func (n *Node) pushMeta() {
	if err := n.ml.UpdateNode(n.opts.Profile.ProbeInterval * 5); err != nil {
		n.log.Debug("metadata update not yet gossiped", "err", err)
	}
}

// gain adds the VIP's address and announces it.
func (n *Node) gain(t transition) {
	v := t.vip
	if err := addVIP(n.nl, n.opts.Interface, v.Addr); err != nil {
		n.log.Error("vip not gained: adding the address failed; retrying", "vip", v.Name, "addr", v.Addr, "reason", t.reason, "err", err)
		return
	}
	n.mu.Lock()
	n.holds[v.Name] = v.Addr
	ctx, cancel := context.WithCancel(context.Background())
	if old := n.announce[v.Name]; old != nil {
		old()
	}
	n.announce[v.Name] = cancel
	g := n.opts.GARP
	n.mu.Unlock()
	n.m.transitions.WithLabelValues(v.Name, "gained").Inc()
	n.log.Info("vip gained", "vip", v.Name, "addr", v.Addr, "interface", n.opts.Interface, "reason", t.reason)
	n.annWG.Add(1)
	go func() {
		defer n.annWG.Done()
		n.announceBurst(ctx, v, g.Count, g.Interval)
	}()
}

// lose removes the VIP's address first; only then does the metadata say
// this node no longer holds it.
func (n *Node) lose(t transition) {
	v := t.vip
	n.mu.Lock()
	if c := n.announce[v.Name]; c != nil {
		c()
		delete(n.announce, v.Name)
	}
	n.mu.Unlock()
	if err := delVIP(n.nl, n.opts.Interface, t.old); err != nil {
		n.log.Error("vip not released: removing the address failed; retrying", "vip", v.Name, "addr", t.old, "reason", t.reason, "err", err)
		return
	}
	n.mu.Lock()
	delete(n.holds, v.Name)
	n.mu.Unlock()
	n.m.transitions.WithLabelValues(v.Name, "lost").Inc()
	n.log.Info("vip released", "vip", v.Name, "addr", t.old, "interface", n.opts.Interface, "reason", t.reason)
}

func (n *Node) announceBurst(ctx context.Context, v VIP, count int, interval time.Duration) {
	for i := 0; i < count; i++ {
		if ctx.Err() != nil {
			return
		}
		if err := n.sendAnnouncement(v); err != nil {
			n.log.Warn("announcement failed", "vip", v.Name, "addr", v.Addr, "err", err)
		}
		if i+1 < count {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}
}

func (n *Node) refreshAnnouncements() {
	n.mu.Lock()
	var vs []VIP
	for name, addr := range n.holds {
		vs = append(vs, VIP{Name: name, Addr: addr})
	}
	n.mu.Unlock()
	for _, v := range vs {
		if err := n.sendAnnouncement(v); err != nil {
			n.log.Warn("announcement refresh failed", "vip", v.Name, "err", err)
		}
	}
}

// removeStale deletes configured VIP addresses from the interface at
// start: a node that crashed (kill -9) left them there, and holding one
// without owning it would answer ARP for a VIP a peer now owns.
func (n *Node) removeStale(vips []VIP) error {
	if len(vips) == 0 {
		return nil
	}
	have, err := addrsOn(n.nl, n.opts.Interface)
	if err != nil {
		return fmt.Errorf("cluster: interface %s: %w", n.opts.Interface, err)
	}
	for _, v := range vips {
		if have[v.Addr] {
			if err := delVIP(n.nl, n.opts.Interface, v.Addr); err != nil {
				return fmt.Errorf("cluster: removing stale VIP %s: %w", v.Addr, err)
			}
			n.log.Warn("removed a VIP address left on the interface by a previous run", "vip", v.Name, "addr", v.Addr)
		}
	}
	return nil
}

// Update applies a reloaded config: VIPs (added, removed, changed address
// or preempt), priority, witness, GARP, digest, peers, health function. A
// change of name, bind, advertise, key, profile or interface returns an
// error wrapping ErrRestartRequired and changes nothing.
func (n *Node) Update(opts Options) error {
	o, err := opts.normalize()
	if err != nil {
		return err
	}
	n.mu.Lock()
	cur := n.opts
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	var fixed []string
	if o.Name != cur.Name {
		fixed = append(fixed, "name")
	}
	if o.Bind != cur.Bind || o.Advertise != cur.Advertise {
		fixed = append(fixed, "bind/advertise")
	}
	if !bytes.Equal(o.Key, cur.Key) {
		fixed = append(fixed, "key")
	}
	if o.Profile != cur.Profile {
		fixed = append(fixed, "profile timings")
	}
	if o.Interface != cur.Interface {
		fixed = append(fixed, "interface")
	}
	if len(fixed) > 0 {
		n.mu.Unlock()
		return fmt.Errorf("%w: %s changed (the running node keeps its values)", ErrRestartRequired, strings.Join(fixed, ", "))
	}
	// Keep the handles and hooks Start was given.
	o.Netlink, o.InNamespace, o.Logger = cur.Netlink, cur.InNamespace, cur.Logger
	if o.GARP.Refresh != cur.GARP.Refresh {
		n.log.Warn("garp refresh period changes at the next restart", "running", cur.GARP.Refresh, "new", o.GARP.Refresh)
		o.GARP.Refresh = cur.GARP.Refresh
	}
	var oldW *witnessProber
	if !sameWitness(o.Witness, cur.Witness) {
		oldW = n.witness
		n.witness = nil
	}
	n.opts = o
	keep := map[string]bool{}
	for _, v := range o.VIPs {
		keep[v.Name] = true
	}
	for name := range n.declined {
		if !keep[name] {
			delete(n.declined, name)
		}
	}
	n.mu.Unlock()

	if oldW != nil {
		oldW.close()
		up := true
		var w *witnessProber
		if o.Witness != nil {
			w = newWitnessProber(*o.Witness, o.Interface, o.InNamespace)
			up = w.first()
		}
		n.mu.Lock()
		n.witness = w
		n.setWitnessLocked(up, "witness reconfigured")
		n.mu.Unlock()
		if w != nil {
			n.bg.Add(1)
			go n.witnessLoop(w)
		}
	}
	n.kick()
	return nil
}

func sameWitness(a, b *Witness) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Owners maps every floating VIP to its owner in this node's view ("" =
// nobody can own it: see portcullis_vip_unowned).
func (n *Node) Owners() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.owners))
	for _, v := range n.opts.VIPs {
		out[v.Name] = n.owners[v.Name]
	}
	return out
}

// WitnessUp reports whether this node reaches its witness (true when none
// is configured): BGP announcements follow it like VIP ownership does.
func (n *Node) WitnessUp() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.witnessUp
}

// Holds reports whether this node currently holds the VIP's address.
func (n *Node) Holds(vip string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.holds[vip]
	return ok
}

// Members lists this node and every member it knows, sorted by name.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := map[uint32]string{}
	for _, v := range n.opts.VIPs {
		names[vipHash(v.Name)] = v.Name
	}
	toNames := func(hs []uint32) []string {
		out := []string{}
		for _, h := range hs {
			if s, ok := names[h]; ok {
				out = append(out, s)
			} else {
				out = append(out, fmt.Sprintf("#%08x", h))
			}
		}
		slices.Sort(out)
		return out
	}
	mk := func(name string, addr netip.AddrPort, state string, m meta) Member {
		return Member{Name: name, Addr: addr, State: state, Priority: m.Priority, XDP: m.XDP, L7: m.L7,
			Witness: m.Witness, Leaving: m.Leaving, Healthy: m.healthy() && state == "alive",
			Digest: hex.EncodeToString(m.Digest[:]), Serves: toNames(m.Serves), Holds: toNames(m.Holds)}
	}
	self := n.self
	state := "alive"
	if n.stopped {
		state = "left"
	}
	out := []Member{mk(n.opts.Name, self, state, n.selfMetaLocked())}
	out[0].Self = true
	for _, p := range n.peers {
		st := "alive"
		if !p.alive {
			st = "dead"
			if p.meta.Leaving {
				st = "left"
			}
		}
		out = append(out, mk(p.name, p.addr, st, p.meta))
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Release gives a VIP this node holds to the next best node (manual
// failover): this node removes the address and stops offering the VIP
// until another node holds it (for a preempt VIP: until Reclaim). It
// returns once the address is gone. It is refused with ErrNotOwner when
// this node does not hold the VIP, and with ErrNoTakeover when no other
// alive, healthy node can serve it.
func (n *Node) Release(vip string) error {
	n.mu.Lock()
	if n.stopped || n.leaving {
		n.mu.Unlock()
		return ErrStopped
	}
	var v *VIP
	for i := range n.opts.VIPs {
		if n.opts.VIPs[i].Name == vip {
			v = &n.opts.VIPs[i]
		}
	}
	if v == nil {
		n.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownVIP, vip)
	}
	if _, ok := n.holds[vip]; !ok {
		owner := n.owners[vip]
		n.mu.Unlock()
		return fmt.Errorf("%w %q (owner: %s)", ErrNotOwner, vip, orNobody(owner))
	}
	h := vipHash(vip)
	var others []candidate
	for _, c := range n.candidatesLocked() {
		if c.Name != n.opts.Name {
			others = append(others, c)
		}
	}
	next := elect(h, true, others)
	if next.Owner == "" {
		n.mu.Unlock()
		return fmt.Errorf("%w (%s)", ErrNoTakeover, vip)
	}
	n.declined[vip] = true
	n.log.Info("vip release requested", "vip", vip, "expected_owner", next.Owner)
	n.mu.Unlock()
	n.kick()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !n.Holds(vip) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("cluster: release of %q: the address is still held after 5s (see the log)", vip)
}

// Reclaim ends a Release stand-down early (only needed for preempt VIPs,
// whose stand-down otherwise lasts until the process restarts).
func (n *Node) Reclaim(vip string) {
	n.mu.Lock()
	delete(n.declined, vip)
	n.mu.Unlock()
	n.kick()
}

// Leave is the graceful shutdown (SIGTERM): it removes every VIP address,
// gossips that this node is leaving and holds nothing (peers take the VIPs
// at once, without waiting for failure detection), waits until another
// node holds each released VIP or ctx ends, then broadcasts memberlist's
// leave and shuts memberlist down. Call it before detaching XDP: packets
// still sent to this node's MAC during the handover are forwarded by XDP.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.leaving = true
	n.mu.Unlock()
	n.stopLoops()

	n.mu.Lock()
	var released []transition
	for name, addr := range n.holds {
		released = append(released, transition{vip: VIP{Name: name, Addr: addr}, old: addr, reason: "shutdown (graceful leave)"})
	}
	n.mu.Unlock()
	for _, t := range released {
		n.lose(t)
	}
	n.mu.Lock()
	n.publishLocked()
	n.mu.Unlock()
	n.pushMeta()

	start := time.Now()
	for _, t := range released {
		if err := n.waitTakeover(ctx, t.vip.Name); err != nil {
			n.log.Warn("leaving before a peer took the VIP", "vip", t.vip.Name, "err", err)
			break
		}
	}
	if len(released) > 0 {
		n.log.Info("handover done", "vips", len(released), "took", time.Since(start).Round(time.Millisecond))
	}
	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(time.Until(dl), timeout), 100*time.Millisecond)
	}
	err := n.ml.Leave(timeout)
	if serr := n.ml.Shutdown(); err == nil {
		err = serr
	}
	n.finish()
	n.log.Info("left the cluster")
	return err
}

// waitTakeover waits until another alive member advertises holding vip.
func (n *Node) waitTakeover(ctx context.Context, vip string) error {
	h := vipHash(vip)
	for {
		n.mu.Lock()
		taken, possible := false, false
		for _, p := range n.peers {
			if p.alive && p.metaOK && p.meta.healthy() && hasHash(p.meta.Serves, h) {
				possible = true
				taken = taken || hasHash(p.meta.Holds, h)
			}
		}
		n.mu.Unlock()
		if taken {
			return nil
		}
		if !possible {
			return errors.New("no other node can take it")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stopLoops stops the election loop and the witness and rejoin goroutines.
func (n *Node) stopLoops() {
	n.mu.Lock()
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	w := n.witness
	n.mu.Unlock()
	<-n.loopDone
	if w != nil {
		w.close()
	}
	n.bg.Wait()
}

func (n *Node) finish() {
	n.mu.Lock()
	n.stopped = true
	for name, c := range n.announce {
		c()
		delete(n.announce, name)
	}
	n.mu.Unlock()
	// No goroutine of the node may outlive it (they use the netlink handle
	// and the namespace hook, which the caller may close next).
	n.annWG.Wait()
	if n.ownNL {
		n.nl.Close()
	}
}

// crash stops the node the way a kill -9 would, for tests: no leave, no
// address removed, memberlist's sockets closed.
func (n *Node) crash() {
	n.stopLoops()
	n.ml.Shutdown()
	n.finish()
}

// rejoinLoop joins configured peers that are not alive members, every
// RejoinInterval: memberlist never retries a member it declared dead, so
// without this a healed partition would stay split forever.
func (n *Node) rejoinLoop() {
	defer n.bg.Done()
	t := time.NewTicker(n.opts.Profile.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		alive := map[string]bool{}
		for _, p := range n.peers {
			if p.alive {
				alive[p.addr.String()] = true
			}
		}
		n.mu.Unlock()
		var missing []string
		for _, p := range n.otherPeers() {
			if ap, err := netip.ParseAddrPort(p); err != nil || !alive[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if k, err := n.ml.Join(missing); k > 0 {
			n.log.Info("rejoined peers", "peers", strings.Join(missing, ","), "joined", k)
		} else {
			n.log.Debug("rejoin failed", "peers", strings.Join(missing, ","), "err", err)
		}
	}
}

func (n *Node) witnessLoop(w *witnessProber) {
	defer n.bg.Done()
	w.run(func(up bool, detail string) {
		n.mu.Lock()
		if n.witness == w {
			n.setWitnessLocked(up, detail)
		}
		n.mu.Unlock()
		n.kick()
	})
}

func (n *Node) setWitnessLocked(up bool, detail string) {
	if up != n.witnessUp {
		if up {
			n.log.Info("witness reachable", "detail", detail)
		} else {
			n.log.Warn("witness unreachable: this node gives up and claims no VIP", "detail", detail)
		}
	}
	n.witnessUp = up
}

// SetVote records this node's own health opinion of a backend and gossips
// it (VoteNone withdraws it: the node no longer checks that backend).
func (n *Node) SetVote(vip, backend string, v Vote) {
	n.mu.Lock()
	w := n.votes.local(n.opts.Name, voteKey(vip, backend), v)
	if w != nil {
		n.agreedDirty = true
		n.q.QueueBroadcast(&voteBroadcast{name: w.Origin + "\x00" + w.Key, msg: encodeVoteMsg(*w)})
	}
	n.mu.Unlock()
	if w != nil {
		n.kick()
	}
}

// AgreedDown reports whether the cluster agrees that the backend is down
// (see agreedDown for the rule and why). The daemon builds every VIP's
// Maglev input from the backends that are not agreed down.
func (n *Node) AgreedDown(vip, backend string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := voteKey(vip, backend)
	var vs []Vote
	if n.witnessUp && !n.leaving {
		vs = append(vs, n.votes.get(n.opts.Name, key))
	}
	for _, p := range n.peers {
		if p.alive && p.metaOK && p.meta.Witness {
			vs = append(vs, n.votes.get(p.name, key))
		}
	}
	return agreedDown(vs)
}

func (n *Node) takeAgreedDirty() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.agreedDirty
	n.agreedDirty = false
	return d
}

// nsTransport is memberlist's NetTransport with two changes to the TCP
// connections memberlist dials after start (push/pull, joins, fallback
// probes): they are created inside the node's network namespace, like its
// listeners (in a test, memberlist's own goroutines would otherwise dial
// from the test process's namespace), and they are tracked so that no dial
// outlives the node (memberlist does not wait for its probe goroutines).
type nsTransport struct {
	*memberlist.NetTransport
	in func(func() error) error

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	dials  sync.WaitGroup
}

func newNSTransport(t *memberlist.NetTransport, in func(func() error) error) *nsTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &nsTransport{NetTransport: t, in: in, ctx: ctx, cancel: cancel}
}

func (t *nsTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *nsTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, net.ErrClosed
	}
	t.dials.Add(1)
	t.mu.Unlock()
	defer t.dials.Done()
	var c net.Conn
	err := t.in(func() (err error) {
		d := net.Dialer{Timeout: timeout}
		c, err = d.DialContext(t.ctx, "tcp", a.Addr)
		return err
	})
	return c, err
}

// Shutdown aborts dials in flight, waits for them, then closes the
// listeners.
func (t *nsTransport) Shutdown() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.dials.Wait()
	return t.NetTransport.Shutdown()
}

// delegate implements memberlist.Delegate for the node.
type delegate Node

func (d *delegate) NodeMeta(limit int) []byte {
	b := d.metaBytes.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	if b[0] != msgVote {
		if h := d.user.get(MsgType(b[0])); h != nil {
			h(b[1:])
		}
		return
	}
	var w wireVote
	if json.Unmarshal(b[1:], &w) != nil {
		return
	}
	n := (*Node)(d)
	n.mu.Lock()
	changed := w.Origin != n.opts.Name && n.votes.merge(w)
	if changed {
		n.agreedDirty = true
		// Pass it on (epidemic): with more than a few nodes, the origin's
		// own retransmissions may not reach everyone.
		n.q.QueueBroadcast(&voteBroadcast{name: w.Origin + "\x00" + w.Key, msg: append([]byte(nil), b...)})
	}
	n.mu.Unlock()
	if changed {
		n.kick()
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.q.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte {
	n := (*Node)(d)
	n.mu.Lock()
	all := n.votes.all()
	n.mu.Unlock()
	b, _ := json.Marshal(all)
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	var all []wireVote
	if json.Unmarshal(buf, &all) != nil {
		return
	}
	n := (*Node)(d)
	n.mu.Lock()
	changed := false
	for _, w := range all {
		if w.Origin != n.opts.Name && n.votes.merge(w) {
			changed = true
		}
	}
	if changed {
		n.agreedDirty = true
	}
	n.mu.Unlock()
	if changed {
		n.kick()
	}
}

// events implements memberlist.EventDelegate. Callbacks run with
// memberlist's node lock held: copy what is needed, never call memberlist.
type events Node

func (e *events) NotifyJoin(mn *memberlist.Node)   { e.upsert(mn, true, "member joined") }
func (e *events) NotifyUpdate(mn *memberlist.Node) { e.upsert(mn, true, "") }
func (e *events) NotifyLeave(mn *memberlist.Node)  { e.upsert(mn, false, "") }

func (e *events) upsert(mn *memberlist.Node, alive bool, msg string) {
	n := (*Node)(e)
	if mn.Name == n.opts.Name {
		return
	}
	a, _ := netip.AddrFromSlice(mn.Addr)
	m, err := decodeMeta(mn.Meta)
	n.mu.Lock()
	p := n.peers[mn.Name]
	if p == nil {
		p = &peer{name: mn.Name}
		n.peers[mn.Name] = p
	}
	p.addr = netip.AddrPortFrom(a.Unmap(), mn.Port)
	p.alive = alive
	if err == nil {
		p.meta, p.metaOK = m, true
	} else if alive {
		n.log.Warn("member with unreadable metadata (another version?) ignored by elections", "member", mn.Name)
		p.metaOK = false
	}
	if !alive {
		// Its votes stop counting now; a restarted process votes anew.
		n.votes.forget(mn.Name)
		msg = "member dead"
		if p.meta.Leaving {
			msg = "member left"
		}
	}
	n.agreedDirty = true
	n.mu.Unlock()
	if msg != "" {
		n.log.Info(msg, "member", mn.Name, "addr", p.addr)
	}
	n.kick()
}

// logAdapter turns memberlist's "[LEVEL] memberlist: ..." lines into slog.
type logAdapter struct{ log *slog.Logger }

func (l *logAdapter) Write(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	lvl := slog.LevelDebug
	for _, x := range []struct {
		p string
		l slog.Level
	}{{"[ERR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelInfo}, {"[DEBUG]", slog.LevelDebug}} {
		if strings.HasPrefix(s, x.p) {
			lvl, s = x.l, strings.TrimSpace(strings.TrimPrefix(s, x.p))
			break
		}
	}
	// memberlist's INFO is chatty per-event detail the node already logs.
	if lvl == slog.LevelInfo {
		lvl = slog.LevelDebug
	}
	l.log.Log(context.Background(), lvl, s, "source", "memberlist")
	return len(b), nil
}

var _ io.Writer = (*logAdapter)(nil)

// Collectors are the node's Prometheus metrics, for the daemon's registry.
func (n *Node) Collectors() []prometheus.Collector { return n.m.collectors() }

func (n *Node) updateMetricsLocked(unowned map[string]bool) {
	counts := map[string]float64{"alive": 1, "dead": 0, "left": 0}
	for _, p := range n.peers {
		switch {
		case p.alive:
			counts["alive"]++
		case p.meta.Leaving:
			counts["left"]++
		default:
			counts["dead"]++
		}
	}
	for s, c := range counts {
		n.m.members.WithLabelValues(s).Set(c)
	}
	n.m.vipOwner.Reset()
	n.m.vipUnowned.Reset()
	for _, v := range n.opts.VIPs {
		_, held := n.holds[v.Name]
		n.m.vipOwner.WithLabelValues(v.Name).Set(b2f(held))
		n.m.vipUnowned.WithLabelValues(v.Name).Set(b2f(unowned[v.Name]))
	}
	n.m.witnessUp.Set(b2f(n.witnessUp))
	n.m.healthy.Set(b2f(n.unhealthyLocked() == ""))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
