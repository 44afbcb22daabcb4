package l4

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// ResolveNextHop finds the Ethernet address ipip packets to dst must be
// sent to from ifname: the gateway of the route to dst, or dst itself
// when it is on-link, looked up in the neighbour table. A missing entry
// is provoked by sending one UDP datagram towards the next hop (to the
// discard port) and waited for until ctx ends. It runs in the caller's
// network namespace.
func ResolveNextHop(ctx context.Context, ifname string, dst netip.Addr) (net.HardwareAddr, netip.Addr, error) {
	dst = dst.Unmap()
	lk, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("l4: next hop to %s: interface %q: %w", dst, ifname, err)
	}
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return nil, netip.Addr{}, fmt.Errorf("l4: next hop to %s: no route: %v", dst, err)
	}
	r := routes[0]
	if r.LinkIndex != lk.Attrs().Index {
		return nil, netip.Addr{}, fmt.Errorf("l4: next hop to %s: the route leaves by interface %d, not %s: XDP_TX can only send out of %s", dst, r.LinkIndex, ifname, ifname)
	}
	hop := dst
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && !gw.IsUnspecified() {
		hop = gw.Unmap()
	}
	family := netlink.FAMILY_V4
	if hop.Is6() {
		family = netlink.FAMILY_V6
	}
	poked := false
	for {
		neighs, err := netlink.NeighList(lk.Attrs().Index, family)
		if err != nil {
			return nil, hop, fmt.Errorf("l4: next hop %s: neighbours: %w", hop, err)
		}
		for _, n := range neighs {
			a, _ := netip.AddrFromSlice(n.IP)
			usable := n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT) != 0
			if a.Unmap() == hop && usable && len(n.HardwareAddr) == 6 {
				return n.HardwareAddr, hop, nil
			}
		}
		if !poked {
			poked = true
			var d net.Dialer
			if c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(hop, 9).String()); err == nil {
				c.Write([]byte{0})
				c.Close()
			}
		}
		select {
		case <-ctx.Done():
			return nil, hop, fmt.Errorf("l4: next hop %s (towards %s) did not resolve: %w", hop, dst, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
