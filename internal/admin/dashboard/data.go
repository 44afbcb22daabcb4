// Package dashboard is the health-check dashboard served on the admin
// listener: static assets embedded in the binary (it works with no internet)
// and the JSON document it renders, GET /api/v1/dashboard.
package dashboard

import "time"

// Data is the whole dashboard document. Counters are cumulative; the page
// derives rates from the difference between two polls.
type Data struct {
	Node      string      `json:"node"`
	Version   string      `json:"version"`
	Time      time.Time   `json:"time"`
	Ready     bool        `json:"ready"`
	Config    ConfigInfo  `json:"config"`
	Cluster   Cluster     `json:"cluster"`
	BGP       BGP         `json:"bgp"`
	L4        L4          `json:"l4"`
	VIPs      []VIP       `json:"vips"`
	Routes    []Route     `json:"routes"`
	Pools     []Pool      `json:"pools"`
	Discovery []Discovery `json:"discovery"`
	// CanWrite says whether the request carried the admin token, so the
	// page shows the drain and release buttons only when they would work.
	CanWrite bool `json:"can_write"`
}

// ConfigInfo names the running config.
type ConfigInfo struct {
	Path     string    `json:"path"`
	Digest   string    `json:"digest"`
	LoadedAt time.Time `json:"loaded_at"`
}

// Cluster is the membership view of this node.
type Cluster struct {
	Enabled bool     `json:"enabled"`
	Members []Member `json:"members"`
}

// Member is one cluster node.
type Member struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	State    string   `json:"state"` // alive, suspect, dead, left
	Priority int      `json:"priority"`
	Healthy  bool     `json:"healthy"`
	Digest   string   `json:"digest"`
	VIPs     []string `json:"vips"` // VIPs it holds
	Self     bool     `json:"self"`
}

// BGP is the embedded speaker: sessions and what this node announces.
type BGP struct {
	Enabled bool      `json:"enabled"`
	ASN     uint32    `json:"asn"`
	Peers   []BGPPeer `json:"peers"`
	VIPs    []BGPVIP  `json:"vips"`
}

// BGPPeer is one session.
type BGPPeer struct {
	Address        string    `json:"address"`
	ASN            uint32    `json:"asn"`
	State          string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since          time.Time `json:"since,omitzero"`
	HoldTime       uint64    `json:"hold_time_s"`
	BFD            string    `json:"bfd,omitempty"` // up, down, init, admin_down; "" = off
	Flaps          uint32    `json:"flaps"`
	LastDisconnect string    `json:"last_disconnect_reason,omitempty"`
}

// BGPVIP is one announced (or withheld) prefix and why.
type BGPVIP struct {
	VIP       string    `json:"vip"`
	Prefix    string    `json:"prefix"`
	Announced bool      `json:"announced"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
}

// L4 is the XDP dataplane.
type L4 struct {
	Attached          bool   `json:"attached"`
	Mode              string `json:"mode"` // native, generic
	Interface         string `json:"interface"`
	ConntrackEntries  uint64 `json:"conntrack_entries"`
	ConntrackCapacity uint64 `json:"conntrack_capacity"`
}

// VIP is one L4 virtual service.
type VIP struct {
	Name      string       `json:"name"`
	Address   string       `json:"address"`
	Port      int          `json:"port"`
	Protocol  string       `json:"protocol"`
	Owner     string       `json:"owner"` // node holding the floating address ("" = none or no cluster)
	Packets   uint64       `json:"packets"`
	Bytes     uint64       `json:"bytes"`
	NewFlows  uint64       `json:"new_flows"`
	Backends  []VIPBackend `json:"backends"`
	Checked   bool         `json:"checked"` // a health check covers this VIP's backends
	CheckName string       `json:"check_name,omitempty"`
}

// VIPBackend is one backend of a VIP.
type VIPBackend struct {
	Name            string  `json:"name"`
	Address         string  `json:"address"`
	Forwarding      string  `json:"forwarding"`
	Weight          uint32  `json:"weight"`           // configured
	EffectiveWeight uint32  `json:"effective_weight"` // after drain and slow start
	Health          Health  `json:"health"`
	Packets         uint64  `json:"packets"`
	Bytes           uint64  `json:"bytes"`
	NewFlows        uint64  `json:"new_flows"`
	Slots           int     `json:"slots"` // Maglev slots it owns
	Share           float64 `json:"share"` // slots / table size
}

// Health is a target's health-check state.
type Health struct {
	State     string       `json:"state"` // up, down, unknown
	Drained   bool         `json:"drained"`
	Since     time.Time    `json:"since"`
	LastOK    *bool        `json:"last_ok,omitempty"`
	Detail    string       `json:"detail,omitempty"`
	LatencyMS float64      `json:"latency_ms"`
	CheckedAt *time.Time   `json:"checked_at,omitempty"`
	Weight    int          `json:"weight_percent"` // slow start, 100 when settled
	History   []Transition `json:"history"`        // newest last
}

// Transition is one change of a target's state or of its drain flag.
type Transition struct {
	At        time.Time `json:"at"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	LatencyMS float64   `json:"latency_ms"`
	// Drained is the drain flag after the change; a drain or undrain by
	// the admin is a transition with From == To.
	Drained bool `json:"drained"`
}

// Route is one L7 route's traffic.
type Route struct {
	Name     string  `json:"name"`
	Pool     string  `json:"pool"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"` // 5xx answers
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
}

// Pool is one L7 pool.
type Pool struct {
	Name      string     `json:"name"`
	Algorithm string     `json:"algorithm"`
	Checked   bool       `json:"checked"`
	CheckName string     `json:"check_name,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one upstream of a pool.
type Endpoint struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"` // configured (or discovered)
	// EffectiveWeight is the weight the pool balances with now (0 when
	// drained or down, ramped during slow start); nil lets the page derive
	// it from Weight and Health.
	EffectiveWeight *int   `json:"effective_weight,omitempty"`
	InFlight        int64  `json:"in_flight"`
	Requests        uint64 `json:"requests"`
	Failures        uint64 `json:"failures"`
	Ejected         bool   `json:"ejected"` // by passive outlier detection
	Health          Health `json:"health"`
}

// Discovery is one service-discovery source.
type Discovery struct {
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	Pool      string    `json:"pool"`
	State     string    `json:"state"` // pending, ok, stale
	Error     string    `json:"error,omitempty"`
	Since     time.Time `json:"since"`
	Updated   time.Time `json:"updated"`
	Endpoints int       `json:"endpoints"`
}
