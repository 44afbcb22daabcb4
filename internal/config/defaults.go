package config

import (
	"os"
	"time"
)

// The defaults, all in one place. The reference documentation quotes these.
const (
	DefaultAdminListen    = "127.0.0.1:9900"
	DefaultLogLevel       = "info"
	DefaultLogFormat      = "text"
	DefaultDrain          = 10 * time.Second
	DefaultXDPMode        = "auto"
	DefaultMaglevSize     = 65537
	DefaultConntrackSize  = 262144
	DefaultUDPTimeout     = 30 * time.Second
	DefaultVIPProtocol    = "tcp"
	DefaultForwarding     = "dsr-l2"
	DefaultBackendWeight  = 100
	DefaultGossipPort     = 7946
	DefaultClusterProfile = "lan"
	DefaultCheckInterval  = 2 * time.Second
	DefaultCheckTimeout   = time.Second
	DefaultCheckRise      = 2
	DefaultCheckFall      = 3
	DefaultCheckPath      = "/"
)

// applyDefaults fills every field the file left out. It runs before
// validation so that validation sees exactly what the daemon will run.
func (c *Config) applyDefaults() {
	if c.Node.Name == "" {
		c.Node.Name, _ = os.Hostname()
	}
	def(&c.Log.Level, DefaultLogLevel)
	def(&c.Log.Format, DefaultLogFormat)
	def(&c.Admin.Listen, DefaultAdminListen)
	def(&c.Shutdown.Drain, Duration(DefaultDrain))
	def(&c.L4.XDPMode, DefaultXDPMode)
	def(&c.L4.MaglevSize, DefaultMaglevSize)
	def(&c.L4.ConntrackSize, DefaultConntrackSize)
	def(&c.L4.UDPTimeout, Duration(DefaultUDPTimeout))
	for i := range c.VIPs {
		v := &c.VIPs[i]
		def(&v.Protocol, DefaultVIPProtocol)
		for j := range v.Backends {
			b := &v.Backends[j]
			def(&b.Forwarding, DefaultForwarding)
			if b.Weight == nil {
				w := DefaultBackendWeight
				b.Weight = &w
			}
		}
	}
	c.applyListenerDefaults()
	c.applyRouteDefaults()
	c.applyPoolDefaults()
	if c.Cluster != nil {
		def(&c.Cluster.Profile, DefaultClusterProfile)
	}
	for i := range c.HealthChecks {
		h := &c.HealthChecks[i]
		def(&h.Interval, Duration(DefaultCheckInterval))
		def(&h.Timeout, Duration(DefaultCheckTimeout))
		def(&h.Rise, DefaultCheckRise)
		def(&h.Fall, DefaultCheckFall)
		def(&h.Path, DefaultCheckPath)
	}
}

func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
