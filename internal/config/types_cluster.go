package config

// Cluster joins the node to its peers: memberlist gossip (always encrypted),
// the election of one owner per floating VIP, and the agreed backend health
// that keeps Maglev tables identical on every node. Every node of a cluster
// runs the same file except node.name, node.priority, node.interface and
// cluster.bind/advertise.
type Cluster struct {
	// Bind is the gossip address, ip:port (UDP and TCP); a bare IP gets port
	// 7946. Set this node's own address on the cluster network: with
	// 0.0.0.0 memberlist advertises the first private address it finds,
	// which may be the wrong network. Default: 0.0.0.0:7946.
	Bind string `yaml:"bind"`
	// Advertise is the host:port other nodes use to reach this node when it
	// differs from bind (NAT). Default: bind.
	Advertise string `yaml:"advertise"`
	// Peers are other nodes' gossip addresses (host:port; a bare IP gets
	// port 7946), joined at start and rejoined
	// every rejoin_interval while they are not members, so a healed
	// partition merges (memberlist does not do that by itself). This node's
	// own address may be listed: it is skipped, so every node can share the
	// list.
	Peers []string `yaml:"peers"`
	// KeyFile holds the base64 gossip encryption key (16, 24 or 32 bytes
	// once decoded: AES-128/192/256). Gossip is always encrypted and
	// authenticated: a node without the key cannot join. Generate one with
	// `head -c 32 /dev/urandom | base64`.
	KeyFile string `yaml:"key_file"`
	// Key is the base64 key written inline. Discouraged: the config file is
	// usually committed and shown by the admin API's digest; prefer
	// key_file. Set key or key_file, not both.
	Key string `yaml:"key"`
	// Profile is lan (memberlist's LAN defaults: a dead node is detected in
	// about 6 s) or fast (probe every 200 ms, 100 ms probe timeout,
	// suspicion multiplier 2, gossip every 50 ms: about 1 s on a pair, at
	// the cost of more packets and more sensitivity to a loaded CPU).
	// Each field below overrides one setting of the profile. Default: lan.
	Profile string `yaml:"profile"`
	// ProbeInterval is how often each node probes one random peer.
	// Default: the profile's (lan 1s, fast 200ms).
	ProbeInterval Duration `yaml:"probe_interval"`
	// ProbeTimeout is how long a probe waits for an ack before asking other
	// nodes to probe indirectly (impossible in a pair). It must be shorter
	// than probe_interval. Default: the profile's (lan 500ms, fast 100ms).
	ProbeTimeout Duration `yaml:"probe_timeout"`
	// SuspicionMult scales how long a suspected node has to refute before
	// it is declared dead: suspicion_mult × log10(max(1, members)) ×
	// probe_interval, at least one interval. Default: the profile's (lan 4,
	// fast 2).
	SuspicionMult int `yaml:"suspicion_mult"`
	// GossipInterval is how often queued updates (metadata, health votes,
	// deaths) are sent. Default: the profile's (lan 200ms, fast 50ms).
	GossipInterval Duration `yaml:"gossip_interval"`
	// RejoinInterval is how often configured peers that are not members
	// are joined again. Default: the profile's (lan 10s, fast 2s).
	RejoinInterval Duration `yaml:"rejoin_interval"`
	// Interface is the NIC floating VIPs are added to and gratuitous
	// ARP/unsolicited NA are sent from. Default: node.interface.
	Interface string `yaml:"interface"`
	// VIPs are the addresses that float between nodes: each is owned by one
	// node at a time, which holds it on interface and answers ARP/NDP for
	// it.
	VIPs []ClusterVIP `yaml:"vips"`
	// Witness is the split-brain guard: a node that cannot reach it does
	// not claim (and gives up) every floating VIP. Without a witness, a
	// pair whose link is cut ends with both nodes owning every VIP.
	Witness *Witness `yaml:"witness"`
	// GARP controls the gratuitous ARPs (IPv4) and unsolicited neighbour
	// advertisements (IPv6) sent when this node gains a VIP, which move the
	// clients' and the router's neighbour entries to this node.
	GARP GARP `yaml:"garp"`
}

// ClusterVIP is one floating address.
type ClusterVIP struct {
	// VIP names a VIP of the top-level vips list (its address floats), or
	// is an IP address written directly (for an address the L7 proxy
	// serves without an L4 VIP).
	VIP string `yaml:"vip"`
	// Preempt gives the VIP back to the highest-priority healthy node as
	// soon as it is available. Default false: the current owner keeps the
	// VIP while it is alive and healthy, so a returning node does not cause
	// a second failover. Set it to the same value on every node.
	Preempt bool `yaml:"preempt"`
}

// Witness is probed by every node; see Cluster.Witness.
type Witness struct {
	// Kind is the probe: tcp (a connection to address host:port; a refused
	// connection counts as reachable, since the host answered), icmp (echo
	// request to address) or arp (ARP request to address, on
	// cluster.interface: for a gateway on the same segment, IPv4 only).
	Kind string `yaml:"kind"`
	// Address is an IP address (icmp, arp) or host:port (tcp). Choose the
	// thing clients come through, usually the default gateway: a node that
	// cannot reach it is of no use as a VIP owner.
	Address string `yaml:"address"`
	// Interval between probes. Default: 1s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe; at most interval. Default: 500ms.
	Timeout Duration `yaml:"timeout"`
	// Fails is the number of consecutive failed probes that make the
	// witness unreachable; one success makes it reachable again.
	// Default: 3.
	Fails int `yaml:"fails"`
}

// GARP controls announcements of a gained VIP.
type GARP struct {
	// Count is how many announcements (each a gratuitous ARP request and
	// reply, or an unsolicited NA) are sent when the VIP is gained.
	// Default: 3.
	Count int `yaml:"count"`
	// Interval between those announcements. Default: 100ms.
	Interval Duration `yaml:"interval"`
	// Refresh re-announces held VIPs periodically, for switches and
	// routers that lost their entries. 0 turns it off. Default: 10s.
	Refresh *Duration `yaml:"refresh"`
}
