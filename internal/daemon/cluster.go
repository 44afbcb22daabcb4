package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/cluster"
	"github.com/portcullis-lb/portcullis/healthcheck"
	"github.com/portcullis-lb/portcullis/internal/admin"
	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/internal/config"
)

// clusterPlane is the memberlist node while the config has a cluster
// section. It starts after the first apply (XDP attached, listeners up) so
// the node never advertises itself healthy before it can serve.
type clusterPlane struct {
	mu   sync.Mutex
	node *cluster.Node
}

func (d *Daemon) clusterOptions(cfg *config.Config) (cluster.Options, error) {
	o, err := cluster.OptionsFromConfig(cfg)
	if err != nil {
		return o, err
	}
	o.Logger = d.log.With("component", "cluster")
	o.Health = d.localHealth
	// Votes or membership changed: the agreed backend set may have too.
	o.OnAgreedChange = func() {
		if err := d.refreshL4(); err != nil {
			d.log.Error("applying the agreed backend set to the XDP maps failed", "err", err)
		}
		d.announce()
	}
	return o, nil
}

// localHealth is what this node advertises: it can serve VIPs only with
// XDP attached (when it has VIPs) and its listeners up (when it has any).
func (d *Daemon) localHealth() cluster.Health {
	h := cluster.Health{XDP: true, L7: true}
	g := d.gen.Load()
	if g == nil || d.draining.Load() {
		return cluster.Health{}
	}
	if len(g.cfg.VIPs) > 0 {
		h.XDP = d.l4Attached()
	}
	if len(g.cfg.L7.Listeners) > 0 {
		h.L7 = len(d.proxy.Addrs()) == len(g.cfg.L7.Listeners)
	}
	return h
}

// applyCluster starts, updates or stops the cluster node for cfg. Settings
// that memberlist cannot change while running (bind, key, profile, name)
// are logged and take effect at the next restart; the rest of the reload
// stands.
//
// The plane's lock only guards the pointer: Start, Update and Leave run
// without it, because the node's own loop calls back into the daemon
// (OnAgreedChange → refreshL4 → clusterNode) and Leave waits for that loop.
// Callers are serialised by the daemon (start-up, then reloadMu).
func (d *Daemon) applyCluster(cfg *config.Config) error {
	p := d.cluster
	n := d.clusterNode()
	if cfg.Cluster == nil {
		if n != nil {
			p.mu.Lock()
			p.node = nil
			p.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d.unregisterCluster(n)
			err := n.Leave(ctx)
			d.log.Info("left the cluster: no cluster section any more", "err", err)
		}
		return nil
	}
	o, err := d.clusterOptions(cfg)
	if err != nil {
		return err
	}
	if n == nil {
		n, err = cluster.Start(o)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		for _, c := range n.Collectors() {
			_ = d.metrics.Registry.Register(c)
		}
		p.mu.Lock()
		p.node = n
		p.mu.Unlock()
		d.registerRateSync(n)
	} else if err := n.Update(o); err != nil {
		if !errors.Is(err, cluster.ErrRestartRequired) {
			return err
		}
		d.log.Warn("cluster settings changed that take effect at the next restart", "err", err)
	}
	// Verdicts reached before the node existed (the first checks run at
	// start-up) or for VIPs this config adds were never voted: vote them
	// all now; SetVote gossips only what changed.
	for _, v := range cfg.VIPs {
		d.vote(v.Name)
	}
	return nil
}

func (d *Daemon) unregisterCluster(n *cluster.Node) {
	for _, c := range n.Collectors() {
		d.metrics.Registry.Unregister(c)
	}
}

// leaveCluster hands the VIPs over before anything else stops, so the peer
// takes them at once (SIGTERM). The floating address leaves
// node.interface; a VIP served by the local L7 proxy stays on lo
// (localvip.go) until the drain is over, so the connections this node
// accepted keep working when the new owner's XDP sends their packets back
// here.
//
// After the leave the node keeps accepting for a while, bounded by ctx:
// peers learn of the leave by gossip and then drop this node's proxy from
// their Maglev tables; until they have, their XDP still sends new flows
// here, which must connect rather than meet a closed port (or, once the
// VIP is off lo, silence and a client timeout). The wait is min(drain/2,
// 1s), and leaveSettle more for a node that serves L7 through a VIP.
//
// The node is detached from the plane before Leave, which waits for the
// node's loop: the loop may be in OnAgreedChange → refreshL4, which looks
// the node up through the plane's lock.
func (d *Daemon) leaveCluster(ctx context.Context, drain time.Duration) {
	p := d.cluster
	p.mu.Lock()
	n := p.node
	p.node = nil
	p.mu.Unlock()
	if n == nil {
		return
	}
	if err := n.Leave(ctx); err != nil {
		d.log.Warn("leaving the cluster", "err", err)
	}
	settle := min(drain/2, time.Second)
	if g := d.gen.Load(); g != nil && len(wantLocalVIPs(g.cfg)) > 0 {
		settle += leaveSettle
	}
	d.log.Info("letting peers settle", "for", settle)
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
}

func (d *Daemon) clusterNode() *cluster.Node {
	p := d.cluster
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.node
}

// vote tells the cluster this node's view of every backend of a VIP, so
// that all nodes build their Maglev tables from the same agreed set.
func (d *Daemon) vote(vip string) {
	n := d.clusterNode()
	g := d.gen.Load()
	if n == nil || g == nil {
		return
	}
	for _, v := range g.cfg.VIPs {
		if v.Name != vip {
			continue
		}
		for _, b := range v.Backends {
			st, ok := d.health.Store().Status(healthcheck.VIPTarget(vip, b.Name))
			switch {
			case !ok || !st.Checked || st.State == healthcheck.Unknown:
				n.SetVote(vip, b.Name, cluster.VoteNone)
			case st.State == healthcheck.Down:
				n.SetVote(vip, b.Name, cluster.VoteDown)
			default:
				n.SetVote(vip, b.Name, cluster.VoteUp)
			}
		}
	}
}

func (d *Daemon) mountClusterAdmin() {
	d.admin.Handle("GET /api/v1/cluster", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := d.clusterNode()
		if n == nil {
			admin.WriteJSON(w, http.StatusOK, map[string]any{"enabled": false, "members": []any{}, "owners": map[string]string{}})
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"enabled": true, "members": n.Members(), "owners": n.Owners()})
	}))
	d.admin.Handle("POST /api/v1/vips/{vip}/release", d.admin.Auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := d.clusterNode()
		vip := r.PathValue("vip")
		if n == nil {
			admin.WriteJSON(w, http.StatusConflict, map[string]string{"error": "this node is not in a cluster: there is nobody to release the VIP to"})
			return
		}
		err := n.Release(vip)
		switch {
		case err == nil:
			d.log.Info("VIP released by the admin API", "vip", vip, "remote", r.RemoteAddr)
			admin.WriteJSON(w, http.StatusOK, map[string]string{"result": "released", "vip": vip})
		case errors.Is(err, cluster.ErrUnknownVIP):
			admin.WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case errors.Is(err, cluster.ErrNotOwner), errors.Is(err, cluster.ErrNoTakeover):
			admin.WriteJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		default:
			admin.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		}
	})))
}

func (d *Daemon) clusterView() dashboard.Cluster {
	n := d.clusterNode()
	if n == nil {
		return dashboard.Cluster{Members: []dashboard.Member{}}
	}
	out := dashboard.Cluster{Enabled: true}
	for _, m := range n.Members() {
		out.Members = append(out.Members, dashboard.Member{Name: m.Name, Address: m.Addr.String(), State: m.State,
			Priority: m.Priority, Healthy: m.Healthy, Digest: m.Digest, VIPs: m.Holds, Self: m.Self})
	}
	return out
}

func (d *Daemon) vipOwners() map[string]string {
	if n := d.clusterNode(); n != nil {
		return n.Owners()
	}
	return map[string]string{}
}
