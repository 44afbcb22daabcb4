package config

import (
	"path/filepath"
	"time"
)

// Pool defaults.
const (
	DefaultPoolAlgorithm            = "round_robin"
	DefaultEndpointWeight           = 1
	DefaultPoolProtocol             = "http1"
	DefaultConnectTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout    = 60 * time.Second
	DefaultUpstreamIdleTimeout      = 90 * time.Second
	DefaultMaxIdlePerEndpoint       = 128
	DefaultRetryAttempts            = 2
	DefaultRetryBudgetPercent       = 20
	DefaultMinRetries               = 3
	DefaultConsecutive5xx           = 5
	DefaultConsecutiveGatewayErrors = 5
	DefaultConsecutiveConnectErrors = 3
	DefaultBaseEjectionTime         = 30 * time.Second
	DefaultMaxEjectionTime          = 300 * time.Second
	DefaultMaxEjectionPercent       = 50
	DefaultHashKey                  = "client_ip"
	DefaultStickyCookiePrefix       = "portcullis_"
	DefaultStickyFallback           = "round_robin"
	DefaultStickyHTTPOnly           = true
)

// DefaultRetryOn are the retried failures when retries.on is not given: those
// where the upstream is known not to have processed the request.
var DefaultRetryOn = []string{"connect-failure", "refused-stream"}

func (c *Config) applyPoolDefaults() {
	dir := filepath.Dir(c.Path)
	for i := range c.L7.Pools {
		p := &c.L7.Pools[i]
		p.SetDefaults()
		// Relative CA files are taken from the config file's folder, like
		// every other file reference (resolvePaths runs after defaults and
		// does not know this key).
		if t := p.TLS; t != nil && t.CAFile != "" && !filepath.IsAbs(t.CAFile) && c.Path != "" {
			t.CAFile = filepath.Join(dir, t.CAFile)
		}
	}
}

// SetDefaults fills what the pool leaves out. Loading a file calls it; code
// that builds a Pool by hand (tests, discovery) can call it too, so that a
// hand-made pool means the same as the same keys in a file.
func (p *Pool) SetDefaults() {
	def(&p.Algorithm, DefaultPoolAlgorithm)
	for j := range p.Endpoints {
		def(&p.Endpoints[j].Weight, DefaultEndpointWeight)
	}
	def(&p.Protocol, DefaultPoolProtocol)
	t := &p.Timeouts
	def(&t.Connect, Duration(DefaultConnectTimeout))
	def(&t.ResponseHeader, Duration(DefaultResponseHeaderTimeout))
	def(&t.Idle, Duration(DefaultUpstreamIdleTimeout))
	def(&p.MaxIdlePerEndpoint, DefaultMaxIdlePerEndpoint)
	r := &p.Retries
	defInt(&r.Attempts, DefaultRetryAttempts)
	if r.On == nil {
		r.On = append([]string(nil), DefaultRetryOn...)
	}
	defInt(&r.BudgetPercent, DefaultRetryBudgetPercent)
	defInt(&r.MinRetries, DefaultMinRetries)
	o := &p.Outlier
	defInt(&o.Consecutive5xx, DefaultConsecutive5xx)
	defInt(&o.ConsecutiveGatewayErrors, DefaultConsecutiveGatewayErrors)
	defInt(&o.ConsecutiveConnectErrors, DefaultConsecutiveConnectErrors)
	def(&o.BaseEjectionTime, Duration(DefaultBaseEjectionTime))
	def(&o.MaxEjectionTime, Duration(DefaultMaxEjectionTime))
	defInt(&o.MaxEjectionPercent, DefaultMaxEjectionPercent)
	if p.Algorithm == "consistent_hash" && p.Hash == nil {
		p.Hash = &Hash{}
	}
	if p.Hash != nil {
		def(&p.Hash.Key, DefaultHashKey)
	}
	if p.Algorithm == "sticky" && p.Sticky == nil {
		p.Sticky = &Sticky{}
	}
	if s := p.Sticky; s != nil {
		def(&s.Cookie, DefaultStickyCookiePrefix+p.Name)
		def(&s.Fallback, DefaultStickyFallback)
		if s.HTTPOnly == nil {
			v := DefaultStickyHTTPOnly
			s.HTTPOnly = &v
		}
	}
}

// defInt fills an optional integer whose 0 means something (off, none), so
// only a missing key takes the default.
func defInt(p **int, v int) {
	if *p == nil {
		*p = &v
	}
}
