// Package bgp announces VIPs to routers with an embedded GoBGP speaker, for
// nodes that run active-active behind the routers' ECMP (docs/bgp.md).
//
//	sp, err := bgp.Start(cfg, log)       // sessions with every peer
//	ok, why := bgp.Decide(readiness)     // per VIP: can this node serve it?
//	sp.Apply(wants)                      // announce/withdraw the difference
//	sp.WithdrawAll(bgp.ReasonDraining)   // SIGTERM, before anything stops
//	sp.Stop(ctx)                         // Cease to every peer
//
// The package holds no opinion about where readiness comes from: the daemon
// gathers it (XDP attached, listeners up, the cluster's witness and agreed
// backend health, draining) and calls Apply on every change and on a short
// poll. The speaker only announces: routes the peers send are refused at
// import, so its RIB holds this node's own paths and nothing else.
package bgp
