// Package cluster makes Portcullis nodes one cluster: memberlist gossip
// (always encrypted), one owner per floating VIP, the floating address
// itself (netlink, gratuitous ARP / unsolicited NA), a witness as the
// split-brain guard, and an agreed backend health set so that every node
// builds the same Maglev tables.
//
//	n, err := cluster.Start(opts)   // after XDP and listeners are up
//	n.Update(opts)                  // on reload
//	n.Owners(), n.Members()         // admin API
//	n.Release("web")                // admin API: manual failover
//	n.SetVote / n.AgreedDown        // health checker → Maglev input
//	n.Leave(ctx)                    // SIGTERM, before XDP is detached
//
// # What a node gossips
//
// Each node's memberlist metadata (meta.go, at most 512 bytes) carries its
// priority, its health (XDP attached, L7 up, witness reachable, leaving),
// the first 8 bytes of its config digest, the VIPs it can serve and the
// VIPs it holds. Metadata travels with every alive message and whole at
// join (push/pull), so a node that joins learns at once who holds what.
//
// # Election (election.go)
//
// Every node runs the same pure function on its own view, for each VIP:
//
//  1. eligible: alive members (memberlist alive or suspect), healthy, not
//     leaving, that can serve the VIP (it is configured on them and they
//     did not Release it);
//  2. if the VIP is not preempt and some eligible members hold it, the
//     best holder keeps it: non-preemption is "whoever holds it keeps
//     it", read from the holders' own metadata;
//  3. otherwise the best eligible member;
//
// where best = highest priority, ties to the smallest name. Two holders at
// once (after a partition heals, or a race) resolve the same way on every
// node, so exactly one keeps the VIP and the other removes its address.
//
// # One VIP on one node: the state machine
//
//	          elected (owner = self)
//	standby ───────────────────────────► holding
//	   ▲   add /32 or /128 (AddrReplace),     │
//	   │   announce count × interval,          │ owner ≠ self: another holder
//	   │   then every refresh; metadata        │ wins, preempt, unhealthy
//	   │   says "holds"                        │ (witness, XDP, L7), Release,
//	   │                                       │ removed from config, Leave
//	   └───────────────────────────────────────┘
//	         remove the address FIRST, then metadata says "does not hold"
//
// Only the node's loop goroutine adds or removes addresses. It runs on every
// membership or metadata event, witness change, vote, Update, Release, and
// every HealthPoll. At Start a node removes addresses of its VIPs left by a
// previous process (kill -9), joins its peers, and only then elects: a
// restarting node first learns who holds what, so non-preemption holds
// across restarts. Release puts the node in stand-down for the VIP (it
// stops advertising it as servable) until another node holds it; for a
// preempt VIP until Reclaim; never when no other node could take it.
//
// # Partitions of a pair (a: priority 200, holds the VIP; b: 100)
//
//   - Both up, both reach the witness: a holds, b stands by.
//   - a crashes (or its link dies): b declares a dead after the failure
//     detection time (fast profile 0.8-1.0 s, lan about 6 s), becomes the
//     best eligible node, adds the VIP and announces it. When a returns it
//     sees b holding and stays standby unless the VIP is preempt.
//   - The link between a and b is cut, both still reach the witness (e.g.
//     gossip blocked by a firewall, or the witness reachable by another
//     path): each declares the other dead; a keeps the VIP and b claims it
//     too: both hold it, the router's neighbour entry follows the last
//     announcement. This is the one split brain a witness cannot prevent;
//     it ends when the link heals: the rejoin loop (memberlist does not
//     rejoin by itself) merges the views, both see two holders, the
//     election gives the VIP to a (priority) and b removes its address. To
//     make this case unlikely, put gossip on the same path as the client
//     traffic and pick the gateway as witness.
//   - One node loses the witness (its uplink is down): it reports itself
//     unhealthy after fails × interval, removes the VIP, and the other
//     (if it reaches the witness) takes it through the normal election,
//     with no failure detection delay since the unhealthy node is alive
//     and says so.
//   - Both lose the witness: nobody is eligible, nobody holds the VIP;
//     portcullis_vip_unowned{vip} is 1 on both and
//     portcullis_cluster_witness_up is 0. Serving nothing is the choice
//     here: a node that cannot reach the gateway could not answer clients
//     anyway, and two nodes claiming blind could split the segment. The
//     first node to reach the witness again claims the VIP.
//   - Wrong or missing key: the node cannot join (memberlist rejects what
//     it cannot decrypt); it runs alone and, if eligible, claims the VIP:
//     a config error, visible as portcullis_cluster_members and in the
//     digests of the admin API.
//
// # Agreed backend health (votes.go)
//
// Each node gossips its own vote per backend (up, down or no view) with
// memberlist broadcasts (one small message per change, relayed by
// receivers) and full state in push/pull (anti-entropy). AgreedDown
// applies the rule on the votes of alive members that reach their witness:
// down only on a strict majority of the nodes that have a view (a pair:
// both, or the only one with a view). See agreedDown for why it is
// up-biased. The daemon feeds AgreedDown, not its local checks, into the
// Maglev tables, and recomputes them in OnAgreedChange.
//
// # User messages (usermsg.go)
//
// Other subsystems send their own messages over the same encrypted
// transport: Handle registers a handler for a type byte (MsgType, all
// listed in usermsg.go), SendToPeers sends one datagram (at most
// MaxUserMessage bytes) to every alive peer, best effort. The cluster-wide
// rate limits use it (type 'r'): the daemon wires l7/ratelimit's Sync to
// it, see docs/security.md.
//
// # Sockets and namespaces
//
// Every socket is created through Options.InNamespace: memberlist's
// listeners and the TCP connections it dials later (nsTransport), ARP/NDP
// sockets and witness probes. In the daemon that is the current namespace;
// tests run several nodes in one process, each in a netlab namespace.
package cluster
