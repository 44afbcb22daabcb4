package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4"
)

// L4 → L7 handoff in a cluster (DESIGN.md): an HTTP VIP lists the
// cluster's L7 proxies as its XDP backends, this node's own as
// `forwarding: local` and every peer's as `dsr-l2` with the peer's MAC
// (same names and weights on every node, so the Maglev tables match).
// For that to work on every node, owner or not:
//
//   - Every VIP that has a `forwarding: local` backend is on `lo` as a /32
//     or /128, so this node's stack accepts packets for it whether or not
//     the cluster put the floating address on node.interface: packets
//     DSR'd to it by the owner, and after a handover the packets of its
//     own still-draining connections, which the new owner's XDP sends back
//     here through the same Maglev table. The address stays on lo until
//     the L7 drain is over (closeL4, after the proxy's Shutdown), and is
//     removed when the VIP leaves the config or the config loses its
//     cluster section.
//   - net.ipv4.conf.{all,<iface>}.arp_ignore >= 1 and arp_announce >= 2 on
//     node.interface (and cluster.interface if it differs): a node answers
//     ARP for the VIP only while the address is on that interface, that is
//     while the cluster made it the owner, and never uses the VIP as the
//     source of its own ARP requests. The cluster's add/remove on the
//     interface therefore still decides who answers ARP. The daemon only
//     raises the values (a stricter setting, e.g. arp_ignore=2, stays), logs
//     every change, and does not restore them at exit.
//
// Docs line: "In a cluster, Portcullis puts every VIP with a
// `forwarding: local` backend on `lo` (removed at exit after the L7 drain)
// and sets net.ipv4.conf.{all,<node.interface>}.arp_ignore=1 and
// arp_announce=2, so that every node's L7 proxy accepts the VIP's DSR'd
// flows while only the owner answers ARP for it; without a cluster section
// nothing of this is done: where the VIP lives is the operator's business."
//
// A node without a cluster section changes nothing here: a standalone node
// has no peer that DSRs to it and no handover, so the VIP is on its
// interface (or wherever the operator put it) and the ARP settings are
// left alone. Addresses it added earlier (the cluster section was removed
// by a reload) are taken off lo.

// loLabel marks the IPv4 addresses this daemon put on lo, so that a
// restarted daemon removes the ones a killed one left behind even if the
// VIP is no longer configured. IPv6 has no labels: those are removed when
// the running process knows them.
const loLabel = "lo:portcullis"

// localVIPs is what this process put on lo.
type localVIPs struct {
	mu    sync.Mutex
	added map[netip.Addr]bool
}

var loVIPs = localVIPs{added: map[netip.Addr]bool{}}

// wantLocalVIPs is the set of VIP addresses that go on lo for cfg: only in
// a cluster, only VIPs with a local backend.
//
// With a bgp section the same holds for the VIPs it announces (the router
// sends them to any node of the group, which must accept them), and an
// address announced without an L4 VIP (one the L7 proxy serves directly)
// goes on lo too: nothing else would make this node accept it.
func wantLocalVIPs(cfg *config.Config) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	if cfg == nil || cfg.Cluster == nil && cfg.BGP == nil {
		return out
	}
	if cfg.BGP != nil {
		for _, bv := range cfg.BGP.VIPs {
			if a, named, err := cfg.BGPVIPAddr(bv.VIP); err == nil && !named {
				out[a] = true
			}
		}
	}
	for _, v := range cfg.VIPs {
		a, err := netip.ParseAddr(v.Address)
		if err != nil {
			continue
		}
		for _, b := range v.Backends {
			if b.Forwarding == l4.ModeLocal {
				out[a.Unmap()] = true
				break
			}
		}
	}
	return out
}

// syncLocalVIPs brings lo and the ARP sysctls to cfg. Idempotent.
func (d *Daemon) syncLocalVIPs(cfg *config.Config) error {
	want := wantLocalVIPs(cfg)
	var errs []error
	if len(want) > 0 {
		ifaces := []string{cfg.Node.Interface}
		if cfg.Cluster != nil && cfg.Cluster.Interface != "" && cfg.Cluster.Interface != cfg.Node.Interface {
			ifaces = append(ifaces, cfg.Cluster.Interface)
		}
		for _, ifc := range ifaces {
			if ifc == "" {
				continue
			}
			if err := d.ensureARPSysctls(ifc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := d.setLoVIPs(want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeLocalVIPs takes every VIP this daemon put on lo off again (at exit,
// after the L7 drain).
func (d *Daemon) removeLocalVIPs() {
	if err := d.setLoVIPs(nil); err != nil {
		d.log.Warn("removing the VIPs from lo", "err", err)
	}
}

func (d *Daemon) setLoVIPs(want map[netip.Addr]bool) error {
	loVIPs.mu.Lock()
	defer loVIPs.mu.Unlock()
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	present, err := h.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addresses on lo: %w", err)
	}
	have := map[netip.Addr]bool{}
	var errs []error
	for _, a := range present {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		if ones != bits {
			continue // not a host address: never ours
		}
		have[ip] = true
		ours := loVIPs.added[ip] || (ip.Is4() && a.Label == loLabel)
		if ours && !want[ip] {
			if err := h.AddrDel(lo, &netlink.Addr{IPNet: hostNet(ip)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %s from lo: %w", ip, err))
				continue
			}
			delete(loVIPs.added, ip)
			delete(have, ip)
			d.log.Info("VIP removed from lo", "vip", ip)
		}
	}
	for _, ip := range sortedAddrs(want) {
		if have[ip] {
			// Already there (ours from a previous process, or the
			// operator's): keep it; it is ours to remove from now on.
			loVIPs.added[ip] = true
			continue
		}
		addr := &netlink.Addr{IPNet: hostNet(ip)}
		if ip.Is4() {
			addr.Label = loLabel
		} else {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(lo, addr); err != nil {
			errs = append(errs, fmt.Errorf("add %s to lo: %w", ip, err))
			continue
		}
		loVIPs.added[ip] = true
		d.log.Info("VIP added to lo: this node's L7 proxy accepts its DSR'd flows whether or not it owns the address", "vip", ip)
	}
	return errors.Join(errs...)
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// ensureARPSysctls raises arp_ignore to 1 and arp_announce to 2 on all and
// ifc where they are lower, and logs what it changed. The kernel uses the
// larger of all and the interface for both, so both are set.
func (d *Daemon) ensureARPSysctls(ifc string) error {
	var errs []error
	for _, s := range []struct {
		key  string
		want int
	}{
		{"arp_ignore", 1},
		{"arp_announce", 2},
	} {
		for _, dev := range []string{"all", ifc} {
			p := filepath.Join("/proc/sys/net/ipv4/conf", dev, s.key)
			b, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("sysctl net.ipv4.conf.%s.%s: %w", dev, s.key, err))
				continue
			}
			cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				errs = append(errs, fmt.Errorf("sysctl net.ipv4.conf.%s.%s: %q", dev, s.key, b))
				continue
			}
			if cur >= s.want {
				continue
			}
			if err := os.WriteFile(p, []byte(strconv.Itoa(s.want)), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("sysctl net.ipv4.conf.%s.%s=%d: %w", dev, s.key, s.want, err))
				continue
			}
			d.log.Info("changed an ARP setting so that only the VIP owner answers ARP for it (the VIP is on lo on every node)",
				"sysctl", fmt.Sprintf("net.ipv4.conf.%s.%s", dev, s.key), "was", cur, "now", s.want)
		}
	}
	return errors.Join(errs...)
}

// peerProxies adjusts, in a cluster, the dsr-l2 backends of VIPs that have
// a local backend (the L4 → L7 handoff: those backends are the peers' L7
// proxies) to the membership this node sees. A backend is a peer's proxy
// when its address is a member's gossip address or a host of
// cluster.peers. Its peer
//
//   - alive (leaving or not): as configured;
//   - left (graceful leave): weight 0, drained: the flows already pinned
//     in this node's conntrack (its in-flight connections, which reached
//     this node after the handover) keep going to it while its proxy
//     drains, new flows go elsewhere;
//   - dead, or not (or no longer) in the view: down, so that new flows are
//     not sent to a node that is not there.
//
// This node's own proxy (the local backend) is never changed here: a
// packet another node DSRs to it must be handed to its stack, not bounced
// back. Nodes converge on the same tables as their views converge.
func (d *Daemon) peerProxies(cfg *config.Config, svcs []l4.Service) {
	n := d.clusterNode()
	if n == nil || cfg == nil || cfg.Cluster == nil {
		return
	}
	state := map[netip.Addr]string{}
	for _, m := range n.Members() {
		if m.Self {
			continue
		}
		state[m.Addr.Addr().Unmap()] = m.State
	}
	peers := map[netip.Addr]bool{}
	for _, p := range cfg.Cluster.Peers {
		host := p
		if h, _, err := net.SplitHostPort(p); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(host); err == nil {
			peers[a.Unmap()] = true
		}
	}
	for i := range svcs {
		s := &svcs[i]
		if !slices.ContainsFunc(s.Backends, func(b l4.Backend) bool { return b.Mode == l4.ModeLocal }) {
			continue
		}
		for j := range s.Backends {
			b := &s.Backends[j]
			if b.Mode != l4.ModeDSRL2 {
				continue
			}
			st, member := state[b.Addr]
			switch {
			case member && st == "alive":
			case member && st == "left":
				b.Weight = 0
			case member || peers[b.Addr]:
				b.Down = true
			}
		}
	}
}

// peerProxyState describes the drained and down dsr-l2 backends, for a log
// line when it changes.
func peerProxyState(svcs []l4.Service) string {
	var parts []string
	for _, s := range svcs {
		for _, b := range s.Backends {
			if b.Mode != l4.ModeDSRL2 {
				continue
			}
			switch {
			case b.Down:
				parts = append(parts, s.Name+"/"+b.Name+"=down")
			case b.Weight == 0:
				parts = append(parts, s.Name+"/"+b.Name+"=drained")
			}
		}
	}
	return strings.Join(parts, ",")
}

// leaveSettle is how much longer a leaving node that serves L7 through a
// VIP keeps accepting new connections after it left the cluster (see
// leaveCluster): the peers drain its proxy from their Maglev tables when
// its leave message arrives, and a flow they sent it just before must find
// the listener still open.
const leaveSettle = 300 * time.Millisecond
