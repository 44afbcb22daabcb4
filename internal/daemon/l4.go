package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4"
)

// l4Plane is the XDP dataplane while VIPs are configured.
type l4Plane struct {
	mu  sync.Mutex
	dp  *l4.Dataplane
	cfg l4.Config
	// applied is the config whose VIPs are in the maps. Health changes are
	// computed from it under mu, so one racing a reload never writes the
	// previous config's services back.
	applied *config.Config
	// peerState is the last logged peerProxyState.
	peerState string
	// attached mirrors dp != nil for readers that must not take mu.
	attached atomic.Bool
	// hops caches the next-hop MACs resolved for ipip backends without a
	// configured mac, by backend address.
	hops map[netip.Addr]net.HardwareAddr
}

// resolveNextHops gives ipip and gue backends without a configured mac their next
// hop's, from the routing and neighbour tables (l4.ResolveNextHop),
// cached: a health change must not wait for ARP. Called with p.mu held.
func (p *l4Plane) resolveNextHops(ifname string, svcs []l4.Service) error {
	for i := range svcs {
		for j := range svcs[i].Backends {
			b := &svcs[i].Backends[j]
			if b.Mode != l4.ModeIPIP && b.Mode != l4.ModeGUE || len(b.MAC) != 0 {
				continue
			}
			if hw, ok := p.hops[b.Addr]; ok {
				b.MAC = hw
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			hw, _, err := l4.ResolveNextHop(ctx, ifname, b.Addr)
			cancel()
			if err != nil {
				return fmt.Errorf("vip %q backend %q: %w (or set its mac)", svcs[i].Name, b.Name, err)
			}
			if p.hops == nil {
				p.hops = map[netip.Addr]net.HardwareAddr{}
			}
			p.hops[b.Addr] = hw
			b.MAC = hw
		}
	}
	return nil
}

// L4Config is the part of the config that is compiled into the XDP
// program or sizes its maps when it is loaded.
func L4Config(c *config.Config) l4.Config {
	return l4.Config{
		Interface:     c.Node.Interface,
		Mode:          c.L4.XDPMode,
		ConntrackSize: c.L4.ConntrackSize,
		UDPTimeout:    c.L4.UDPTimeout.D(),
		HashSeed:      c.L4.HashSeed,
		MaglevSize:    c.L4.MaglevSize,
		SYNFloodRate:  c.L4.SYNFloodRate,
		// Validated by config; the zero prefix means the interface's
		// address.
		EncapSource4:    encapSource(c.L4.EncapSourceV4),
		EncapSource6:    encapSource(c.L4.EncapSourceV6),
		EncapMTU:        uint32(c.L4.EncapMTU),
		EncapDropTooBig: c.L4.EncapICMPTooBig != nil && !*c.L4.EncapICMPTooBig,
		GUEPort:         uint16(c.L4.GUEPort),
	}
}

func encapSource(s string) netip.Prefix {
	p, _ := config.ParseEncapSource(s)
	return p
}

// L4Services turns the config's VIPs into the dataplane's services, in
// config order: that order and the backend names are the Maglev input,
// identical on every node that has the same config.
func L4Services(c *config.Config) ([]l4.Service, error) {
	out := make([]l4.Service, 0, len(c.VIPs))
	for _, v := range c.VIPs {
		addr, err := netip.ParseAddr(v.Address)
		if err != nil {
			return nil, fmt.Errorf("vip %q: %w", v.Name, err)
		}
		s := l4.Service{Name: v.Name, Addr: addr.Unmap(), Port: uint16(v.Port), Proto: 6, QUIC: v.QUIC}
		if v.Protocol == "udp" {
			s.Proto = 17
		}
		for _, b := range v.Backends {
			ba, err := netip.ParseAddr(b.Address)
			if err != nil {
				return nil, fmt.Errorf("vip %q backend %q: %w", v.Name, b.Name, err)
			}
			be := l4.Backend{Name: b.Name, Addr: ba.Unmap(), Mode: b.Forwarding, Weight: uint32(*b.Weight), QUICNodeID: uint8(b.NodeID)}
			if b.MAC != "" {
				if be.MAC, err = net.ParseMAC(b.MAC); err != nil {
					return nil, fmt.Errorf("vip %q backend %q: %w", v.Name, b.Name, err)
				}
			}
			s.Backends = append(s.Backends, be)
		}
		out = append(out, s)
	}
	return out, nil
}

// applyL4 brings the dataplane to cfg's VIPs: loads and attaches it when
// the first VIP appears, rewrites its maps on every change, detaches it when
// the last VIP goes. Load-time settings cannot change under a running
// program without losing the connection table, so such a change is refused
// (the running config stays) and needs a restart.
func (d *Daemon) applyL4(cfg *config.Config, svcs []l4.Service) error {
	if d.l4 == nil {
		d.l4 = &l4Plane{}
	}
	p := d.l4
	p.mu.Lock()
	defer p.mu.Unlock()
	want := L4Config(cfg)
	// Refuse before touching anything, so a refused reload leaves lo, the
	// sysctls and the maps as they were.
	if p.dp != nil && len(svcs) > 0 && p.cfg != want {
		return fmt.Errorf("l4: interface, xdp_mode, hash_seed, maglev_size, conntrack_size, udp_timeout, syn_flood_rate and the encap_* keys are fixed while XDP runs (running %+v, new %+v): restart the daemon to change them", p.cfg, want)
	}
	// In a cluster, VIPs served by the local L7 proxy go on lo (and the
	// ARP sysctls are set) before the maps can hand it their packets.
	if err := d.syncLocalVIPs(cfg); err != nil {
		if len(wantLocalVIPs(cfg)) > 0 {
			return fmt.Errorf("l4 → L7 handoff: %w", err)
		}
		d.log.Warn("cleaning VIPs off lo", "err", err)
	}
	d.peerProxies(cfg, svcs)
	d.logPeerProxies(p, svcs)
	if len(svcs) == 0 {
		if p.dp != nil {
			d.metrics.Registry.Unregister(p.dp.Collector())
			p.dp.Close()
			p.dp = nil
			p.attached.Store(false)
			d.log.Info("XDP detached: no VIPs configured")
		}
		p.applied = cfg
		return nil
	}
	// A config (re)load resolves next hops afresh; health changes in
	// between use the cache.
	p.hops = nil
	if err := p.resolveNextHops(want.Interface, svcs); err != nil {
		return err
	}
	if p.dp != nil {
		if err := p.dp.Apply(svcs); err != nil {
			return err
		}
		p.applied = cfg
		return nil
	}
	dp, err := l4.New(want, d.log.With("component", "l4"))
	if err != nil {
		return err
	}
	// Maps first, then attach: the first packet already sees every VIP.
	if err := dp.Apply(svcs); err != nil {
		dp.Close()
		return err
	}
	if err := dp.Attach(); err != nil {
		dp.Close()
		return err
	}
	if err := d.metrics.Registry.Register(dp.Collector()); err != nil {
		d.log.Warn("l4 metrics not registered", "err", err)
	}
	p.dp, p.cfg, p.applied = dp, want, cfg
	p.attached.Store(true)
	d.log.Info("XDP attached", "interface", want.Interface, "mode", dp.AttachedMode(), "vips", len(svcs))
	return nil
}

// l4Attached reports whether the XDP program is attached. It takes no lock:
// the cluster node asks it (through localHealth) while holding its own lock,
// and refreshL4 calls into the node while holding the L4 lock.
func (d *Daemon) l4Attached() bool {
	return d.l4 != nil && d.l4.attached.Load()
}

// refreshL4 rewrites the maps after a health change.
func (d *Daemon) refreshL4() error {
	if d.l4 == nil {
		return nil
	}
	p := d.l4
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dp == nil || p.applied == nil {
		return nil
	}
	svcs, err := d.l4ServicesWithHealth(p.applied)
	if err != nil {
		return err
	}
	d.peerProxies(p.applied, svcs)
	d.logPeerProxies(p, svcs)
	if err := p.resolveNextHops(p.cfg.Interface, svcs); err != nil {
		return err
	}
	return p.dp.Apply(svcs)
}

// closeL4 detaches XDP and takes the VIPs off lo. At shutdown it runs
// after the L7 drain: until then a peer that took the VIP over keeps
// sending this node's in-flight connections back to it (Maglev), and they
// need both.
func (d *Daemon) closeL4() {
	if d.l4 == nil {
		return
	}
	d.l4.mu.Lock()
	defer d.l4.mu.Unlock()
	if d.l4.dp != nil {
		d.l4.dp.Close()
		d.l4.dp = nil
		d.l4.attached.Store(false)
		d.log.Info("XDP detached")
	}
	d.removeLocalVIPs()
}

// logPeerProxies logs when the peers' proxies drained or taken down for
// their membership change.
func (d *Daemon) logPeerProxies(p *l4Plane, svcs []l4.Service) {
	st := peerProxyState(svcs)
	if st != p.peerState {
		d.log.Info("dsr-l2 backends out of the Maglev tables (down) or drained (weight 0)", "backends", st, "was", p.peerState)
		p.peerState = st
	}
}

func (d *Daemon) l4Status() any {
	if d.l4 == nil {
		return nil
	}
	d.l4.mu.Lock()
	defer d.l4.mu.Unlock()
	if d.l4.dp == nil {
		return nil
	}
	st := map[string]any{"interface": d.l4.cfg.Interface, "mode": d.l4.dp.AttachedMode()}
	if stats, err := d.l4.dp.Stats(); err == nil {
		st["stats"] = stats
	} else {
		st["stats_error"] = err.Error()
	}
	return st
}
