package bgp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the speaker's Prometheus series. Session state is read from
// GoBGP at scrape time (Collector), so it is never stale; transitions and
// withdrawals are counted as they happen.
type metrics struct {
	announcedG  *prometheus.GaugeVec
	withdrawals *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		announcedG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_bgp_announced",
			Help: "1 while this node offers the VIP's prefix to its BGP peers (its decision: serving); a router has it only over an established session (portcullis_bgp_peer_established).",
		}, []string{"vip"}),
		withdrawals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_bgp_withdrawals_total",
			Help: "VIP withdrawals, by reason (draining, xdp_detached, l7_down, witness_unreachable, no_usable_backend, removed, error).",
		}, []string{"vip", "reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_bgp_session_transitions_total",
			Help: "BGP session state changes, by peer and the state entered.",
		}, []string{"peer", "state"}),
	}
}

func (m *metrics) announced(vip string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.announcedG.WithLabelValues(vip).Set(v)
}

func (m *metrics) withdrawn(vip string, r Reason) {
	m.withdrawals.WithLabelValues(vip, string(r)).Inc()
}

func (m *metrics) forgetVIP(vip string) { m.announcedG.DeleteLabelValues(vip) }

func (m *metrics) peerState(peer, state string) { m.transitions.WithLabelValues(peer, state).Inc() }

func (m *metrics) forget(peer string) {
	m.transitions.DeletePartialMatch(prometheus.Labels{"peer": peer})
}

var (
	establishedDesc = prometheus.NewDesc("portcullis_bgp_peer_established",
		"1 while the BGP session with the peer is established.", []string{"peer"}, nil)
	uptimeDesc = prometheus.NewDesc("portcullis_bgp_peer_uptime_seconds",
		"How long the established session with the peer has been up (0 when it is not).", []string{"peer"}, nil)
)

// Collectors are the speaker's series, for the daemon's registry.
func (s *Speaker) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.m.announcedG, s.m.withdrawals, s.m.transitions, peerCollector{s}}
}

type peerCollector struct{ s *Speaker }

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- establishedDesc
	ch <- uptimeDesc
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.Peers() {
		up, secs := 0.0, 0.0
		if p.State == "established" {
			up = 1
			if !p.Since.IsZero() {
				secs = timeSince(p.Since)
			}
		}
		ch <- prometheus.MustNewConstMetric(establishedDesc, prometheus.GaugeValue, up, p.Address)
		ch <- prometheus.MustNewConstMetric(uptimeDesc, prometheus.GaugeValue, secs, p.Address)
	}
}

func timeSince(t time.Time) float64 { return time.Since(t).Seconds() }
