package cluster

import (
	"fmt"
	"net/netip"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// OptionsFromConfig builds a node's Options from a validated config with a
// cluster section. The daemon adds what the file does not hold: Health,
// OnAgreedChange, Logger (and Netlink/InNamespace only in tests).
func OptionsFromConfig(c *config.Config) (Options, error) {
	cl := c.Cluster
	if cl == nil {
		return Options{}, fmt.Errorf("cluster: the config has no cluster section")
	}
	key, err := cl.GossipKey()
	if err != nil {
		return Options{}, fmt.Errorf("cluster: gossip key: %w", err)
	}
	prof, err := ProfileByName(cl.Profile)
	if err != nil {
		return Options{}, err
	}
	// Explicit settings override the profile field by field.
	if cl.ProbeInterval > 0 {
		prof.ProbeInterval = cl.ProbeInterval.D()
	}
	if cl.ProbeTimeout > 0 {
		prof.ProbeTimeout = cl.ProbeTimeout.D()
	}
	if cl.SuspicionMult > 0 {
		prof.SuspicionMult = cl.SuspicionMult
	}
	if cl.GossipInterval > 0 {
		prof.GossipInterval = cl.GossipInterval.D()
	}
	if cl.RejoinInterval > 0 {
		prof.RejoinInterval = cl.RejoinInterval.D()
	}
	o := Options{
		Name:         c.Node.Name,
		Priority:     c.Node.Priority,
		Bind:         cl.Bind,
		Advertise:    cl.Advertise,
		Peers:        append([]string(nil), cl.Peers...),
		Key:          key,
		Profile:      prof,
		Interface:    cl.Interface,
		ConfigDigest: c.Digest,
		GARP:         GARPConfig{Count: cl.GARP.Count, Interval: cl.GARP.Interval.D()},
	}
	if cl.GARP.Refresh != nil {
		o.GARP.Refresh = cl.GARP.Refresh.D()
	}
	byName := map[string]string{}
	for _, v := range c.VIPs {
		byName[v.Name] = v.Address
	}
	for _, fv := range cl.VIPs {
		// A VIP named after a config VIP floats that VIP's address and
		// keeps its name; an address written directly is named by itself.
		text, name := fv.VIP, fv.VIP
		if a, ok := byName[fv.VIP]; ok {
			text = a
		}
		addr, err := netip.ParseAddr(text)
		if err != nil {
			return Options{}, fmt.Errorf("cluster: vip %q: %w", fv.VIP, err)
		}
		o.VIPs = append(o.VIPs, VIP{Name: name, Addr: addr.Unmap(), Preempt: fv.Preempt})
	}
	if w := cl.Witness; w != nil {
		o.Witness = &Witness{Kind: WitnessKind(w.Kind), Address: w.Address, Interval: w.Interval.D(), Timeout: w.Timeout.D(), Fails: w.Fails}
	}
	return o, nil
}
