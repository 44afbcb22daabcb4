package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// GossipKey returns the decoded gossip key from key_file or key. The file is
// read on every call, so a reload picks up a rotated file (the cluster
// package still needs a restart to use it).
func (cl *Cluster) GossipKey() ([]byte, error) {
	text := cl.Key
	if cl.KeyFile != "" {
		b, err := os.ReadFile(cl.KeyFile)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, fmt.Errorf("the key is empty")
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("the key is not base64: %v", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("the key decodes to %d bytes; AES needs 16, 24 or 32", len(key))
}

func (v *validator) validateCluster() {
	cl := v.c.Cluster
	if cl == nil {
		return
	}
	v.gossipAddr("cluster.bind", cl.Bind)
	if cl.Advertise != "" {
		v.gossipAddr("cluster.advertise", cl.Advertise)
	}
	for i, peer := range cl.Peers {
		v.hostPort(fmt.Sprintf("cluster.peers[%d]", i), peer)
	}
	switch {
	case cl.KeyFile == "" && cl.Key == "":
		v.errorf("cluster.key_file", "gossip is always encrypted: set key_file (a file holding a base64 key of 16, 24 or 32 bytes)")
	case cl.KeyFile != "" && cl.Key != "":
		v.errorf("cluster.key", "set key_file or key, not both")
	default:
		path := "cluster.key"
		if cl.KeyFile != "" {
			path = "cluster.key_file"
		}
		if _, err := cl.GossipKey(); err != nil {
			v.errorf(path, "gossip key: %v", err)
		}
	}
	if !oneOf(cl.Profile, "lan", "fast") {
		v.errorf("cluster.profile", "profile %q: use lan or fast", cl.Profile)
	}
	for _, d := range []struct {
		path string
		val  Duration
	}{
		{"cluster.probe_interval", cl.ProbeInterval},
		{"cluster.probe_timeout", cl.ProbeTimeout},
		{"cluster.gossip_interval", cl.GossipInterval},
		{"cluster.rejoin_interval", cl.RejoinInterval},
	} {
		if d.val < 0 {
			v.errorf(d.path, "%s is negative", d.val.D())
		} else if d.val != 0 && d.val.D() < 10*time.Millisecond {
			v.errorf(d.path, "%s is too short (at least 10ms)", d.val.D())
		}
	}
	if cl.ProbeInterval > 0 && cl.ProbeTimeout > 0 && cl.ProbeTimeout >= cl.ProbeInterval {
		v.errorf("cluster.probe_timeout", "probe_timeout %s must be shorter than probe_interval %s", cl.ProbeTimeout.D(), cl.ProbeInterval.D())
	}
	if cl.SuspicionMult < 0 || cl.SuspicionMult > 100 {
		v.errorf("cluster.suspicion_mult", "suspicion_mult %d is out of range (1-100)", cl.SuspicionMult)
	}
	if len(cl.VIPs) > 0 && cl.Interface == "" {
		v.errorf("cluster.interface", "floating VIPs need an interface: set cluster.interface or node.interface")
	}
	vipAddr := map[string]string{}
	for _, vip := range v.c.VIPs {
		vipAddr[vip.Name] = vip.Address
	}
	seen := map[netip.Addr]string{}
	for i, fv := range cl.VIPs {
		p := fmt.Sprintf("cluster.vips[%d].vip", i)
		text := fv.VIP
		if a, ok := vipAddr[fv.VIP]; ok {
			text = a
		}
		addr, err := netip.ParseAddr(text)
		switch {
		case fv.VIP == "":
			v.errorf(p, "name a VIP of the vips list, or write an IP address")
			continue
		case err != nil:
			v.errorf(p, "%q is neither a VIP of the vips list nor an IP address", fv.VIP)
			continue
		case addr.Zone() != "" || !addr.Unmap().IsGlobalUnicast() && !addr.Unmap().IsPrivate():
			v.errorf(p, "%s cannot float: use a unicast address", addr)
			continue
		}
		addr = addr.Unmap()
		if other, dup := seen[addr]; dup {
			v.errorf(p, "%s is already listed (as %q)", addr, other)
		}
		seen[addr] = fv.VIP
	}
	if w := cl.Witness; w != nil {
		v.validateWitness(w)
	}
	g := cl.GARP
	if g.Count < 1 || g.Count > 100 {
		v.errorf("cluster.garp.count", "count %d is out of range (1-100)", g.Count)
	}
	if g.Interval <= 0 || g.Interval.D() > 10*time.Second {
		v.errorf("cluster.garp.interval", "interval %s is out of range (more than 0, at most 10s)", g.Interval.D())
	}
	if g.Refresh != nil && (*g.Refresh < 0 || *g.Refresh > 0 && g.Refresh.D() < time.Second) {
		v.errorf("cluster.garp.refresh", "refresh %s: use 0 (off) or at least 1s", g.Refresh.D())
	}
}

// gossipAddr checks an address memberlist binds to or advertises: it must
// be an IP literal, since memberlist does not resolve names there.
func (v *validator) gossipAddr(path, s string) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "%q is not ip:port", s)
		return
	}
	if a, err := netip.ParseAddr(host); err != nil || a.Zone() != "" {
		v.errorf(path, "%q: the host must be an IP address", s)
		return
	}
	v.hostPort(path, s)
}

func (v *validator) validateWitness(w *Witness) {
	switch w.Kind {
	case "tcp":
		v.hostPort("cluster.witness.address", w.Address)
	case "icmp", "arp":
		a, err := netip.ParseAddr(w.Address)
		if err != nil || a.Zone() != "" {
			v.errorf("cluster.witness.address", "%q is not an IP address (a %s witness takes an address without a port)", w.Address, w.Kind)
		} else if w.Kind == "arp" && !a.Unmap().Is4() {
			v.errorf("cluster.witness.address", "arp works for IPv4 only; use kind: icmp for %s", a)
		}
	default:
		v.errorf("cluster.witness.kind", "kind %q: use tcp, icmp or arp", w.Kind)
	}
	if w.Interval <= 0 {
		v.errorf("cluster.witness.interval", "interval must be positive")
	}
	if w.Timeout <= 0 || w.Timeout > w.Interval {
		v.errorf("cluster.witness.timeout", "timeout %s must be positive and at most interval %s", w.Timeout.D(), w.Interval.D())
	}
	if w.Fails < 1 || w.Fails > 100 {
		v.errorf("cluster.witness.fails", "fails %d is out of range (1-100)", w.Fails)
	}
}
