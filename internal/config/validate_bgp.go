package config

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// PeerPassword returns the TCP MD5 secret of a peer, read from
// password_file when set ("" is no authentication).
func (p *BGPPeer) PeerPassword() (string, error) {
	if p.PasswordFile == "" {
		return p.Password, nil
	}
	b, err := os.ReadFile(p.PasswordFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// BGPVIPAddr resolves a bgp.vips entry: the address of the named VIP, or
// the address written directly (named is then false).
func (c *Config) BGPVIPAddr(entry string) (addr netip.Addr, named bool, err error) {
	for _, v := range c.VIPs {
		if v.Name == entry {
			a, err := netip.ParseAddr(v.Address)
			return a.Unmap(), true, err
		}
	}
	a, err := netip.ParseAddr(entry)
	return a.Unmap(), false, err
}

func (v *validator) validateBGP() {
	b := v.c.BGP
	if b == nil {
		return
	}
	switch b.ASN {
	case 0:
		v.errorf("bgp.asn", "set this node's AS number (1-4294967295; 64512-65534 and 4200000000-4294967294 are private)")
	case 23456:
		v.errorf("bgp.asn", "23456 is AS_TRANS (RFC 6793), not a real AS number")
	}
	if b.RouterID != "" {
		if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
			v.errorf("bgp.router_id", "router_id %q must be an IPv4 address (it is an identifier, also on IPv6-only nodes)", b.RouterID)
		}
	} else if v.c.Node.Interface == "" {
		v.errorf("bgp.router_id", "set router_id, or node.interface to take it from the interface's IPv4 address")
	}
	if b.ListenPort != -1 && (b.ListenPort < 1 || b.ListenPort > 65535) {
		v.errorf("bgp.listen_port", "listen_port %d: use 1-65535, or -1 for no listener", b.ListenPort)
	}
	for i, a := range b.ListenAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			v.errorf(fmt.Sprintf("bgp.listen_addresses[%d]", i), "%q is not an IP address", a)
		}
	}
	if b.NextHop != "" {
		if a, err := netip.ParseAddr(b.NextHop); err != nil || !a.Unmap().Is4() {
			v.errorf("bgp.next_hop", "next_hop %q must be an IPv4 address", b.NextHop)
		}
	}
	if b.NextHopV6 != "" {
		if a, err := netip.ParseAddr(b.NextHopV6); err != nil || !a.Is6() || a.Is4In6() {
			v.errorf("bgp.next_hop_v6", "next_hop_v6 %q must be an IPv6 address", b.NextHopV6)
		}
	}
	v.communities("bgp.communities", b.Communities)
	if b.WithdrawSettle < 0 || b.WithdrawSettle.D() > time.Minute {
		v.errorf("bgp.withdraw_settle", "withdraw_settle %s is out of range (0-1m)", b.WithdrawSettle.D())
	}
	if b.GracefulRestart < 0 || b.GracefulRestart.D() > 4095*time.Second || b.GracefulRestart > 0 && b.GracefulRestart.D() < time.Second {
		v.errorf("bgp.graceful_restart", "graceful_restart %s: use 0 (off) or 1s-4095s (the capability carries 12 bits of seconds)", b.GracefulRestart.D())
	}
	if len(b.Peers) == 0 {
		v.errorf("bgp.peers", "list at least one peer (the router this node announces VIPs to)")
	}
	peers := map[netip.Addr]bool{}
	for i := range b.Peers {
		v.validateBGPPeer(fmt.Sprintf("bgp.peers[%d]", i), &b.Peers[i], b.ASN, peers)
	}
	if len(b.VIPs) == 0 {
		v.errorf("bgp.vips", "list the VIPs to announce")
	}
	floating := map[netip.Addr]bool{}
	if cl := v.c.Cluster; cl != nil {
		for _, fv := range cl.VIPs {
			if a, _, err := v.c.BGPVIPAddr(fv.VIP); err == nil {
				floating[a] = true
			}
		}
	}
	seen := map[netip.Addr]string{}
	for i, bv := range b.VIPs {
		p := fmt.Sprintf("bgp.vips[%d]", i)
		v.communities(p+".communities", bv.Communities)
		addr, _, err := v.c.BGPVIPAddr(bv.VIP)
		switch {
		case bv.VIP == "":
			v.errorf(p+".vip", "name a VIP of the vips list, or write an IP address")
			continue
		case err != nil:
			v.errorf(p+".vip", "%q is neither a VIP of the vips list nor an IP address", bv.VIP)
			continue
		case addr.Zone() != "" || !addr.IsGlobalUnicast() && !addr.IsPrivate():
			v.errorf(p+".vip", "%s cannot be announced: use a unicast address", addr)
			continue
		}
		if other, dup := seen[addr]; dup {
			v.errorf(p+".vip", "%s is already announced (as %q): one entry per address", addr, other)
		}
		seen[addr] = bv.VIP
		if floating[addr] {
			v.errorf(p+".vip", "%s also floats in cluster.vips: a VIP is either announced over BGP (active-active) or floating (one owner), not both", addr)
		}
	}
}

func (v *validator) validateBGPPeer(p string, peer *BGPPeer, localASN uint32, seen map[netip.Addr]bool) {
	a, err := netip.ParseAddr(peer.Address)
	if err != nil || a.IsUnspecified() {
		v.errorf(p+".address", "%q is not an IP address", peer.Address)
	} else {
		if seen[a.Unmap()] {
			v.errorf(p+".address", "peer %s is listed twice", a)
		}
		seen[a.Unmap()] = true
	}
	if peer.Port < 1 || peer.Port > 65535 {
		v.errorf(p+".port", "port %d is out of range (1-65535)", peer.Port)
	}
	if peer.ASN == 0 || peer.ASN == 23456 {
		v.errorf(p+".asn", "set the peer's AS number (1-4294967295, not 23456)")
	}
	switch {
	case peer.Password != "" && peer.PasswordFile != "":
		v.errorf(p+".password", "set password or password_file, not both")
	case peer.PasswordFile != "":
		if pw, err := peer.PeerPassword(); err != nil {
			v.errorf(p+".password_file", "cannot read: %v", err)
		} else if pw == "" || len(pw) > 80 {
			v.errorf(p+".password_file", "the TCP MD5 secret must be 1-80 characters")
		}
	case len(peer.Password) > 80:
		v.errorf(p+".password", "the TCP MD5 secret must be at most 80 characters")
	}
	hold, ka := peer.HoldTime.D(), peer.Keepalive.D()
	if hold != 0 && (hold < 3*time.Second || hold > 65535*time.Second || hold%time.Second != 0) {
		v.errorf(p+".hold_time", "hold_time %s: use 0 (no keepalives) or whole seconds from 3s to 65535s (RFC 4271)", hold)
	}
	if ka < 0 || hold != 0 && (ka == 0 || ka >= hold || ka%time.Second != 0) {
		v.errorf(p+".keepalive", "keepalive %s must be whole seconds, at least 1s and shorter than hold_time %s", ka, hold)
	}
	if peer.ConnectRetry.D() < time.Second || peer.ConnectRetry.D() > time.Hour {
		v.errorf(p+".connect_retry", "connect_retry %s is out of range (1s-1h)", peer.ConnectRetry.D())
	}
	if peer.MultihopTTL < 0 || peer.MultihopTTL > 255 {
		v.errorf(p+".multihop_ttl", "multihop_ttl %d is out of range (0-255)", peer.MultihopTTL)
	} else if peer.MultihopTTL > 0 && peer.ASN == localASN {
		v.errorf(p+".multihop_ttl", "multihop_ttl is for eBGP peers; an iBGP peer (same ASN) may be any number of hops away")
	}
	if f := peer.BFD; f != nil {
		for _, d := range []struct {
			key string
			val time.Duration
		}{{"min_tx", f.MinTx.D()}, {"min_rx", f.MinRx.D()}} {
			if d.val < 10*time.Millisecond || d.val > time.Minute {
				v.errorf(p+".bfd."+d.key, "%s %s is out of range (10ms-60s)", d.key, d.val)
			}
		}
		if f.Multiplier < 2 || f.Multiplier > 255 {
			v.errorf(p+".bfd.multiplier", "multiplier %d is out of range (2-255)", f.Multiplier)
		}
		if peer.MultihopTTL > 0 {
			v.errorf(p+".bfd", "BFD here is single-hop (RFC 5881): not with multihop_ttl")
		}
	}
}

func (v *validator) communities(path string, list []string) {
	for i, s := range list {
		if _, err := ParseCommunity(s); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}
