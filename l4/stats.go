package l4

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/internal/bpfconv"
)

// Stats is a snapshot of the fast path's counters, summed over CPUs.
// Counters are totals since the service (or backend) was first applied.
type Stats struct {
	AttachedMode string         `json:"attached_mode"`
	Global       GlobalStats    `json:"global"`
	Conntrack    ConntrackStats `json:"conntrack"`
	Services     []ServiceStats `json:"services"`
}

// GlobalStats counts packets by the reason they left the normal path
// (see the rules at the top of bpf/xdp_lb.c), keyed by snake_case reason.
type GlobalStats map[string]uint64

// ConntrackStats describes the LRU connection table.
type ConntrackStats struct {
	Capacity uint32 `json:"capacity"`
	// Entries is counted by walking the table, at most once per
	// conntrackCountTTL.
	Entries        uint64 `json:"entries"`
	Inserts        uint64 `json:"inserts"`
	InsertFailures uint64 `json:"insert_failures"`
	// EvictionsEstimate is Inserts - Entries: nothing deletes entries
	// but the LRU, so the difference is what it evicted (approximate:
	// the two are not read at the same instant).
	EvictionsEstimate uint64 `json:"evictions_estimate"`
}

// ServiceStats are one VIP's counters. Bytes count whole frames as
// received, Ethernet header included.
type ServiceStats struct {
	// TableSize is the installed Maglev table's size (0 before the first).
	TableSize       int            `json:"table_size"`
	Name            string         `json:"name"`
	Addr            string         `json:"addr"`
	Port            uint16         `json:"port"`
	Proto           uint8          `json:"proto"`
	Packets         uint64         `json:"packets"`
	Bytes           uint64         `json:"bytes"`
	NewFlows        uint64         `json:"new_flows"`
	ConntrackHits   uint64         `json:"conntrack_hits"`
	ConntrackMisses uint64         `json:"conntrack_misses"`
	MissesNonSYN    uint64         `json:"conntrack_misses_non_syn"`
	Repicks         uint64         `json:"conntrack_repicks"`
	QUICRouted      uint64         `json:"quic_routed"`
	QUICUnknownNode uint64         `json:"quic_unknown_node"`
	DropNoBackend   uint64         `json:"drop_no_backend"`
	DropBadBackend  uint64         `json:"drop_bad_backend"`
	Backends        []BackendStats `json:"backends"`
}

// BackendStats are one backend's counters within its service.
type BackendStats struct {
	Name     string `json:"name"`
	Mode     string `json:"mode"`
	Weight   uint32 `json:"weight"`
	Down     bool   `json:"down"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	NewFlows uint64 `json:"new_flows"`
	// Slots the backend owns in the installed Maglev table.
	Slots int `json:"slots"`
}

const conntrackCountTTL = 5 * time.Second

// Stats reads every counter map. It costs one syscall per service and
// backend, plus a conntrack walk at most every few seconds.
func (d *Dataplane) Stats() (Stats, error) {
	// The walk can take a while on a full table; it must not hold up an
	// Apply, so it runs before taking d.mu.
	entries, err := d.conntrackEntries()
	if err != nil {
		return Stats{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Stats{AttachedMode: d.mode, Global: GlobalStats{}}

	var g []bpf.LBGlobalCounters
	if err := d.objs.GlobalStats.Lookup(uint32(0), &g); err != nil {
		return st, fmt.Errorf("l4: read global_stats: %w", err)
	}
	var gsum bpf.LBGlobalCounters
	bpfconv.SumInto(&gsum, g)
	for name, v := range bpfconv.Fields(&gsum) {
		st.Global[name] = v
	}
	st.Conntrack = ConntrackStats{
		Capacity:       d.cfg.ConntrackSize,
		Entries:        entries,
		Inserts:        gsum.CtInserts,
		InsertFailures: gsum.CtInsertFail,
	}
	if gsum.CtInserts > entries {
		st.Conntrack.EvictionsEstimate = gsum.CtInserts - entries
	}

	for _, v := range d.st.vips {
		var vc []bpf.LBVipCounters
		if err := d.objs.VipStats.Lookup(v.meta.VipNum, &vc); err != nil {
			return st, fmt.Errorf("l4: read vip_stats: %w", err)
		}
		var s bpf.LBVipCounters
		bpfconv.SumInto(&s, vc)
		ss := ServiceStats{
			TableSize: v.tableLen,
			Name:      v.svc.Name, Addr: v.svc.Addr.String(), Port: v.svc.Port, Proto: v.svc.Proto,
			Packets: s.Packets, Bytes: s.Bytes, NewFlows: s.NewFlows,
			ConntrackHits: s.CtHits, ConntrackMisses: s.CtMisses, MissesNonSYN: s.CtMissNonSyn,
			Repicks: s.CtRepicks, QUICRouted: s.QuicRouted, QUICUnknownNode: s.QuicUnknownNode,
			DropNoBackend: s.DropNoBackend, DropBadBackend: s.DropBadBackend,
		}
		for _, b := range v.svc.Backends {
			bs := v.backends[b.Name]
			var bc []bpf.LBBackendCounters
			if err := d.objs.BackendStats.Lookup(bs.id, &bc); err != nil {
				return st, fmt.Errorf("l4: read backend_stats: %w", err)
			}
			var c bpf.LBBackendCounters
			bpfconv.SumInto(&c, bc)
			ss.Backends = append(ss.Backends, BackendStats{
				Name: b.Name, Mode: b.Mode, Weight: b.Weight, Down: b.Down,
				Packets: c.Packets, Bytes: c.Bytes, NewFlows: c.NewFlows,
				Slots: v.slots[b.Name],
			})
		}
		st.Services = append(st.Services, ss)
	}
	slices.SortFunc(st.Services, func(a, b ServiceStats) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return st, nil
}

// conntrackEntries walks the LRU in batches; cached because a full
// table of a million flows takes a noticeable fraction of a second.
func (d *Dataplane) conntrackEntries() (uint64, error) {
	d.ctMu.Lock()
	defer d.ctMu.Unlock()
	if !d.ctCounted.IsZero() && time.Since(d.ctCounted) < conntrackCountTTL {
		return d.ctCount, nil
	}
	const batch = 4096
	keys := make([]bpf.LBFlowKey, batch)
	vals := make([]bpf.LBCtEntry, batch)
	var cursor ebpf.MapBatchCursor
	var n uint64
	for {
		c, err := d.objs.Conntrack.BatchLookup(&cursor, keys, vals, nil)
		n += uint64(c)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("l4: walk conntrack: %w", err)
		}
	}
	d.ctCount, d.ctCounted = n, time.Now()
	return n, nil
}

// Collector exports the counters as portcullis_l4_* metrics. Each scrape
// calls Stats once.
func (d *Dataplane) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Dataplane }

var (
	descGlobal = prometheus.NewDesc("portcullis_l4_exceptions_total",
		"Packets that left the normal fast path, by reason (see bpf/xdp_lb.c).", []string{"reason"}, nil)
	descAttached = prometheus.NewDesc("portcullis_l4_xdp_attached",
		"1 for the XDP attach mode in force.", []string{"mode"}, nil)
	descCTCap = prometheus.NewDesc("portcullis_l4_conntrack_capacity",
		"Capacity of the LRU connection table.", nil, nil)
	descCTEntries = prometheus.NewDesc("portcullis_l4_conntrack_entries",
		"Entries in the connection table (walked at most every 5s).", nil, nil)
	descCTInserts = prometheus.NewDesc("portcullis_l4_conntrack_inserts_total",
		"Flows written into the connection table (one per new flow).", nil, nil)
	descCTInsertFail = prometheus.NewDesc("portcullis_l4_conntrack_insert_failures_total",
		"Connection table inserts that failed; the packet was still balanced by the Maglev table. A rise means table pressure (e.g. a SYN flood).", nil, nil)
	descEncap = prometheus.NewDesc("portcullis_l4_encapsulated_packets_total",
		"Packets sent to ipip and gue backends, by encapsulation: ipip4 (IPv4-in-IPv4), ipip6 (IPv6-in-IPv6), gue (IP-in-UDP, either family).", []string{"encap"}, nil)
	descCTEvict = prometheus.NewDesc("portcullis_l4_conntrack_evictions_estimate",
		"Connection table inserts minus live entries: flows the LRU evicted.", nil, nil)
	vipLabels  = []string{"service"}
	beLabels   = []string{"service", "backend"}
	descVIP    = map[string]*prometheus.Desc{}
	descBE     = map[string]*prometheus.Desc{}
	vipMetrics = []string{"packets", "bytes", "new_flows", "conntrack_hits", "conntrack_misses",
		"conntrack_misses_non_syn", "conntrack_repicks", "quic_routed", "quic_unknown_node",
		"drop_no_backend", "drop_bad_backend"}
	beMetrics = []string{"packets", "bytes", "new_flows"}
	descBEUp  = prometheus.NewDesc("portcullis_l4_backend_up",
		"0 if the backend is marked down in the fast path.", beLabels, nil)
)

func init() {
	for _, m := range vipMetrics {
		descVIP[m] = prometheus.NewDesc("portcullis_l4_service_"+m+"_total",
			"Per-VIP fast-path counter "+m+".", vipLabels, nil)
	}
	for _, m := range beMetrics {
		descBE[m] = prometheus.NewDesc("portcullis_l4_backend_"+m+"_total",
			"Per-backend fast-path counter "+m+".", beLabels, nil)
	}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGlobal, descAttached, descCTCap, descCTEntries, descCTEvict, descCTInserts, descCTInsertFail, descBEUp, descEncap} {
		ch <- d
	}
	for _, d := range descVIP {
		ch <- d
	}
	for _, d := range descBE {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.d.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descGlobal, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	for reason, v := range st.Global {
		// Inserts are normal traffic, not exceptions: they get metrics of
		// their own so that summing the exceptions means something.
		switch reason {
		case "ct_inserts":
			counter(descCTInserts, v)
		case "ct_insert_fail":
			counter(descCTInsertFail, v)
		// Encapsulated packets are forwarded normally: counted apart.
		case "encap_v4":
			counter(descEncap, v, "ipip4")
		case "encap_v6":
			counter(descEncap, v, "ipip6")
		case "encap_gue":
			counter(descEncap, v, "gue")
		default:
			counter(descGlobal, v, reason)
		}
	}
	if st.AttachedMode != "" {
		gauge(descAttached, 1, st.AttachedMode)
	}
	gauge(descCTCap, float64(st.Conntrack.Capacity))
	gauge(descCTEntries, float64(st.Conntrack.Entries))
	gauge(descCTEvict, float64(st.Conntrack.EvictionsEstimate))
	for _, s := range st.Services {
		vals := []uint64{s.Packets, s.Bytes, s.NewFlows, s.ConntrackHits, s.ConntrackMisses,
			s.MissesNonSYN, s.Repicks, s.QUICRouted, s.QUICUnknownNode, s.DropNoBackend, s.DropBadBackend}
		for i, m := range vipMetrics {
			counter(descVIP[m], vals[i], s.Name)
		}
		for _, b := range s.Backends {
			counter(descBE["packets"], b.Packets, s.Name, b.Name)
			counter(descBE["bytes"], b.Bytes, s.Name, b.Name)
			counter(descBE["new_flows"], b.NewFlows, s.Name, b.Name)
			up := 1.0
			if b.Down {
				up = 0
			}
			gauge(descBEUp, up, s.Name, b.Name)
		}
	}
}
