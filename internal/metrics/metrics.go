// Package metrics owns the daemon's Prometheus registry and the metrics that
// belong to no single subsystem (build info, config reloads). Subsystems
// register their own collectors on the same registry.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/portcullis-lb/portcullis/internal/buildinfo"
)

// Metrics is the registry and the daemon-level metrics.
type Metrics struct {
	Registry *prometheus.Registry
	// Reloads counts config reload attempts by result (success, failure).
	Reloads *prometheus.CounterVec
	// ConfigInfo carries the running config's digest as a label (value 1).
	ConfigInfo *prometheus.GaugeVec
	// LastReload is the Unix time of the last successful (re)load.
	LastReload prometheus.Gauge
}

// New builds a registry with the Go and process collectors and the
// daemon-level metrics.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_config_reloads_total",
			Help: "Config reload attempts, by result (success or failure). The initial load is not counted.",
		}, []string{"result"}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_config_info",
			Help: "The running config (1), labelled with its SHA-256 digest, so nodes running different configs stand out.",
		}, []string{"digest"}),
		LastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portcullis_config_last_success_timestamp_seconds",
			Help: "Unix time at which the running config was loaded.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portcullis_build_info",
		Help: "Build of the running binary (always 1).",
	}, []string{"version", "commit", "goversion"})
	build.WithLabelValues(buildinfo.Version, buildinfo.GetCommit(), runtime.Version()).Set(1)
	// Both results exist from the start so that rate() and alerts work
	// before the first failure.
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("failure")
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.Reloads, m.ConfigInfo, m.LastReload,
	)
	return m
}
