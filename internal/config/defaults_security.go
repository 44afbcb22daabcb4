package config

import "time"

// Route security defaults (jwt, api_keys, cors, rate_limit).
const (
	DefaultJWTLeeway              = 30 * time.Second
	DefaultJWKSRefreshInterval    = 5 * time.Minute
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	DefaultJWKSTimeout            = 5 * time.Second
	DefaultJWKSMaxStale           = 24 * time.Hour
	DefaultAPIKeyHeader           = "X-API-Key"
	DefaultRateLimitPer           = time.Second
	DefaultRateLimitKey           = "client_ip"
	DefaultRateLimitMaxKeys       = 100000
	DefaultRateLimitScope         = RateLimitScopeLocal
)

// DefaultCORSMethods are the methods a CORS route allows when it lists none.
var DefaultCORSMethods = []string{"GET", "HEAD", "POST"}

func (r *Route) setSecurityDefaults() {
	if j := r.JWT; j != nil {
		def(&j.Leeway, Duration(DefaultJWTLeeway))
		if s := j.JWKS; s != nil {
			def(&s.RefreshInterval, Duration(DefaultJWKSRefreshInterval))
			def(&s.MinRefreshInterval, Duration(DefaultJWKSMinRefreshInterval))
			def(&s.Timeout, Duration(DefaultJWKSTimeout))
			def(&s.MaxStale, Duration(DefaultJWKSMaxStale))
		}
	}
	if a := r.APIKeys; a != nil {
		def(&a.Header, DefaultAPIKeyHeader)
	}
	if c := r.CORS; c != nil && len(c.AllowedMethods) == 0 {
		c.AllowedMethods = append([]string(nil), DefaultCORSMethods...)
	}
	if l := r.RateLimit; l != nil {
		def(&l.Per, Duration(DefaultRateLimitPer))
		def(&l.Burst, l.Requests)
		def(&l.Key, DefaultRateLimitKey)
		def(&l.MaxKeys, DefaultRateLimitMaxKeys)
		def(&l.Scope, DefaultRateLimitScope)
	}
}

// resolveSecurityPaths makes the key files of jwt relative to the config
// file's folder (see resolvePaths).
func (c *Config) resolveSecurityPaths(abs func(*string)) {
	for i := range c.L7.Routes {
		j := c.L7.Routes[i].JWT
		if j == nil {
			continue
		}
		abs(&j.JWKSFile)
		for k := range j.Keys {
			abs(&j.Keys[k].PEMFile)
			abs(&j.Keys[k].SecretFile)
		}
	}
}
