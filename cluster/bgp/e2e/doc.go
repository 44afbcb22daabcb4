// Package e2e holds the namespace end-to-end tests of the BGP/ECMP mode:
// three load-balancer nodes running the real `portcullis run` daemon (XDP,
// L2 DSR to three backends) each announce the VIP over BGP to a router
// running a real bird2, which installs one ECMP route with a next hop per
// node. Everything runs in the network namespaces of one internal/netlab
// lab (one bridge, one veth per host):
//
//	client 10.79.1.10/24 ── router 10.79.1.1/24, 10.79.2.1/24 (bird2, AS 65000)
//	                                 │ ECMP 10.79.100.1/32 via .11 .12 .13
//	        lb1 10.79.2.11  lb2 10.79.2.12  lb3 10.79.2.13   (portcullis, AS 65001)
//	        be1 10.79.2.21  be2 10.79.2.22  be3 10.79.2.23   (VIP on lo, echo on :80)
//
// The hosts share the bridge, but each subnet is reached only through the
// router (no on-link route to the other subnet, redirects off), as across
// a real L3 network. The router forwards with
// net.ipv4.fib_multipath_hash_policy=1, so ECMP hashes on the L4 ports and
// the connections of one client spread over the nodes. The backends are
// DSR backends (netlab's MakeDSRBackend) answering the client directly
// through the router; every node has the same backends in the same order
// and the same hash seed, so a flow moved to another node by a change of
// the ECMP group finds the same backend by Maglev with no conntrack entry.
//
// The router's kernel route for the VIP (read by netlink in its namespace)
// is the ground truth of what BGP did: Lab.RouteNexthops returns its next
// hops.
//
// lab.go (not a test file) builds the topology, writes the bird and daemon
// configs and drives the processes; the benchmark bench/bgp uses it too.
// Lab.Speaker "bird" runs a bird2 speaker in each node's namespace instead
// of the daemon's own BGP (the daemon then runs without a bgp section): a
// reference for the router side and the dataplane.
//
// The tests (bgp_test.go, about a minute in all):
//
//   - TestECMPAcrossThreeNodes: one route with the three nodes as next
//     hops; 200 new connections all answered, spread over the three nodes
//     (their portcullis_l4_service_* counters) and the three backends; the
//     admin API (GET /api/v1/bgp) and the portcullis_bgp_* metrics say
//     established and announced; the nodes form a gossip cluster.
//   - TestNodeLossKeepsFlows: SIGKILL of a node drops its next hop at once
//     (the kernel closes the session); new connections work and every
//     established flow still answers from its backend. SIGTERM of another
//     node withdraws its route while the process still runs, and it exits
//     cleanly after a settle; again no flow breaks.
//   - TestNodeJoinKeepsFlows: a third node joining the ECMP group moves no
//     established flow to another backend.
//   - TestNodeVanishesWithBFD: with BFD 100ms×3 a node that vanishes (link
//     down + SIGKILL) is dropped in well under the 9s hold time, flows
//     survive, and the node rejoins after a restart.
//   - TestFloatingAndBGPVIPsCoexist: a floating VIP (cluster election,
//     ARP) beside the BGP VIP on the same nodes: one owner, not announced;
//     killing the owner moves it and drops the node's BGP next hop.
//   - TestWithdrawWhenNoBackend: with tcp health checks, every backend down
//     withdraws the VIP on every node (no route left, reason
//     no_usable_backend), and their return announces it again.
//
// They need root, XDP (generic mode is enough) and bird2
// (apt-get install bird2); they skip with the reason otherwise:
//
//	go test ./cluster/bgp/e2e/ -v
//
// PORTCULLIS_E2E_XDP_MODE=native runs the nodes with native XDP (default
// generic); PORTCULLIS_E2E_LOGDIR keeps configs and logs;
// PORTCULLIS_BGP_E2E_SPEAKER=bird uses the reference speaker instead of
// the daemon's BGP; PORTCULLIS_BGP_E2E_CLUSTER=0 leaves the cluster
// section out of the nodes' configs.
package e2e
