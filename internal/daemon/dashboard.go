package daemon

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/healthcheck"
	"github.com/portcullis-lb/portcullis/internal/admin"
	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/internal/buildinfo"
	"github.com/portcullis-lb/portcullis/l4"
)

// mountAdmin adds the daemon's own endpoints to the admin listener: health
// state and drains, the dashboard page and its JSON document.
func (d *Daemon) mountAdmin() {
	d.admin.Handle("GET /api/v1/health", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		admin.WriteJSON(w, http.StatusOK, d.health.Snapshot())
	}))
	d.admin.Handle("POST /api/v1/health/drain", d.admin.Auth(http.HandlerFunc(d.drain)))
	d.admin.Handle("GET /api/v1/dashboard", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, d.dashboard(d.admin.Authorized(r)))
	}))
	d.admin.Handle("GET /{$}", dashboard.Handler())
	d.admin.Handle("GET /assets/", dashboard.Handler())
}

type drainRequest struct {
	Kind    string `json:"kind"`  // pool or vip
	Group   string `json:"group"` // pool or VIP name
	Name    string `json:"name"`  // endpoint address or backend name
	Drained bool   `json:"drained"`
}

func (d *Daemon) drain(w http.ResponseWriter, r *http.Request) {
	var req drainRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		admin.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	var t healthcheck.Target
	switch req.Kind {
	case "pool":
		t = healthcheck.PoolTarget(req.Group, req.Name)
	case "vip":
		t = healthcheck.VIPTarget(req.Group, req.Name)
	default:
		admin.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": `kind must be "pool" or "vip"`})
		return
	}
	if err := d.health.Drain(t, req.Drained); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, healthcheck.ErrUnknownTarget) {
			code = http.StatusNotFound
		}
		admin.WriteJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	d.log.Info("admin drain", "kind", req.Kind, "group", req.Group, "name", req.Name, "drained", req.Drained, "remote", r.RemoteAddr)
	admin.WriteJSON(w, http.StatusOK, req)
}

func healthOf(st healthcheck.Status, ok bool) dashboard.Health {
	if !ok {
		return dashboard.Health{State: "unknown", Weight: 100}
	}
	h := dashboard.Health{State: st.State.String(), Drained: st.Drained, Since: st.Since, Weight: st.WeightPercent}
	if st.Last != nil {
		okv := st.Last.OK
		at := st.Last.At
		h.LastOK, h.Detail, h.CheckedAt = &okv, st.Last.Detail, &at
		h.LatencyMS = float64(st.Last.Latency) / float64(time.Millisecond)
	}
	for _, tr := range st.History {
		h.History = append(h.History, dashboard.Transition{At: tr.At, From: tr.From.String(), To: tr.To.String(),
			Drained: tr.Drained, Reason: tr.Reason, LatencyMS: float64(tr.Latency) / float64(time.Millisecond)})
	}
	return h
}

// dashboard assembles the dashboard document from every subsystem.
func (d *Daemon) dashboard(canWrite bool) dashboard.Data {
	g := d.gen.Load()
	cfg := g.cfg
	out := dashboard.Data{
		Node: cfg.Node.Name, Version: buildinfo.Version, Time: time.Now().UTC(), Ready: d.Ready(), CanWrite: canWrite,
		Config:  dashboard.ConfigInfo{Path: cfg.Path, Digest: cfg.Digest, LoadedAt: g.loadedAt.UTC()},
		VIPs:    []dashboard.VIP{},
		Routes:  []dashboard.Route{},
		Pools:   []dashboard.Pool{},
		Cluster: d.clusterView(),
		BGP:     d.bgpDashboard(),
	}
	checks := map[string]string{} // "pool/NAME" or "vip/NAME" → check name
	for _, hc := range cfg.HealthChecks {
		if hc.Pool != "" {
			checks["pool/"+hc.Pool] = hc.Name
		} else {
			checks["vip/"+hc.VIP] = hc.Name
		}
	}

	// L4: counters from the dataplane, health from the checks, slots from
	// the same Maglev computation the maps hold.
	var stats *l4.Stats
	if d.l4 != nil {
		d.l4.mu.Lock()
		if d.l4.dp != nil {
			out.L4 = dashboard.L4{Attached: true, Mode: d.l4.dp.AttachedMode(), Interface: d.l4.cfg.Interface}
			if st, err := d.l4.dp.Stats(); err == nil {
				stats = &st
				out.L4.ConntrackEntries, out.L4.ConntrackCapacity = st.Conntrack.Entries, uint64(st.Conntrack.Capacity)
			}
		}
		d.l4.mu.Unlock()
	}
	owners := d.vipOwners()
	svcs, _ := d.l4ServicesWithHealth(cfg)
	for i, s := range svcs {
		v := cfg.VIPs[i]
		dv := dashboard.VIP{Name: v.Name, Address: v.Address, Port: v.Port, Protocol: v.Protocol, Owner: owners[v.Name]}
		dv.CheckName, dv.Checked = checks["vip/"+v.Name], checks["vip/"+v.Name] != ""
		var ss *l4.ServiceStats
		if stats != nil {
			for j := range stats.Services {
				if stats.Services[j].Name == v.Name {
					ss = &stats.Services[j]
					dv.Packets, dv.Bytes, dv.NewFlows = ss.Packets, ss.Bytes, ss.NewFlows
				}
			}
		}
		for j, b := range s.Backends {
			st, ok := d.health.Store().Status(healthcheck.VIPTarget(v.Name, b.Name))
			db := dashboard.VIPBackend{Name: b.Name, Address: b.Addr.String(), Forwarding: b.Mode,
				Weight: uint32(*v.Backends[j].Weight), EffectiveWeight: b.Weight, Health: healthOf(st, ok)}
			if b.Down {
				db.Health.State = "down"
			}
			// Counters and slots come from what the maps hold (the
			// installed table), not from a table computed again here.
			if ss != nil {
				for _, bs := range ss.Backends {
					if bs.Name == b.Name {
						db.Packets, db.Bytes, db.NewFlows, db.Slots = bs.Packets, bs.Bytes, bs.NewFlows, bs.Slots
						if ss.TableSize > 0 {
							db.Share = float64(bs.Slots) / float64(ss.TableSize)
						}
					}
				}
			}
			dv.Backends = append(dv.Backends, db)
		}
		out.VIPs = append(out.VIPs, dv)
	}

	// L7 pools: every endpoint the pool knows (discovered or static) with
	// its health, including the ones health took out of the pool.
	for _, pc := range cfg.L7.Pools {
		dp := dashboard.Pool{Name: pc.Name, Algorithm: pc.Algorithm, Endpoints: []dashboard.Endpoint{}}
		dp.CheckName, dp.Checked = checks["pool/"+pc.Name], checks["pool/"+pc.Name] != ""
		live := map[string]dashboard.Endpoint{}
		var liveOrder []string
		if p := g.l7.Pool(pc.Name); p != nil {
			for _, e := range p.Snapshot() {
				w := e.Weight
				live[e.Address] = dashboard.Endpoint{Address: e.Address, EffectiveWeight: &w, InFlight: e.InFlight,
					Requests: e.Requests, Failures: e.Failures, Ejected: e.Ejected}
				liveOrder = append(liveOrder, e.Address)
			}
		}
		configured := map[string]int{}
		order := map[string]int{}
		for i, e := range pc.Endpoints {
			configured[e.Address] = e.Weight
			order[e.Address] = i
		}
		seen := map[string]bool{}
		add := func(addr string, weight int) {
			if seen[addr] {
				return
			}
			seen[addr] = true
			e, inPool := live[addr]
			e.Address, e.Weight = addr, weight
			if w, ok := configured[addr]; ok {
				e.Weight = w
			}
			st, ok := d.health.Store().Status(healthcheck.PoolTarget(pc.Name, addr))
			e.Health = healthOf(st, ok)
			if !inPool && e.Health.State != "down" && !e.Health.Drained {
				e.Health.State = "down" // not in the pool: treated as down
			}
			dp.Endpoints = append(dp.Endpoints, e)
		}
		for _, st := range d.health.Store().Snapshot() {
			if st.Kind == healthcheck.KindPool && st.Group == pc.Name {
				add(st.Name, 0)
			}
		}
		for _, addr := range liveOrder {
			add(addr, *live[addr].EffectiveWeight)
		}
		// A stable order (config order, then discovered by address) so rows
		// do not jump when health moves an endpoint out of the pool.
		rank := func(a string) int {
			if i, ok := order[a]; ok {
				return i
			}
			return len(order)
		}
		slices.SortStableFunc(dp.Endpoints, func(a, b dashboard.Endpoint) int {
			if c := cmp.Compare(rank(a.Address), rank(b.Address)); c != 0 {
				return c
			}
			return strings.Compare(a.Address, b.Address)
		})
		out.Pools = append(out.Pools, dp)
	}
	out.Routes = d.routeStats()
	for _, ds := range d.health.Snapshot().Discovery {
		out.Discovery = append(out.Discovery, dashboard.Discovery{Name: ds.Name, Provider: ds.Provider, Pool: ds.Pool,
			State: ds.State, Error: ds.Error, Since: ds.Since, Updated: ds.Updated, Endpoints: len(ds.Endpoints)})
	}
	if out.Discovery == nil {
		out.Discovery = []dashboard.Discovery{}
	}
	return out
}

// routeStats is every route's traffic, in config order.
func (d *Daemon) routeStats() []dashboard.Route {
	g := d.gen.Load()
	pools := map[string]string{}
	for _, r := range g.cfg.L7.Routes {
		pools[r.Name] = r.Pool
	}
	got := d.routes.stats(time.Now(), d.proxy.RouteCounters(), pools)
	byName := map[string]dashboard.Route{}
	for _, r := range got {
		byName[r.Name] = r
	}
	out := make([]dashboard.Route, 0, len(g.cfg.L7.Routes))
	for _, r := range g.cfg.L7.Routes {
		if dr, ok := byName[r.Name]; ok {
			out = append(out, dr)
		} else {
			out = append(out, dashboard.Route{Name: r.Name, Pool: r.Pool})
		}
	}
	return out
}
