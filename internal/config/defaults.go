package config

import (
	"os"
	"time"
)

// The node-wide defaults. Each part of the schema (listener, route, pool,
// cluster, health) keeps its defaults in its own defaults_*.go beside its
// types; the reference documentation quotes them.
const (
	DefaultAdminListen   = "127.0.0.1:9900"
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	DefaultDrain         = 10 * time.Second
	DefaultXDPMode       = "auto"
	DefaultMaglevSize    = 65537
	DefaultConntrackSize = 262144
	DefaultUDPTimeout    = 30 * time.Second
	DefaultSYNFloodRate  = 125000
	DefaultVIPProtocol   = "tcp"
	DefaultForwarding    = "dsr-l2"
	DefaultBackendWeight = 100
	DefaultEncapMTU      = 1500
	DefaultGUEPort       = 6080
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
	def(&c.L4.SYNFloodRate, DefaultSYNFloodRate)
	def(&c.L4.EncapMTU, DefaultEncapMTU)
	def(&c.L4.GUEPort, DefaultGUEPort)
	if c.L4.EncapICMPTooBig == nil {
		on := true
		c.L4.EncapICMPTooBig = &on
	}
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
	c.applyProxyDefaults()
	c.applyClusterDefaults()
	c.applyBGPDefaults()
	c.applyHealthDefaults()
}

func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
