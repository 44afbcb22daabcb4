// Package config is the one YAML file that describes a Portcullis node.
//
// A file goes through four steps, always in this order:
//
//	read → decode (strict: unknown keys and wrong types are errors with file:line:col)
//	     → apply defaults (defaults.go, the one place they are written down)
//	     → validate (the whole document, every error at once, cross references included)
//
// The result is a *Config that nobody mutates afterwards; subsystems compile it
// into their own runtime objects and the daemon swaps the whole generation
// atomically. The doc comments on the types below are the user-facing reference:
// keep them written for an operator, not for a Go programmer.
package config

// Config is a whole node's configuration.
type Config struct {
	// Node identifies this appliance within its cluster.
	Node Node `yaml:"node"`
	// Log sets the daemon's structured log output.
	Log Log `yaml:"log"`
	// Admin is the admin listener: metrics, health, JSON API and dashboard.
	Admin Admin `yaml:"admin"`
	// Shutdown controls graceful shutdown on SIGTERM/SIGINT.
	Shutdown Shutdown `yaml:"shutdown"`
	// L4 tunes the XDP fast path. It is active when VIPs are configured.
	L4 L4 `yaml:"l4"`
	// VIPs are the virtual services balanced by the XDP fast path.
	VIPs []VIP `yaml:"vips"`
	// L7 is the HTTP proxy: listeners, routes and pools.
	L7 L7 `yaml:"l7"`
	// Cluster joins this node to its peers (memberlist gossip, floating VIPs).
	Cluster *Cluster `yaml:"cluster"`
	// BGP announces VIPs to routers for active-active nodes behind ECMP.
	BGP *BGP `yaml:"bgp"`
	// HealthChecks are active checks of pool endpoints and VIP backends.
	HealthChecks []HealthCheck `yaml:"healthchecks"`
	// Discovery fills pools from a service registry instead of static endpoints.
	Discovery []Discovery `yaml:"discovery"`
	// Demo starts small HTTP backends inside the daemon. For the quickstart
	// only: never enable it on a production node.
	Demo *Demo `yaml:"demo"`

	// Path is the file this config was read from (not a YAML key).
	Path string `yaml:"-"`
	// Digest is the SHA-256 of the file's bytes, shown by the admin API so two
	// nodes can tell whether they run the same config (not a YAML key).
	Digest string `yaml:"-"`
}

// Node identifies this appliance.
type Node struct {
	// Name is unique within the cluster. Default: the host name.
	Name string `yaml:"name"`
	// Interface is the NIC that carries VIP traffic (XDP attaches here,
	// floating VIPs are added here). Required when VIPs are configured.
	Interface string `yaml:"interface"`
	// Priority decides VIP ownership in a cluster: highest wins. 0-255.
	Priority int `yaml:"priority"`
	// ID is this node's QUIC server id, 1-255: the first byte of every QUIC
	// connection ID its proxy issues, so the XDP program can route
	// short-header packets back to it. 0 leaves QUIC routing to the hash.
	ID int `yaml:"id"`
}

// Log configures log/slog output.
type Log struct {
	// Level is one of debug, info, warn, error. Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
}

// Admin is the admin listener.
type Admin struct {
	// Listen is host:port. Default: 127.0.0.1:9900. Keep it on loopback or a
	// management network: read-only endpoints need no token.
	Listen string `yaml:"listen"`
	// Token is the bearer token that mutating endpoints require. Prefer
	// TokenFile so the config can be committed without the secret.
	Token string `yaml:"token"`
	// TokenFile holds the bearer token (surrounding whitespace is trimmed).
	// Without Token or TokenFile, mutating endpoints are refused.
	TokenFile string `yaml:"token_file"`
}

// Shutdown controls what SIGTERM does.
type Shutdown struct {
	// Drain is how long in-flight requests get to finish after listeners
	// stop accepting. Default: 10s.
	Drain Duration `yaml:"drain"`
}

// L4 tunes the XDP fast path.
type L4 struct {
	// XDPMode is auto (native, falling back to generic), native or generic.
	// Default: auto.
	XDPMode string `yaml:"xdp_mode"`
	// HashSeed seeds the flow hash and the Maglev permutation. Every node of a
	// cluster must use the same seed, or flows change backend on failover.
	HashSeed uint32 `yaml:"hash_seed"`
	// MaglevSize is the Maglev table size per VIP, a prime. Default: 65537.
	// Larger tables balance finer and cost 8 bytes per slot per VIP.
	MaglevSize uint32 `yaml:"maglev_size"`
	// ConntrackSize is the number of flows the LRU connection table holds.
	// Default: 262144.
	ConntrackSize uint32 `yaml:"conntrack_size"`
	// UDPTimeout expires idle UDP flows from the connection table. Default: 30s.
	UDPTimeout Duration `yaml:"udp_timeout"`
	// SYNFloodRate is the SYN flood guard, in SYNs per second per CPU.
	// Above it, a SYN still goes to its Maglev backend but its flow is
	// written to the connection table only when the handshake's ACK
	// arrives, so spoofed SYNs neither evict live flows nor cost an insert
	// each. Default: 125000 (Katran's value). 4294967295 turns the guard off.
	SYNFloodRate uint32 `yaml:"syn_flood_rate"`
	// EncapSourceV4 is where the outer source address of packets sent to
	// ipip backends over IPv4 comes from: a prefix (e.g. 10.255.0.0/16)
	// whose host bits are filled per flow from the client's address and
	// port, so that the backend's receive-side scaling, which hashes only
	// the outer addresses, spreads flows over its queues; or one address
	// (a plain address or a /32), used for every packet. The backends'
	// decap allow-list must contain it. Default: node.interface's first
	// IPv4 address.
	EncapSourceV4 string `yaml:"encap_source_v4"`
	// EncapSourceV6 is EncapSourceV4 for IPv6 (at most the last 32 bits
	// vary). Default: node.interface's first global IPv6 address.
	EncapSourceV6 string `yaml:"encap_source_v6"`
	// EncapMTU is the IP MTU of the path from this node to its ipip
	// backends, outer header included. Default: 1500.
	EncapMTU int `yaml:"encap_mtu"`
	// EncapICMPTooBig answers a client packet that would exceed encap_mtu
	// once encapsulated with ICMP fragmentation-needed (IPv4) or ICMPv6
	// packet-too-big, from the VIP, so the client lowers its path MTU;
	// false drops such packets (counted as drop_too_big). Default: true.
	EncapICMPTooBig *bool `yaml:"encap_icmp_too_big"`
	// GUEPort is the UDP destination port of packets to gue backends; their
	// decap program must listen on it (portcullis decap --gue-port).
	// Default: 6080.
	GUEPort int `yaml:"gue_port"`
}

// VIP is a virtual service: address, port and protocol, and its backends.
type VIP struct {
	// Name is unique among VIPs.
	Name string `yaml:"name"`
	// Address is the virtual IPv4 or IPv6 address.
	Address string `yaml:"address"`
	// Port is the service port, 1-65535.
	Port int `yaml:"port"`
	// Protocol is tcp or udp. Default: tcp.
	Protocol string `yaml:"protocol"`
	// QUIC routes short-header QUIC packets by the node id in their
	// connection ID (udp only).
	QUIC bool `yaml:"quic"`
	// Backends receive the VIP's flows.
	Backends []VIPBackend `yaml:"backends"`
}

// VIPBackend is one real server behind a VIP.
type VIPBackend struct {
	// Name is unique within the VIP and identifies the backend in the Maglev
	// table: renaming a backend moves its flows.
	Name string `yaml:"name"`
	// Address is the backend's own IP address.
	Address string `yaml:"address"`
	// MAC is the backend's Ethernet address (dsr-l2), or for ipip the next
	// hop's: the router towards the backend, or the backend itself on the
	// same segment. For ipip and gue it may be left out: the daemon then resolves
	// the next hop from the routing table and its neighbour entry.
	MAC string `yaml:"mac"`
	// Forwarding is local (hand the packet to this node's own stack, for
	// VIPs the L7 proxy serves), dsr-l2 (rewrite MACs and send it to a
	// backend on the same L2 segment that holds the VIP on lo) or ipip
	// (wrap it in an outer IPv4/IPv6 header to the backend's address, in
	// any subnet; the backend runs "portcullis decap" and holds the VIP on
	// lo; the VIP and the backend must be of the same family) or gue (the
	// same with a UDP header to l4.gue_port between the two IP headers).
	// Default: dsr-l2.
	Forwarding string `yaml:"forwarding"`
	// Weight is the share of new flows, 0-65535. 0 drains: established flows
	// stay, new ones go elsewhere. Default: 100.
	Weight *int `yaml:"weight"`
	// NodeID is the QUIC server id of the proxy behind this backend (for VIPs
	// with quic: true).
	NodeID int `yaml:"node_id"`
}

// Demo starts HTTP backends inside the daemon, for the quickstart.
type Demo struct {
	// Backends are host:port addresses to serve demo backends on. Each
	// answers with its own name and address so round robin is visible.
	Backends []string `yaml:"backends"`
}
