package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vishvananda/netlink"
)

// Options configure a Node. OptionsFromConfig builds them from the config
// file; tests build them directly.
type Options struct {
	// Name is this node's unique name in the cluster (node.name).
	Name string
	// Priority decides elections: highest wins, ties by name (0-255).
	Priority int
	// Bind is the gossip ip:port (UDP and TCP).
	Bind string
	// Advertise is the ip:port peers use to reach this node; "" = Bind.
	Advertise string
	// Peers are joined at start and rejoined while they are not members.
	Peers []string
	// Key encrypts and authenticates gossip (AES, 16, 24 or 32 bytes).
	// Required: there is no unencrypted mode.
	Key []byte
	// Profile holds the failure-detection timings; zero fields take the
	// LAN profile's values.
	Profile Profile
	// Interface is where VIP addresses are added and announced.
	Interface string
	// VIPs float between nodes.
	VIPs []VIP
	// Witness, if set, must be reachable for this node to claim VIPs.
	Witness *Witness
	// GARP controls announcements of gained VIPs.
	GARP GARPConfig
	// Health reports the daemon's own readiness; nil = always healthy.
	// It is polled every HealthPoll and after HealthChanged; it must be
	// cheap and must not call into the Node.
	Health func() Health
	// HealthPoll is how often Health is polled. Default 500ms.
	HealthPoll time.Duration
	// ConfigDigest is gossiped so operators see which nodes run the same
	// config (only its first 16 hex digits travel).
	ConfigDigest string
	// OnAgreedChange is called (from the node's own goroutine, never
	// concurrently with itself) after anything that may change
	// AgreedDown's answers: a vote or a membership change. The daemon
	// recomputes its Maglev inputs there. Keep it short.
	OnAgreedChange func()
	// Netlink is the handle VIP addresses are managed with; nil = a handle
	// on the current network namespace.
	Netlink *netlink.Handle
	// InNamespace runs fn with the calling goroutine in the network
	// namespace the node's sockets must live in (the one Netlink manages).
	// Every socket the node creates — memberlist's listeners and the TCP
	// connections it dials later, ARP/NDP sockets, witness probes — is
	// created inside it. nil = the current namespace (the daemon). Tests
	// pass netlab's Host.Do.
	InNamespace func(fn func() error) error
	// Logger receives one line per event; nil = slog.Default().
	Logger *slog.Logger
}

// VIP is one floating address.
type VIP struct {
	// Name identifies the VIP in Owners, metrics, logs and the admin API,
	// and (hashed) in gossip: it must be the same on every node.
	Name string
	// Addr is added as /32 or /128 to Options.Interface by its owner.
	Addr netip.Addr
	// Preempt: the highest-priority eligible node takes the VIP even from a
	// healthy owner. Should be the same on every node.
	Preempt bool
}

// WitnessKind is the probe a Witness uses.
type WitnessKind string

// Witness kinds.
const (
	WitnessTCP  WitnessKind = "tcp"  // connect to Address (host:port); refused counts as reachable
	WitnessICMP WitnessKind = "icmp" // echo request to Address (an IP)
	WitnessARP  WitnessKind = "arp"  // ARP request for Address (an IPv4) on Options.Interface
)

// Witness is the split-brain guard: see the package documentation.
type Witness struct {
	Kind     WitnessKind
	Address  string
	Interval time.Duration // between probes; default 1s
	Timeout  time.Duration // of one probe; default 500ms
	Fails    int           // consecutive failures that make it unreachable; default 3
}

// GARPConfig controls announcements of a gained VIP.
type GARPConfig struct {
	Count    int           // announcements at gain; default 3
	Interval time.Duration // between them; default 100ms
	Refresh  time.Duration // re-announce held VIPs this often; 0 = never
}

// Health is the daemon's local readiness. A field is true when the thing is
// working or when this node does not need it (no L7 listener configured:
// L7 true), so that a node is eligible exactly when all fields are true.
type Health struct {
	XDP bool // the XDP program is attached
	L7  bool // the L7 listeners are up
}

// Profile is a set of failure-detection timings; see memberlist's Config.
type Profile struct {
	Name           string // "lan", "fast" or "" (custom)
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
	// RejoinInterval: how often configured peers that are not members are
	// joined again (memberlist itself never rejoins after a partition).
	RejoinInterval time.Duration
}

// LANProfile is memberlist's DefaultLANConfig: a dead node is declared in
// about 6 s on a pair (LAB.md).
func LANProfile() Profile {
	c := memberlist.DefaultLANConfig()
	return Profile{Name: "lan", ProbeInterval: c.ProbeInterval, ProbeTimeout: c.ProbeTimeout,
		SuspicionMult: c.SuspicionMult, GossipInterval: c.GossipInterval, RejoinInterval: 10 * time.Second}
}

// FastProfile detects a dead peer of a pair in 0.78-1.0 s (LAB.md): in a
// pair there is no third node for indirect probes, so the suspicion timeout
// is SuspicionMult × ProbeInterval = 400 ms after the first failed probe.
// The price: 5 probes per second per node, and a CPU stall of a few hundred
// milliseconds can look like a death (memberlist's Lifeguard awareness
// stretches timeouts on a node that notices it is slow, which mitigates it).
func FastProfile() Profile {
	return Profile{Name: "fast", ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond,
		SuspicionMult: 2, GossipInterval: 50 * time.Millisecond, RejoinInterval: 2 * time.Second}
}

// ProfileByName returns LANProfile or FastProfile.
func ProfileByName(name string) (Profile, error) {
	switch name {
	case "", "lan":
		return LANProfile(), nil
	case "fast":
		return FastProfile(), nil
	}
	return Profile{}, fmt.Errorf("cluster: unknown profile %q (lan or fast)", name)
}

// withDefaults fills zero fields from LANProfile.
func (p Profile) withDefaults() Profile {
	d := LANProfile()
	if p.ProbeInterval == 0 {
		p.ProbeInterval = d.ProbeInterval
	}
	if p.ProbeTimeout == 0 {
		p.ProbeTimeout = d.ProbeTimeout
	}
	if p.SuspicionMult == 0 {
		p.SuspicionMult = d.SuspicionMult
	}
	if p.GossipInterval == 0 {
		p.GossipInterval = d.GossipInterval
	}
	if p.RejoinInterval == 0 {
		p.RejoinInterval = d.RejoinInterval
	}
	return p
}

// normalize fills defaults and checks what Start needs. It returns a copy.
func (o Options) normalize() (Options, error) {
	// Copies first: normalize must not write into the caller's slices.
	o.VIPs = append([]VIP(nil), o.VIPs...)
	o.Peers = append([]string(nil), o.Peers...)
	o.Profile = o.Profile.withDefaults()
	if o.Name == "" {
		return o, errors.New("cluster: a node name is required")
	}
	if o.Priority < 0 || o.Priority > 255 {
		return o, fmt.Errorf("cluster: priority %d is out of range (0-255)", o.Priority)
	}
	switch len(o.Key) {
	case 16, 24, 32:
	default:
		return o, fmt.Errorf("cluster: the gossip key has %d bytes; it must have 16, 24 or 32 (gossip is always encrypted)", len(o.Key))
	}
	if o.Profile.ProbeTimeout >= o.Profile.ProbeInterval {
		return o, fmt.Errorf("cluster: probe timeout %s must be shorter than the probe interval %s", o.Profile.ProbeTimeout, o.Profile.ProbeInterval)
	}
	if _, _, err := splitIPPort(o.Bind); err != nil {
		return o, fmt.Errorf("cluster: bind: %w", err)
	}
	if o.Advertise != "" {
		if _, _, err := splitIPPort(o.Advertise); err != nil {
			return o, fmt.Errorf("cluster: advertise: %w", err)
		}
	}
	if len(o.VIPs) > 0 && o.Interface == "" {
		return o, errors.New("cluster: floating VIPs need an interface")
	}
	names := map[string]bool{}
	hashes := map[uint32]string{}
	for i, v := range o.VIPs {
		if v.Name == "" || !v.Addr.IsValid() {
			return o, fmt.Errorf("cluster: VIP %d needs a name and an address", i)
		}
		if names[v.Name] {
			return o, fmt.Errorf("cluster: duplicate VIP %q", v.Name)
		}
		names[v.Name] = true
		h := vipHash(v.Name)
		if other, ok := hashes[h]; ok {
			return o, fmt.Errorf("cluster: VIP names %q and %q have the same gossip hash; rename one", other, v.Name)
		}
		hashes[h] = v.Name
		o.VIPs[i].Addr = v.Addr.Unmap()
	}
	if max := maxMetaVIPs; len(o.VIPs) > max {
		return o, fmt.Errorf("cluster: %d floating VIPs; at most %d fit in a node's gossip metadata", len(o.VIPs), max)
	}
	if w := o.Witness; w != nil {
		wc := *w
		if wc.Interval <= 0 {
			wc.Interval = time.Second
		}
		if wc.Timeout <= 0 {
			wc.Timeout = 500 * time.Millisecond
		}
		if wc.Fails <= 0 {
			wc.Fails = 3
		}
		switch wc.Kind {
		case WitnessTCP:
			if _, _, err := net.SplitHostPort(wc.Address); err != nil {
				return o, fmt.Errorf("cluster: witness: %w", err)
			}
		case WitnessICMP, WitnessARP:
			a, err := netip.ParseAddr(wc.Address)
			if err != nil {
				return o, fmt.Errorf("cluster: witness: %w", err)
			}
			if wc.Kind == WitnessARP && (!a.Unmap().Is4() || o.Interface == "") {
				return o, errors.New("cluster: an arp witness needs an IPv4 address and an interface")
			}
		default:
			return o, fmt.Errorf("cluster: witness kind %q (tcp, icmp or arp)", wc.Kind)
		}
		o.Witness = &wc
	}
	if o.GARP.Count <= 0 {
		o.GARP.Count = 3
	}
	if o.GARP.Interval <= 0 {
		o.GARP.Interval = 100 * time.Millisecond
	}
	if o.HealthPoll <= 0 {
		o.HealthPoll = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InNamespace == nil {
		o.InNamespace = func(fn func() error) error { return fn() }
	}
	return o, nil
}

func splitIPPort(s string) (netip.Addr, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q: the host must be an IP address", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("%q: bad port", s)
	}
	return a, p, nil
}
