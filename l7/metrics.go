package l7

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics cost one map read and three atomic adds per request: counters live
// in per-route structs resolved by name, and the Prometheus collector reads
// them only when scraped. (Traefik once lost half its throughput to
// WithLabelValues on every request.)
//
// The code label is the status class (2xx, 4xx, ...): exact codes would
// multiply series by whatever upstreams invent; the access log has the
// exact code.

// durBuckets are the request-duration histogram's upper bounds, seconds.
var durBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

var durBucketNanos = func() (b [len(durBuckets)]int64) {
	for i, s := range durBuckets {
		b[i] = int64(s * 1e9)
	}
	return b
}()

var codeClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// routeStats are one route's counters. They outlive generations so that a
// reload does not reset them.
type routeStats struct {
	name     string
	codes    [len(codeClasses)]atomic.Uint64
	buckets  [len(durBuckets) + 1]atomic.Uint64 // not cumulative; last is +Inf
	sumNanos atomic.Uint64
}

func (rs *routeStats) observe(status int, d time.Duration) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	rs.codes[c].Add(1)
	ns := int64(d)
	i := 0
	for i < len(durBucketNanos) && ns > durBucketNanos[i] {
		i++
	}
	rs.buckets[i].Add(1)
	rs.sumNanos.Add(uint64(ns))
}

type poolStats struct {
	name          string
	connectErrors atomic.Uint64
}

type proxyMetrics struct {
	mu     sync.Mutex
	routes map[string]*routeStats
	pools  map[string]*poolStats
	// live are the route and pool names of the current generation: only
	// those are reported.
	live      atomic.Pointer[liveNames]
	logDrops  atomic.Uint64
	unmatched *routeStats
}

type liveNames struct {
	routes map[string]*routeStats
	pools  []*poolStats
}

func newProxyMetrics() *proxyMetrics {
	m := &proxyMetrics{routes: map[string]*routeStats{}, pools: map[string]*poolStats{}}
	m.unmatched = &routeStats{name: ""}
	m.live.Store(&liveNames{routes: map[string]*routeStats{}})
	return m
}

// bind resolves the counters of g's routes and pools once, at apply time.
func (m *proxyMetrics) bind(g *Generation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ln := &liveNames{routes: map[string]*routeStats{}}
	for _, name := range g.routeNames {
		rs := m.routes[name]
		if rs == nil {
			rs = &routeStats{name: name}
			m.routes[name] = rs
		}
		ln.routes[name] = rs
	}
	// g.routeStats is written only before g first serves (a failed apply
	// re-binds the previous generation, which requests are reading).
	if len(g.routeStats) == 0 {
		for _, lc := range g.byListener {
			for _, rt := range lc.table.Routes() {
				g.routeStats[rt] = ln.routes[rt.Name]
			}
		}
	}
	for name := range g.pools {
		ln.pools = append(ln.pools, m.poolLocked(name))
	}
	m.live.Store(ln)
}

func (m *proxyMetrics) pool(name string) *poolStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.poolLocked(name)
}

func (m *proxyMetrics) poolLocked(name string) *poolStats {
	ps := m.pools[name]
	if ps == nil {
		ps = &poolStats{name: name}
		m.pools[name] = ps
	}
	return ps
}

var (
	descRequests = prometheus.NewDesc("portcullis_http_requests_total",
		"HTTP requests served by the L7 proxy, by route (empty: no route matched) and status class.",
		[]string{"route", "code"}, nil)
	descDuration = prometheus.NewDesc("portcullis_http_request_duration_seconds",
		"Time from the request's arrival to the end of its response, by route.",
		[]string{"route"}, nil)
	descConnectErrors = prometheus.NewDesc("portcullis_http_upstream_connect_errors_total",
		"Failed connection attempts (TCP or TLS) to a pool's endpoints.",
		[]string{"pool"}, nil)
	descOpen = prometheus.NewDesc("portcullis_http_open_connections",
		"Open client connections by protocol (h1, h2, h3).",
		[]string{"protocol"}, nil)
	descRefused = prometheus.NewDesc("portcullis_http_connections_refused_total",
		"TCP connections closed at accept, by listener and reason (per_ip_limit: the client address had max_conns_per_ip open).",
		[]string{"listener", "reason"}, nil)
	descTunnels = prometheus.NewDesc("portcullis_http_upgraded_connections",
		"Client connections switched to another protocol (WebSocket) and spliced upstream.",
		nil, nil)
	descLogDrops = prometheus.NewDesc("portcullis_http_access_log_dropped_total",
		"Access-log lines dropped because the writer fell behind.", nil, nil)
)

// Collectors returns the proxy's Prometheus collectors for the daemon to
// register on its registry.
func (p *Proxy) Collectors() []prometheus.Collector {
	return []prometheus.Collector{collector{p}, cacheCollector{p}}
}

type collector struct{ p *Proxy }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descConnectErrors, descOpen, descRefused, descTunnels, descLogDrops} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.p.metrics
	ln := m.live.Load()
	emit := func(rs *routeStats) {
		for i, cc := range codeClasses {
			if v := rs.codes[i].Load(); v > 0 || (i >= 2 && i <= 5) {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v), rs.name, cc)
			}
		}
		buckets := make(map[float64]uint64, len(durBuckets))
		var cum uint64
		for i, ub := range durBuckets {
			cum += rs.buckets[i].Load()
			buckets[ub] = cum
		}
		cum += rs.buckets[len(durBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(descDuration, cum, float64(rs.sumNanos.Load())/1e9, buckets, rs.name)
	}
	for _, rs := range ln.routes {
		emit(rs)
	}
	emit(m.unmatched)
	for _, ps := range ln.pools {
		ch <- prometheus.MustNewConstMetric(descConnectErrors, prometheus.CounterValue, float64(ps.connectErrors.Load()), ps.name)
	}
	c.p.mu.Lock()
	set := c.p.set
	c.p.mu.Unlock()
	if set != nil {
		for proto, n := range set.OpenConns() {
			ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n), proto)
		}
		for name, n := range set.RefusedConns() {
			ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), name, "per_ip_limit")
		}
	}
	ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(c.p.tunnels.count()))
	ch <- prometheus.MustNewConstMetric(descLogDrops, prometheus.CounterValue, float64(m.logDrops.Load()))
}

// RouteCounters is one live route's cumulative counters, for the dashboard.
type RouteCounters struct {
	Name      string
	Requests  uint64
	Errors5xx uint64
	// Buckets counts requests per duration bucket (not cumulative); the
	// upper bounds are DurationBuckets, the last one is +Inf.
	Buckets [len(durBuckets) + 1]uint64
}

// DurationBuckets are the upper bounds, in seconds, of RouteCounters.Buckets.
func DurationBuckets() []float64 { return durBuckets[:] }

// RouteCounters returns the counters of the current generation's routes.
func (p *Proxy) RouteCounters() []RouteCounters {
	ln := p.metrics.live.Load()
	out := make([]RouteCounters, 0, len(ln.routes))
	for name, rs := range ln.routes {
		rc := RouteCounters{Name: name, Errors5xx: rs.codes[5].Load()}
		for i := range rs.codes {
			rc.Requests += rs.codes[i].Load()
		}
		for i := range rs.buckets {
			rc.Buckets[i] = rs.buckets[i].Load()
		}
		out = append(out, rc)
	}
	return out
}
