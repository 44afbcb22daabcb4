// Package e2e holds the health-checking end-to-end tests: the real
// `portcullis run` daemon, checked backends that fail and recover, and what
// the daemon does about it in its XDP maps, its L7 pools and its admin API.
//
//   - health_xdp_test.go (root; network namespaces and XDP, generic mode):
//     a client, a load balancer running the daemon with XDP on its eth0,
//     and three L2 DSR backends holding the VIP on lo. A VIP health check
//     (tcp, so the DSR-path probe is the whole check) takes a backend whose
//     server stopped out of the Maglev table and brings it back when it
//     restarts; a backend that listens on its own address but lost the VIP
//     from lo is marked down too; an admin drain keeps established flows
//     and sends new ones elsewhere.
//   - dsr_source_test.go (root): the DSR probe when the VIP is listed
//     before the node's own address on node.interface (IPv4 after the own
//     address is re-added; IPv6, where the kernel lists the newest global
//     address first), and an IPv6 VIP check through the daemon.
//   - l7_test.go (no root; loopback): a pool of three upstreams in the test
//     process with an http check, one flipping to 500 and back; a pool
//     filled by DNS discovery from a github.com/miekg/dns server in the
//     test, whose answer changes and which then stops (the pool keeps its
//     last set and the source shows as stale).
//
// Run them with
//
//	go test ./healthcheck/e2e/ -v
//
// The namespace tests skip, with the reason, when not root or when XDP
// cannot be attached here. Every wait is bounded.
package e2e
