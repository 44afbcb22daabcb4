package bgp

// Reason says why a VIP is or is not announced. The values are metric
// label values and appear in the admin API and logs.
type Reason string

// Reasons, in the order Decide checks them: the first that applies wins.
const (
	ReasonServing      Reason = "serving"
	ReasonDraining     Reason = "draining"            // SIGTERM or the admin API: leave first
	ReasonNoXDP        Reason = "xdp_detached"        // the XDP program is not attached
	ReasonL7Down       Reason = "l7_down"             // a listener the VIP needs is not up
	ReasonWitness      Reason = "witness_unreachable" // this node cannot reach the cluster's witness
	ReasonNoBackend    Reason = "no_usable_backend"   // every backend is down or drained
	ReasonUnconfigured Reason = "removed"             // the VIP left the config
)

// Readiness is what this node knows about one VIP at one moment.
type Readiness struct {
	// Draining: the daemon is shutting down (or told to drain).
	Draining bool
	// NeedsXDP: the VIP is an L4 VIP, balanced by the XDP program.
	NeedsXDP bool
	// XDP: the program is attached.
	XDP bool
	// NeedsL7: the address is served by the L7 proxy.
	NeedsL7 bool
	// L7: every configured listener is up.
	L7 bool
	// Witness: the cluster's witness is reachable, or none is configured.
	Witness bool
	// UsableBackends is how many of an L4 VIP's backends are up (in the
	// agreed health set) with a weight above 0. Ignored without NeedsXDP.
	UsableBackends int
}

// Decide is the announce/withdraw rule: a node announces a VIP only while
// it can serve it, because the router sends 1/N of all new flows to every
// node that announces. A node that cannot forward (no XDP, no listener)
// or has nowhere to forward (no usable backend) must leave the ECMP group,
// and a node cut off from the clients' side (witness) is the one whose
// view is least to be trusted.
//
// No usable backend is checked last and withdraws too, although with
// agreed health it is the same on every node: then every node withdraws,
// the router loses the route, and clients get an ICMP unreachable (or the
// router's less specific route) instead of a black hole.
func Decide(r Readiness) (bool, Reason) {
	switch {
	case r.Draining:
		return false, ReasonDraining
	case r.NeedsXDP && !r.XDP:
		return false, ReasonNoXDP
	case r.NeedsL7 && !r.L7:
		return false, ReasonL7Down
	case !r.Witness:
		return false, ReasonWitness
	case r.NeedsXDP && r.UsableBackends == 0:
		return false, ReasonNoBackend
	}
	return true, ReasonServing
}
