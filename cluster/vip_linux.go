package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func hostPrefix(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

// addVIP puts the VIP on the interface as a host route (/32 or /128).
// AddrReplace is idempotent, so a retry after a partial failure is safe.
// IPv6 skips duplicate address detection: the old owner may still have the
// address for a moment, and DAD would leave ours "tentative" (unusable) for
// about a second, or fail it outright.
func addVIP(h *netlink.Handle, ifname string, a netip.Addr) error {
	lk, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: hostPrefix(a)}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return h.AddrReplace(lk, addr)
}

// delVIP removes the VIP; an address already gone is not an error.
func delVIP(h *netlink.Handle, ifname string, a netip.Addr) error {
	lk, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	err = h.AddrDel(lk, &netlink.Addr{IPNet: hostPrefix(a)})
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// addrsOn lists the addresses on the interface.
func addrsOn(h *netlink.Handle, ifname string) (map[netip.Addr]bool, error) {
	lk, err := h.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	as, err := h.AddrList(lk, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]bool{}
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}

// sendAnnouncement tells the segment that the VIP is now at this node's
// MAC. IPv4: a gratuitous ARP in both forms, a request and a reply (sender
// and target IP both the VIP), broadcast: hosts and routers differ in
// which form they honour, and Linux updates an existing entry from either
// even inside its locktime. IPv6: an unsolicited neighbour advertisement
// to all-nodes with the Override flag and the target link-layer address
// option (RFC 4861 §7.2.6), so existing entries are replaced.
//
// The sockets are opened per announcement, inside the node's namespace:
// an announcement is a handful of packets every few seconds at most, and
// a fresh socket never holds a stale interface index.
func (n *Node) sendAnnouncement(v VIP) error {
	ifname := n.opts.Interface
	return n.opts.InNamespace(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if v.Addr.Is4() {
			c, err := arp.Dial(ifi)
			if err != nil {
				return fmt.Errorf("arp socket on %s: %w", ifname, err)
			}
			defer c.Close()
			zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
			req, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, v.Addr, zero, v.Addr)
			if err != nil {
				return err
			}
			rep, err := arp.NewPacket(arp.OperationReply, ifi.HardwareAddr, v.Addr, ethernet.Broadcast, v.Addr)
			if err != nil {
				return err
			}
			if err := c.WriteTo(req, ethernet.Broadcast); err != nil {
				return err
			}
			return c.WriteTo(rep, ethernet.Broadcast)
		}
		c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			return fmt.Errorf("ndp socket on %s: %w", ifname, err)
		}
		defer c.Close()
		na := &ndp.NeighborAdvertisement{
			Override:      true,
			TargetAddress: v.Addr,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
		}
		return c.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes())
	})
}
