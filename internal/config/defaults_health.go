package config

import (
	"path/filepath"
	"strings"
	"time"
)

// Health check and discovery defaults.
const (
	DefaultCheckInterval     = 2 * time.Second
	DefaultCheckTimeout      = time.Second
	DefaultCheckRise         = 2
	DefaultCheckFall         = 3
	DefaultCheckPath         = "/"
	DefaultCheckMethod       = "GET"
	DefaultCheckJitter       = 10
	DefaultCheckExpectStatus = "200-399"

	DefaultDNSMinRefresh      = time.Second
	DefaultDNSMaxRefresh      = 5 * time.Minute
	DefaultConsulWait         = 5 * time.Minute
	DefaultDiscoveryWeight    = 1
	DefaultDiscoveryThrottle  = time.Second
	DefaultDiscoveryRetry     = 2 * time.Second
	DefaultDNSRecordTypeSRV   = "srv"
	DefaultDNSRecordTypeAddrs = "a+aaaa"
)

func (c *Config) applyHealthDefaults() {
	dir := ""
	if c.Path != "" {
		dir = filepath.Dir(c.Path)
	}
	abs := func(p *string) {
		if *p != "" && dir != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.HealthChecks {
		h := &c.HealthChecks[i]
		def(&h.Interval, Duration(DefaultCheckInterval))
		def(&h.Timeout, Duration(DefaultCheckTimeout))
		def(&h.Rise, DefaultCheckRise)
		def(&h.Fall, DefaultCheckFall)
		def(&h.Path, DefaultCheckPath)
		def(&h.Method, DefaultCheckMethod)
		def(&h.ExpectStatus, DefaultCheckExpectStatus)
		if h.Jitter == nil {
			j := DefaultCheckJitter
			h.Jitter = &j
		}
		if h.DSRPath == nil {
			on := h.VIP != ""
			h.DSRPath = &on
		}
		if h.TLS != nil {
			abs(&h.TLS.CAFile)
		}
	}
	for i := range c.Discovery {
		d := &c.Discovery[i]
		if d.Provider == "dns" {
			if d.RecordType == "" {
				if strings.HasPrefix(d.DNS, "_") {
					d.RecordType = DefaultDNSRecordTypeSRV
				} else {
					d.RecordType = DefaultDNSRecordTypeAddrs
				}
			}
			def(&d.MinRefresh, Duration(DefaultDNSMinRefresh))
			def(&d.MaxRefresh, Duration(DefaultDNSMaxRefresh))
		}
		if d.Provider == "consul" {
			def(&d.Wait, Duration(DefaultConsulWait))
		}
		def(&d.Weight, DefaultDiscoveryWeight)
		def(&d.Throttle, Duration(DefaultDiscoveryThrottle))
		def(&d.RetryInterval, Duration(DefaultDiscoveryRetry))
		abs(&d.TokenFile)
	}
}
