package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portcullis-lb/portcullis/cluster/bgp"
	"github.com/portcullis-lb/portcullis/internal/admin"
	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4"
)

// bgpPoll is how often the announce decision is re-evaluated besides the
// events that trigger it (reload, health change, agreed set): it catches
// what has no event (a listener that died, XDP detached, the witness).
const bgpPoll = 250 * time.Millisecond

// bgpPlane is the embedded BGP speaker while the config has a bgp section.
// The decision flows one way: readiness (XDP, L7, witness, agreed backend
// health, draining) → bgp.Decide per VIP → Speaker.Apply, which sends only
// what changed.
type bgpPlane struct {
	mu   sync.Mutex // guards sp and stop
	sp   *bgp.Speaker
	stop chan struct{}
	done chan struct{}
	// announceMu serialises announce: wants computed earlier must not be
	// applied after wants computed later.
	announceMu sync.Mutex
}

func (d *Daemon) bgpSpeaker() *bgp.Speaker {
	d.bgp.mu.Lock()
	defer d.bgp.mu.Unlock()
	return d.bgp.sp
}

// bgpRunning returns the speaker and the running config when both exist
// and the config has a bgp section; nil otherwise.
func (d *Daemon) bgpRunning() (*bgp.Speaker, *config.Config) {
	sp := d.bgpSpeaker()
	g := d.gen.Load()
	if sp == nil || g == nil || g.cfg.BGP == nil {
		return nil, nil
	}
	return sp, g.cfg
}

// applyBGP starts, updates or stops the speaker for cfg, then announces.
// It runs after the cluster (the witness and the agreed health exist) and,
// like it, never makes a reload fail: a speaker error is logged and the
// node keeps its previous BGP state.
func (d *Daemon) applyBGP(cfg *config.Config) error {
	p := d.bgp
	sp := d.bgpSpeaker()
	if cfg.BGP == nil {
		if sp != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d.stopBGP(ctx)
			d.log.Info("BGP speaker stopped: no bgp section any more")
		}
		return nil
	}
	bc, err := bgpConfig(cfg)
	if err != nil {
		return err
	}
	if sp == nil {
		sp, err = bgp.Start(bc, d.log.With("component", "bgp"))
		if err != nil {
			return err
		}
		for _, c := range sp.Collectors() {
			_ = d.metrics.Registry.Register(c)
		}
		p.mu.Lock()
		p.sp, p.stop, p.done = sp, make(chan struct{}), make(chan struct{})
		stop, done := p.stop, p.done
		p.mu.Unlock()
		go d.bgpLoop(stop, done)
	} else if err := sp.Update(bc); err != nil {
		if !errors.Is(err, bgp.ErrRestartRequired) {
			d.log.Error("BGP update incomplete", "err", err)
		} else {
			d.log.Warn("BGP settings changed that take effect at the next restart", "err", err)
		}
	}
	d.announce()
	return nil
}

func (d *Daemon) bgpLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(bgpPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			d.announce()
		}
	}
}

// announce evaluates every bgp VIP and applies the result.
func (d *Daemon) announce() {
	sp, cfg := d.bgpRunning()
	if sp == nil {
		return
	}
	d.bgp.announceMu.Lock()
	defer d.bgp.announceMu.Unlock()
	if err := sp.Apply(d.bgpWants(cfg)); err != nil {
		d.log.Error("BGP announcement failed", "err", err)
	}
}

// bgpWants is the decision for every VIP of cfg's bgp section. It runs
// every bgpPoll, so it looks up the health of the backends of the L4 VIPs
// the bgp section names only, not of every L4 service.
func (d *Daemon) bgpWants(cfg *config.Config) []bgp.Want {
	base := communities(cfg.BGP.Communities)
	node := d.clusterNode()
	ready := bgp.Readiness{
		Draining: d.draining.Load(),
		XDP:      d.l4Attached(),
		L7:       len(cfg.L7.Listeners) > 0 && len(d.proxy.Addrs()) == len(cfg.L7.Listeners),
		Witness:  node == nil || node.WitnessUp(),
	}
	wants := make([]bgp.Want, 0, len(cfg.BGP.VIPs))
	for _, bv := range cfg.BGP.VIPs {
		addr, named, err := cfg.BGPVIPAddr(bv.VIP)
		if err != nil {
			continue // validated: cannot happen
		}
		r := ready
		for _, v := range cfg.VIPs {
			// A named VIP is judged by its own backends; an address by
			// every L4 VIP on it. Either needs the L7 proxy when a
			// backend hands packets to it.
			if named && v.Name != bv.VIP {
				continue
			}
			if !named {
				if a, err := netip.ParseAddr(v.Address); err != nil || a.Unmap() != addr {
					continue
				}
			}
			r.NeedsXDP = true
			for _, b := range v.Backends {
				if w, down := d.backendHealth(node, v.Name, b.Name, uint32(*b.Weight)); !down && w > 0 {
					r.UsableBackends++
				}
				if b.Forwarding == l4.ModeLocal {
					r.NeedsL7 = true
				}
			}
		}
		if !named && !r.NeedsXDP {
			r.NeedsL7 = true // an address only the L7 proxy serves
		}
		ok, why := bgp.Decide(r)
		wants = append(wants, bgp.Want{Name: bv.VIP, Prefix: netip.PrefixFrom(addr, addr.BitLen()),
			Communities: append(append([]uint32(nil), base...), communities(bv.Communities)...), Announce: ok, Reason: why})
	}
	return wants
}

func communities(list []string) []uint32 {
	out := make([]uint32, 0, len(list))
	for _, s := range list {
		if c, err := config.ParseCommunity(s); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// bgpStopTimeout bounds closing the sessions at exit.
const bgpStopTimeout = 3 * time.Second

// withdrawBGP withdraws every VIP at the start of a shutdown and waits
// withdraw_settle so that the routers move new flows to the other nodes
// while this one still forwards everything that arrives: the flows the
// routers re-hash land on nodes that pick the same backend.
func (d *Daemon) withdrawBGP() {
	sp, cfg := d.bgpRunning()
	if sp == nil {
		return
	}
	d.bgp.announceMu.Lock()
	err := sp.WithdrawAll(bgp.ReasonDraining)
	d.bgp.announceMu.Unlock()
	if err != nil {
		d.log.Error("BGP withdrawal failed", "err", err)
	}
	settle := cfg.BGP.WithdrawSettle.D()
	d.log.Info("BGP VIPs withdrawn; letting the routers converge", "for", settle)
	time.Sleep(settle)
}

// stopBGP closes the sessions (Cease) and stops the speaker.
func (d *Daemon) stopBGP(ctx context.Context) {
	p := d.bgp
	p.mu.Lock()
	sp, stop, done := p.sp, p.stop, p.done
	p.sp, p.stop, p.done = nil, nil, nil
	p.mu.Unlock()
	if sp == nil {
		return
	}
	close(stop)
	<-done
	sp.Stop(ctx)
	for _, c := range sp.Collectors() {
		d.metrics.Registry.Unregister(c)
	}
}

// bgpConfig converts the bgp section. The router id defaults to
// node.interface's first IPv4 address.
func bgpConfig(cfg *config.Config) (bgp.Config, error) {
	b := cfg.BGP
	c := bgp.Config{ASN: b.ASN, ListenPort: int32(b.ListenPort), ListenAddresses: b.ListenAddresses,
		GracefulRestart: b.GracefulRestart.D()}
	var err error
	if b.RouterID != "" {
		c.RouterID, err = netip.ParseAddr(b.RouterID)
	} else {
		c.RouterID, err = interfaceIPv4(cfg.Node.Interface)
	}
	if err != nil {
		return c, fmt.Errorf("bgp.router_id: %w", err)
	}
	if b.NextHop != "" {
		c.NextHop4, _ = netip.ParseAddr(b.NextHop)
		c.NextHop4 = c.NextHop4.Unmap()
	}
	if b.NextHopV6 != "" {
		c.NextHop6, _ = netip.ParseAddr(b.NextHopV6)
	}
	for _, p := range b.Peers {
		a, _ := netip.ParseAddr(p.Address)
		pw, err := p.PeerPassword()
		if err != nil {
			return c, fmt.Errorf("bgp peer %s: password_file: %w", p.Address, err)
		}
		bp := bgp.Peer{Address: a.Unmap(), Port: uint16(p.Port), ASN: p.ASN, Password: pw, HoldTime: p.HoldTime.D(),
			Keepalive: p.Keepalive.D(), ConnectRetry: p.ConnectRetry.D(), Passive: p.Passive, MultihopTTL: uint8(p.MultihopTTL)}
		if f := p.BFD; f != nil && *f.Enabled {
			bp.BFD = &bgp.BFD{MinTx: f.MinTx.D(), MinRx: f.MinRx.D(), Multiplier: uint32(f.Multiplier)}
		}
		c.Peers = append(c.Peers, bp)
	}
	return c, nil
}

func interfaceIPv4(name string) (netip.Addr, error) {
	if name == "" {
		return netip.Addr{}, errors.New("set router_id or node.interface")
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address: set router_id", name)
}

func (d *Daemon) mountBGPAdmin() {
	d.admin.Handle("GET /api/v1/bgp", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		admin.WriteJSON(w, http.StatusOK, d.bgpView())
	}))
}

// BGPView is the admin API's and the dashboard's view of the speaker.
type BGPView struct {
	Enabled bool             `json:"enabled"`
	ASN     uint32           `json:"asn,omitempty"`
	Peers   []bgp.PeerStatus `json:"peers"`
	VIPs    []bgp.VIPStatus  `json:"vips"`
}

func (d *Daemon) bgpView() BGPView {
	v := BGPView{Peers: []bgp.PeerStatus{}, VIPs: []bgp.VIPStatus{}}
	sp, cfg := d.bgpRunning()
	if sp == nil {
		return v
	}
	v.Enabled, v.ASN = true, cfg.BGP.ASN
	if p := sp.Peers(); p != nil {
		v.Peers = p
	}
	v.VIPs = sp.VIPs()
	return v
}

func (d *Daemon) bgpDashboard() dashboard.BGP {
	v := d.bgpView()
	out := dashboard.BGP{Enabled: v.Enabled, ASN: v.ASN, Peers: []dashboard.BGPPeer{}, VIPs: []dashboard.BGPVIP{}}
	for _, p := range v.Peers {
		out.Peers = append(out.Peers, dashboard.BGPPeer{Address: p.Address, ASN: p.ASN, State: p.State, Since: p.Since,
			HoldTime: p.HoldTime, BFD: p.BFD, Flaps: p.Flaps, LastDisconnect: p.DisconnectReason})
	}
	for _, a := range v.VIPs {
		out.VIPs = append(out.VIPs, dashboard.BGPVIP{VIP: a.VIP, Prefix: a.Prefix, Announced: a.Announced, Reason: string(a.Reason), Since: a.Since})
	}
	return out
}
