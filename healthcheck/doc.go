// Package healthcheck holds one health state per backend (an L7 pool
// endpoint or an L4 VIP backend), feeds it from active checks and from the
// L7 proxy's passive signals, and pushes changes to the L4 map writer and
// the L7 pools. Discovery (package discovery) decides which endpoints a pool
// has; this package decides which of them get traffic, and how much.
//
// # States
//
// A target starts Unknown and serves: a restart or reload must not take
// working backends out while their first checks are pending. The first
// result decides Up or Down; then fall failures in a row take it Down and
// rise successes in a row bring it Up. Passive signals (consecutive 5xx,
// connect errors, timeouts) take a target Down at once and reset its run of
// successes, so only active checks bring it back. A recovered target ramps
// from 10% to 100% of its weight over slow_start. Drain (admin) is apart
// from health: weight 0, established flows stay, no new ones.
//
// # DSR checks
//
// A dsr-l2 backend gets packets addressed to the VIP, delivered to its MAC;
// it accepts them only if it holds the VIP (on lo) and something listens on
// the VIP's port. A check of its own address proves neither. So a VIP check
// of a dsr-l2 backend sends what the XDP program would send: an Ethernet
// frame from node.interface to the backend's MAC carrying a TCP SYN for
// VIP:port, written to an AF_PACKET socket. The source is this node's own
// address on the interface, so the backend answers (from the VIP, which it
// holds) to this node, through its normal route. The check passes on a
// SYN-ACK from the backend's MAC; a RST means the VIP is there but nothing
// listens; silence means the backend dropped a packet for an address it
// does not have. The half-open connection is closed with a RST.
//
// An ipip or gue backend (issue #11) is probed the same way through the
// encapsulated path: the SYN is wrapped in the outer IPv4/IPv6 header the
// XDP program would add (for gue with the UDP header to l4.gue_port; from
// an address of l4.encap_source_v4/v6, which
// the backend's decap allow-list holds, to the backend's address) and sent
// to the next hop's MAC; the SYN-ACK comes back routed, so it is matched by
// addresses, ports and acknowledgement number instead of by MAC. A backend
// without the decap program, or that does not allow this node, fails it.
//
// Why this is safe on a live node: the source port is reserved by binding a
// TCP socket to it (never listening or connecting), so no connection of
// the node uses it, and the kernel, which has no socket for the SYN-ACK,
// answers it with a RST at worst; the packet socket receives through a
// classic BPF filter (TCP from VIP:port to that port only) attached before
// it is bound, so it never copies the interface's traffic; the SYN-ACK's
// destination is the node's own address, not the VIP, so the XDP program
// passes it. Sending a SYN to the VIP through a normal socket would not do:
// the VIP is local on the owner (and routed to the owner elsewhere), so the
// kernel would never put the backend's MAC on it.
//
// The probe needs CAP_NET_RAW and node.interface. It is combined with the
// check of type on the backend's own address (both must pass), except for
// tcp checks, which it replaces.
package healthcheck
