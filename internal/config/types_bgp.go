package config

// BGP announces VIPs to routers (active-active behind their ECMP), with an
// embedded GoBGP speaker: no external daemon. Every node of the group
// announces the same VIPs with the same hash_seed and backends, so whichever
// node a router's hash picks sends a flow to the same backend. A VIP is
// announced only while this node can serve it and is withdrawn first on
// drain, SIGTERM and loss of health; see docs/bgp.md.
type BGP struct {
	// ASN is this node's autonomous system number (1-4294967295; 4-byte
	// ASNs are announced as such). Nodes of one group usually share it.
	ASN uint32 `yaml:"asn"`
	// RouterID is the BGP identifier, an IPv4 address unique among the
	// speakers a router sees. Default: node.interface's first IPv4 address.
	RouterID string `yaml:"router_id"`
	// ListenPort is the TCP port on which peers may open sessions to this
	// node; -1 opens no listener (this node always connects). Default: 179.
	ListenPort int `yaml:"listen_port"`
	// ListenAddresses limit the listener to these local addresses.
	// Default: all.
	ListenAddresses []string `yaml:"listen_addresses"`
	// NextHop is the IPv4 next hop of announced IPv4 VIPs. Default: the
	// local address of each session ("next-hop-self"), which is right when
	// the router peers with the address it should forward to.
	NextHop string `yaml:"next_hop"`
	// NextHopV6 is the same for IPv6 VIPs. Default: the session's local
	// address (an IPv6 session is then needed for IPv6 VIPs).
	NextHopV6 string `yaml:"next_hop_v6"`
	// Communities are standard communities ("65001:100", or a well-known
	// name: no-export, no-advertise, no-export-subconfed, blackhole) added
	// to every announcement.
	Communities []string `yaml:"communities"`
	// WithdrawSettle is how long a node keeps serving after withdrawing its
	// VIPs on SIGTERM, before it stops listeners and detaches XDP, so the
	// routers have moved traffic away first. shutdown.drain starts after
	// it: a stop takes up to withdraw_settle + drain. Default: 2s.
	WithdrawSettle Duration `yaml:"withdraw_settle"`
	// GracefulRestart advertises the graceful-restart capability (RFC 4724)
	// with this restart time, so that the routers keep this node's routes
	// for up to that long when its session drops without a NOTIFICATION (a
	// crash or kill -9). Only useful when a restarting node keeps
	// forwarding (a single node); with several nodes a crashed node's
	// routes should go at once, so the default is off. 0 is off; at most
	// 4095s. Default: 0.
	GracefulRestart Duration `yaml:"graceful_restart"`
	// Peers are the routers this node opens sessions with.
	Peers []BGPPeer `yaml:"peers"`
	// VIPs are announced as /32 or /128 while this node can serve them.
	VIPs []BGPVIP `yaml:"vips"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	// Address is the peer's IP address.
	Address string `yaml:"address"`
	// Port is the peer's BGP port. Default: 179.
	Port int `yaml:"port"`
	// ASN is the peer's autonomous system number. Equal to bgp.asn makes an
	// iBGP session, otherwise eBGP.
	ASN uint32 `yaml:"asn"`
	// Password enables TCP MD5 signatures (RFC 2385) with this secret.
	// Prefer password_file.
	Password string `yaml:"password"`
	// PasswordFile holds the TCP MD5 secret (surrounding whitespace is
	// trimmed).
	PasswordFile string `yaml:"password_file"`
	// HoldTime is how long a session stays up without a message from the
	// peer: a crashed node's routes stay at the router this long unless BFD
	// notices sooner. 0 or 3s-65535s; the router may negotiate it down.
	// Default: 90s.
	HoldTime Duration `yaml:"hold_time"`
	// Keepalive is the keepalive interval. Default: hold_time / 3.
	Keepalive Duration `yaml:"keepalive"`
	// ConnectRetry is the wait between attempts to open the session.
	// Default: 5s.
	ConnectRetry Duration `yaml:"connect_retry"`
	// Passive waits for the peer to connect instead of connecting.
	// Default: false.
	Passive bool `yaml:"passive"`
	// MultihopTTL allows an eBGP peer that is not directly connected, up to
	// this many hops (1-255). 0 is a directly connected peer. Default: 0.
	MultihopTTL int `yaml:"multihop_ttl"`
	// BFD runs single-hop BFD (RFC 5880/5881) with the peer so a lost node
	// is noticed in min_rx × multiplier instead of the hold time. The
	// router must run BFD for this session too.
	BFD *BGPBFD `yaml:"bfd"`
}

// BGPBFD are a session's BFD timers.
type BGPBFD struct {
	// Enabled turns BFD on for the session. Default: true (the section is
	// there); false keeps the timers written down but off.
	Enabled *bool `yaml:"enabled"`
	// MinTx is the desired minimum interval between BFD packets this node
	// sends, 10ms-60s. Default: 300ms.
	MinTx Duration `yaml:"min_tx"`
	// MinRx is the required minimum interval between received packets,
	// 10ms-60s. Default: 300ms.
	MinRx Duration `yaml:"min_rx"`
	// Multiplier is how many missed intervals declare the peer down, 2-255.
	// Default: 3.
	Multiplier int `yaml:"multiplier"`
}

// BGPVIP is one announced address.
type BGPVIP struct {
	// VIP names a VIP of the top-level vips list (announced while XDP is
	// attached and it has a usable backend), or is an IP address written
	// directly (an address the L7 proxy serves: announced while L7 is up).
	// A VIP is either announced here or floats in cluster.vips, not both.
	VIP string `yaml:"vip"`
	// Communities are added to this VIP's announcement, after
	// bgp.communities.
	Communities []string `yaml:"communities"`
}
