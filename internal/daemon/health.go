package daemon

import (
	"sync"
	"sync/atomic"

	"github.com/portcullis-lb/portcullis/cluster"
	"github.com/portcullis-lb/portcullis/healthcheck"
	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4"
	"github.com/portcullis-lb/portcullis/l7/pool"
)

// Health flows one way: checks and discovery (healthcheck.Manager) → the
// XDP maps (Down/Weight per VIP backend) and the L7 pools (their endpoint
// sets). The manager tells which pool or VIP may have changed; the daemon
// recomputes that part from the running config plus health and pushes it.

func (d *Daemon) startHealth() {
	d.health = healthcheck.NewManager(healthcheck.Options{Log: d.log.With("component", "health")})
	d.health.Subscribe(d.onHealthChange)
	d.metrics.Registry.MustRegister(healthCollector{d})
	d.proxy.ObserveOutcomes(d.observeOutcome)
}

func (d *Daemon) onHealthChange(g healthcheck.Group) {
	gen := d.gen.Load()
	if gen == nil {
		return
	}
	switch g.Kind {
	case healthcheck.KindVIP:
		d.vote(g.Name)
		if err := d.refreshL4(); err != nil {
			d.log.Error("applying a health change to the XDP maps failed", "vip", g.Name, "err", err)
		}
		d.announce()
	case healthcheck.KindPool:
		if p := gen.l7.Pool(g.Name); p != nil {
			p.SetEndpoints(d.health.PoolEndpoints(g.Name))
		}
	}
}

// l4ServicesWithHealth is the config's services with each backend's
// effective weight (drain, slow start) and down state applied. In a
// cluster, "down" is the cluster's agreed verdict rather than this node's
// own, so that every node builds the same Maglev table and a VIP that moves
// keeps its flows on their backends.
func (d *Daemon) l4ServicesWithHealth(cfg *config.Config) ([]l4.Service, error) {
	svcs, err := L4Services(cfg)
	if err != nil || d.health == nil {
		return svcs, err
	}
	n := d.clusterNode()
	for i := range svcs {
		for j := range svcs[i].Backends {
			b := &svcs[i].Backends[j]
			b.Weight, b.Down = d.backendHealth(n, svcs[i].Name, b.Name, b.Weight)
		}
	}
	return svcs, nil
}

// backendHealth is one VIP backend's effective weight and down state, as
// l4ServicesWithHealth applies them; n is the cluster node, if any.
func (d *Daemon) backendHealth(n *cluster.Node, vip, backend string, weight uint32) (uint32, bool) {
	if d.health == nil {
		return weight, false
	}
	w, down := d.health.VIPBackend(vip, backend, weight)
	if n != nil {
		down = n.AgreedDown(vip, backend)
	}
	return w, down
}

// syncPools gives every pool of a new generation its endpoints as
// discovery and health see them; the compiled pools start from the static
// endpoints in the file.
func (d *Daemon) syncPools(cfg *config.Config, gen *generation) {
	for _, p := range cfg.L7.Pools {
		if pl := gen.l7.Pool(p.Name); pl != nil {
			pl.SetEndpoints(d.health.PoolEndpoints(p.Name))
		}
	}
}

// passive forwards the proxy's upstream outcomes to the health checker for
// pools whose check has passive thresholds. It stays off the health store's
// lock for the common case: a success is reported only when it ends a run
// of failures (it resets the count), so a healthy endpoint costs one map
// read per request.
type passive struct {
	pools   atomic.Pointer[map[string]bool]
	failing sync.Map // "pool\x00address" → *atomic.Bool
}

func (d *Daemon) setPassivePools(cfg *config.Config) {
	m := map[string]bool{}
	for _, hc := range cfg.HealthChecks {
		if hc.Pool != "" && hc.Passive != nil && hc.Passive.Consecutive5xx+hc.Passive.ConsecutiveConnectErrors+hc.Passive.ConsecutiveTimeouts > 0 {
			m[hc.Pool] = true
		}
	}
	d.passive.pools.Store(&m)
}

func (d *Daemon) observeOutcome(poolName, address string, o pool.Outcome) {
	if pools := d.passive.pools.Load(); pools == nil || !(*pools)[poolName] {
		return
	}
	failed := o.ConnectError || o.Timeout || o.Reset || (o.Status >= 500 && o.Status <= 599)
	if !failed && o.Status == 0 {
		return // the client went away: nothing learnt about the endpoint
	}
	key := poolName + "\x00" + address
	v, ok := d.passive.failing.Load(key)
	if !ok {
		if !failed {
			return
		}
		v, _ = d.passive.failing.LoadOrStore(key, new(atomic.Bool))
	}
	flag := v.(*atomic.Bool)
	if failed {
		flag.Store(true)
	} else if !flag.Swap(false) {
		return
	}
	d.health.Report(poolName, address, healthcheck.Outcome{Status: o.Status, ConnectError: o.ConnectError, Timeout: o.Timeout, Reset: o.Reset})
}
