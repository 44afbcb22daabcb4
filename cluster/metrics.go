package cluster

import "github.com/prometheus/client_golang/prometheus"

type metricSet struct {
	members     *prometheus.GaugeVec
	vipOwner    *prometheus.GaugeVec
	vipUnowned  *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	witnessUp   prometheus.Gauge
	healthy     prometheus.Gauge
}

func newMetrics() *metricSet {
	return &metricSet{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_cluster_members",
			Help: "Cluster members as this node sees them, by state (alive includes this node).",
		}, []string{"state"}),
		vipOwner: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_vip_owner",
			Help: "1 if this node holds the floating VIP's address, else 0.",
		}, []string{"vip"}),
		vipUnowned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_vip_unowned",
			Help: "1 if no alive, healthy node can own the floating VIP in this node's view (alert on it).",
		}, []string{"vip"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_vip_transitions_total",
			Help: "Floating VIPs gained and lost by this node.",
		}, []string{"vip", "direction"}),
		witnessUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_cluster_witness_up",
			Help: "1 if this node reaches its witness (or has none configured), else 0.",
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_cluster_node_eligible",
			Help: "1 if this node is eligible to own VIPs (XDP, L7 and witness up, not leaving).",
		}),
	}
}

func (m *metricSet) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.members, m.vipOwner, m.vipUnowned, m.transitions, m.witnessUp, m.healthy}
}
