// Package e2e holds the cluster's namespace end-to-end tests (issue 5):
// two load-balancer nodes running the real `portcullis run` daemon with XDP
// (L2 DSR to two backends) and the L7 proxy, a client, a witness host and
// a node with the wrong gossip key, all in network namespaces of an
// internal/netlab lab. The floating VIP is on nobody's eth0 until the
// cluster adds it to its owner's.
//
// The tests check crash failover (link down + kill -9) and its gap as a
// client probing with a new connection every 20 ms sees it, that an
// established DSR flow survives it (the survivor's Maglev table maps it to
// the same backend), zero failed requests across a graceful SIGTERM,
// non-preemption and preemption, the witness (owner only, then both),
// the wrong-key node and the release endpoint of the admin API.
//
// lab.go (not a test file) builds the topology and drives the daemons; the
// failover benchmark (bench/failover) uses it too.
//
// The tests need root and XDP; they skip with the reason otherwise:
//
//	go test ./cluster/e2e/ -v
//
// PORTCULLIS_E2E_XDP_MODE=generic runs them with generic XDP (default
// native).
package e2e
