//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CallerLink is a veth pair joining the caller's own network namespace
// (usually the machine's) to the lab's bridge: Name in the caller's
// namespace, Peer on br0. Made by Lab.AddCallerLink.
type CallerLink struct {
	Name string // "<lab>-<name>" in the caller's namespace
	Peer string // bridge-side end, in the bridge namespace
	Addr netip.Prefix

	lab  *Lab
	once sync.Once
	err  error
}

// AddCallerLink joins the caller's namespace to the lab's bridge, so that
// programs of the machine (a browser, curl) reach the lab's hosts, e.g. a
// dashboard on a load-balancer node, with addr on the caller's end.
//
// This is the one exception to "no interface in the caller's namespace":
// the link is named "<lab>-<name>" (at most 15 characters), so Cleanup of
// the lab's prefix removes it if the process dies before Close. Its TX
// checksum offload is off, as on every lab sender whose traffic may cross
// a native XDP program on veth (see DisableTxOffload). Lab.Close deletes
// it; so does CallerLink.Close.
func (l *Lab) AddCallerLink(name string, addr netip.Prefix) (*CallerLink, error) {
	if !nameRE.MatchString(name) || name == "bridge" {
		return nil, fmt.Errorf("netlab: bad caller link name %q", name)
	}
	c := &CallerLink{Name: l.Name + "-" + name, Peer: "r-" + name, Addr: addr, lab: l}
	if len(c.Name) > 15 {
		return nil, fmt.Errorf("netlab: caller link name %q is longer than 15 characters", c.Name)
	}
	if len(c.Peer) > 15 {
		c.Peer = c.Peer[:15]
	}
	self, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netlab: get current netns: %w", err)
	}
	defer self.Close()
	br := l.Bridge
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: c.Peer, MTU: l.opts.MTU},
		PeerName:      c.Name,
		PeerNamespace: netlink.NsFd(int(self)),
		PeerMTU:       uint32(l.opts.MTU),
	}
	if err := br.nl.LinkAdd(veth); err != nil {
		return nil, unsupported("create veth "+c.Name, err)
	}
	if err := l.track("xdp", c); err != nil { // closed with the XDP attachments, before the bridge
		c.Close()
		return nil, err
	}
	peer, err := br.nl.LinkByName(c.Peer)
	if err != nil {
		return nil, err
	}
	if err := br.nl.LinkSetMaster(peer, l.bridge); err != nil {
		return nil, fmt.Errorf("netlab: %s: master br0: %w", c.Peer, err)
	}
	if err := br.nl.LinkSetUp(peer); err != nil {
		return nil, err
	}
	lk, err := netlink.LinkByName(c.Name)
	if err != nil {
		return nil, err
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: prefixToIPNet(addr)}
		if addr.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(lk, a); err != nil {
			return nil, fmt.Errorf("netlab: add %s to %s: %w", addr, c.Name, err)
		}
	}
	if err := netlink.LinkSetUp(lk); err != nil {
		return nil, err
	}
	if _, err := ethtoolValueIoctl(c.Name, ethtoolSTXCSUM, 0); err != nil {
		return nil, fmt.Errorf("netlab: ethtool -K %s tx off: %w", c.Name, err)
	}
	return c, nil
}

// Close deletes the pair. Idempotent.
func (c *CallerLink) Close() error {
	c.once.Do(func() {
		br := c.lab.Bridge
		if br == nil || br.nl == nil {
			return
		}
		lk, err := br.nl.LinkByName(c.Peer)
		if err != nil {
			return // already gone with the bridge namespace
		}
		if err := br.nl.LinkDel(lk); err != nil && !errors.Is(err, unix.ENODEV) {
			c.err = fmt.Errorf("netlab: delete %s: %w", c.Name, err)
		}
	})
	return c.err
}
