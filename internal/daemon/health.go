package daemon

import (
	"github.com/portcullis-lb/portcullis/healthcheck"
	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4"
)

// Health flows one way: checks and discovery (healthcheck.Manager) → the
// XDP maps (Down/Weight per VIP backend) and the L7 pools (their endpoint
// sets). The manager tells which pool or VIP may have changed; the daemon
// recomputes that part from the running config plus health and pushes it.

func (d *Daemon) startHealth() {
	d.health = healthcheck.NewManager(healthcheck.Options{Log: d.log.With("component", "health")})
	d.health.Subscribe(d.onHealthChange)
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
			b.Weight, b.Down = d.health.VIPBackend(svcs[i].Name, b.Name, b.Weight)
			if n != nil {
				b.Down = n.AgreedDown(svcs[i].Name, b.Name)
			}
		}
	}
	return svcs, nil
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
