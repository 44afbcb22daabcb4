package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-lb/portcullis/healthcheck"
)

// healthCollector exports the health checker's state at scrape time, so
// alerts can fire on a backend that is down or a discovery source that has
// gone stale (its pool keeps the last known endpoints, which is safe but
// must not go unnoticed).
type healthCollector struct{ d *Daemon }

var (
	descTargetUp = prometheus.NewDesc("portcullis_health_target_up",
		"1 while a pool endpoint or VIP backend is up (or not yet checked), 0 while down.", []string{"kind", "group", "target"}, nil)
	descTargetDrained = prometheus.NewDesc("portcullis_health_target_drained",
		"1 while an admin drain keeps new traffic off the target.", []string{"kind", "group", "target"}, nil)
	descTargetLatency = prometheus.NewDesc("portcullis_health_check_latency_seconds",
		"Duration of the target's last active check.", []string{"kind", "group", "target"}, nil)
	descDiscoveryOK = prometheus.NewDesc("portcullis_discovery_up",
		"1 while a discovery source answers, 0 while its pool runs on the last known set (stale) or before its first answer.", []string{"name", "provider", "pool"}, nil)
	descDiscoveryEndpoints = prometheus.NewDesc("portcullis_discovery_endpoints",
		"Endpoints the discovery source last delivered.", []string{"name", "provider", "pool"}, nil)
)

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTargetUp, descTargetDrained, descTargetLatency, descDiscoveryOK, descDiscoveryEndpoints} {
		ch <- d
	}
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.d.health.Snapshot()
	for _, st := range snap.Targets {
		labels := []string{string(st.Kind), st.Group, st.Name}
		up, drained := 1.0, 0.0
		if st.State == healthcheck.Down {
			up = 0
		}
		if st.Drained {
			drained = 1
		}
		ch <- prometheus.MustNewConstMetric(descTargetUp, prometheus.GaugeValue, up, labels...)
		ch <- prometheus.MustNewConstMetric(descTargetDrained, prometheus.GaugeValue, drained, labels...)
		if st.Last != nil {
			ch <- prometheus.MustNewConstMetric(descTargetLatency, prometheus.GaugeValue, st.Last.Latency.Seconds(), labels...)
		}
	}
	for _, ds := range snap.Discovery {
		labels := []string{ds.Name, ds.Provider, ds.Pool}
		ok := 0.0
		if ds.State == "ok" {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(descDiscoveryOK, prometheus.GaugeValue, ok, labels...)
		ch <- prometheus.MustNewConstMetric(descDiscoveryEndpoints, prometheus.GaugeValue, float64(len(ds.Endpoints)), labels...)
	}
}
