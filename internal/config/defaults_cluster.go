package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Cluster defaults. The profile's timings (probe_interval and the others)
// are not filled in here: they belong to the profile, which the cluster
// package owns, and an explicit value is an override of it.
const (
	DefaultGossipPort      = 7946
	DefaultClusterBind     = "0.0.0.0:7946"
	DefaultClusterProfile  = "lan"
	DefaultWitnessInterval = time.Second
	DefaultWitnessTimeout  = 500 * time.Millisecond
	DefaultWitnessFails    = 3
	DefaultGARPCount       = 3
	DefaultGARPInterval    = 100 * time.Millisecond
	DefaultGARPRefresh     = 10 * time.Second
)

func (c *Config) applyClusterDefaults() {
	cl := c.Cluster
	if cl == nil {
		return
	}
	def(&cl.Profile, DefaultClusterProfile)
	def(&cl.Bind, DefaultClusterBind)
	cl.Bind = withGossipPort(cl.Bind)
	if cl.Advertise != "" {
		cl.Advertise = withGossipPort(cl.Advertise)
	}
	for i := range cl.Peers {
		cl.Peers[i] = withGossipPort(cl.Peers[i])
	}
	def(&cl.Interface, c.Node.Interface)
	if w := cl.Witness; w != nil {
		def(&w.Interval, Duration(DefaultWitnessInterval))
		def(&w.Timeout, Duration(DefaultWitnessTimeout))
		def(&w.Fails, DefaultWitnessFails)
	}
	def(&cl.GARP.Count, DefaultGARPCount)
	def(&cl.GARP.Interval, Duration(DefaultGARPInterval))
	if cl.GARP.Refresh == nil {
		r := Duration(DefaultGARPRefresh)
		cl.GARP.Refresh = &r
	}
}

// withGossipPort adds the default port to a bare IP address ("10.0.0.2",
// "fe80::1"), which the docs promise; anything else is left for validation.
func withGossipPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(a.String(), strconv.Itoa(DefaultGossipPort))
	}
	return s
}
