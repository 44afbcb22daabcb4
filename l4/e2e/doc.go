// Package e2e holds the L4 fast path's namespace end-to-end tests (tier 3
// in DESIGN.md): a client, a load-balancer node running the real
// `portcullis run` daemon with XDP attached to its eth0, and two L2 DSR
// backends that hold the VIP on lo, all in network namespaces of an
// internal/netlab lab. Real TCP connections cross the VIP; the tests check
// where each one lands, that it stays there, what a reload that removes a
// backend does to established and new connections, the handoff of a
// `local` backend to the node's own stack, and the portcullis_l4_* metrics.
//
// The tests need root and XDP; they skip with the reason otherwise. Run
// them with
//
//	go test ./l4/e2e/ -v
//
// Everything they create (namespaces, veths, the bridge, XDP programs,
// the daemon process) is removed when they end, even on failure.
package e2e
