package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// validatePools checks l7.pools and returns their names.
func (v *validator) validatePools() map[string]bool {
	l7 := &v.c.L7
	pools := map[string]bool{}
	for i, pool := range l7.Pools {
		p := fmt.Sprintf("l7.pools[%d]", i)
		v.name(p+".name", "pool", pool.Name, pools)
		if !oneOf(pool.Algorithm, "round_robin", "random", "least_request", "consistent_hash", "sticky") {
			v.errorf(p+".algorithm", "algorithm %q: use round_robin, random, least_request, consistent_hash or sticky", pool.Algorithm)
		}
		seen := map[string]bool{}
		for j, e := range pool.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d]", p, j)
			v.hostPort(ep+".address", e.Address)
			if seen[e.Address] {
				v.errorf(ep+".address", "duplicate endpoint %s", e.Address)
			}
			seen[e.Address] = true
			if e.Weight < 1 || e.Weight > 65535 {
				v.errorf(ep+".weight", "weight %d is out of range (1-65535)", e.Weight)
			}
		}
		v.validateUpstream(p, pool)
		v.validateResilience(p, pool)
		v.validateAffinity(p, pool)
	}
	return pools
}

func (v *validator) validateUpstream(p string, pool Pool) {
	tlsOn := pool.TLS != nil && pool.TLS.Enabled
	switch pool.Protocol {
	case "http1":
	case "h2":
		if !tlsOn {
			v.errorf(p+".protocol", "h2 is HTTP/2 over TLS: enable tls, or use h2c for cleartext HTTP/2")
		}
	case "h2c":
		if tlsOn {
			v.errorf(p+".protocol", "h2c is cleartext HTTP/2: use h2 with tls")
		}
	default:
		v.errorf(p+".protocol", "protocol %q: use http1, h2 or h2c", pool.Protocol)
	}
	if t := pool.TLS; t != nil {
		tp := p + ".tls"
		if !t.Enabled && (t.ServerName != "" || t.CAFile != "" || t.InsecureSkipVerify) {
			v.errorf(tp+".enabled", "tls settings are given but enabled is false: add enabled: true or remove them")
		}
		if t.InsecureSkipVerify && t.CAFile != "" {
			v.errorf(tp+".insecure_skip_verify", "insecure_skip_verify ignores ca_file: set one of them")
		}
		if t.ServerName != "" && !validHostPattern(t.ServerName) || strings.HasPrefix(t.ServerName, "*.") {
			v.errorf(tp+".server_name", "%q is not a host name", t.ServerName)
		}
		if t.CAFile != "" {
			if pem, err := os.ReadFile(t.CAFile); err != nil {
				v.errorf(tp+".ca_file", "cannot read %s: %v", t.CAFile, err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				v.errorf(tp+".ca_file", "%s holds no PEM certificate", t.CAFile)
			}
		}
	}
	to := pool.Timeouts
	if to.Connect == 0 {
		v.errorf(p+".timeouts.connect", "connect timeout must be more than 0")
	}
	if to.Total != 0 && to.ResponseHeader > to.Total {
		v.errorf(p+".timeouts.response_header", "response_header %s is longer than total %s", to.ResponseHeader.D(), to.Total.D())
	}
	if pool.MaxIdlePerEndpoint < 0 {
		v.errorf(p+".max_idle_per_endpoint", "max_idle_per_endpoint %d is negative", pool.MaxIdlePerEndpoint)
	}
	if pool.MaxConcurrent < 0 {
		v.errorf(p+".max_concurrent", "max_concurrent %d is negative (0 is no limit)", pool.MaxConcurrent)
	}
}

// RetryConditions are the values retries.on accepts.
var RetryConditions = []string{"connect-failure", "refused-stream", "reset", "gateway-error", "5xx"}

func (v *validator) validateResilience(p string, pool Pool) {
	r := pool.Retries
	rp := p + ".retries"
	v.intRange(rp+".attempts", r.Attempts, 0, 10)
	v.intRange(rp+".budget_percent", r.BudgetPercent, 0, 100)
	v.intRange(rp+".min_retries", r.MinRetries, 0, 1<<20)
	seen := map[string]bool{}
	for j, on := range r.On {
		if !oneOf(on, RetryConditions...) {
			v.errorf(fmt.Sprintf("%s.on[%d]", rp, j), "%q: use %s", on, strings.Join(RetryConditions, ", "))
		}
		if seen[on] {
			v.errorf(fmt.Sprintf("%s.on[%d]", rp, j), "%q is listed twice", on)
		}
		seen[on] = true
	}
	o := pool.Outlier
	op := p + ".outlier"
	v.intRange(op+".consecutive_5xx", o.Consecutive5xx, 0, 1<<20)
	v.intRange(op+".consecutive_gateway_errors", o.ConsecutiveGatewayErrors, 0, 1<<20)
	v.intRange(op+".consecutive_connect_errors", o.ConsecutiveConnectErrors, 0, 1<<20)
	v.intRange(op+".max_ejection_percent", o.MaxEjectionPercent, 0, 100)
	if o.BaseEjectionTime == 0 {
		v.errorf(op+".base_ejection_time", "base_ejection_time must be more than 0")
	}
	if o.MaxEjectionTime < o.BaseEjectionTime {
		v.errorf(op+".max_ejection_time", "max_ejection_time %s is shorter than base_ejection_time %s", o.MaxEjectionTime.D(), o.BaseEjectionTime.D())
	}
}

func (v *validator) intRange(path string, p *int, lo, hi int) {
	if p != nil && (*p < lo || *p > hi) {
		v.errorf(path, "%d is out of range (%d-%d)", *p, lo, hi)
	}
}

func (v *validator) validateAffinity(p string, pool Pool) {
	if h := pool.Hash; h != nil {
		if pool.Algorithm != "consistent_hash" {
			v.errorf(p+".hash", "hash is the key of algorithm consistent_hash, not %s", pool.Algorithm)
		}
		switch kind, name, _ := strings.Cut(h.Key, ":"); {
		case h.Key == "client_ip":
		case kind == "header" && tokenRE.MatchString(name):
		case kind == "cookie" && tokenRE.MatchString(name):
		default:
			v.errorf(p+".hash.key", "key %q: use client_ip, header:NAME or cookie:NAME", h.Key)
		}
	}
	if s := pool.Sticky; s != nil {
		sp := p + ".sticky"
		if pool.Algorithm != "sticky" {
			v.errorf(sp, "sticky is the cookie of algorithm sticky, not %s", pool.Algorithm)
		}
		if !tokenRE.MatchString(s.Cookie) {
			v.errorf(sp+".cookie", "%q is not a cookie name", s.Cookie)
		}
		if !oneOf(s.Fallback, "round_robin", "random", "least_request") {
			v.errorf(sp+".fallback", "fallback %q: use round_robin, random or least_request", s.Fallback)
		}
		if s.TTL != 0 && s.TTL.D().Seconds() < 1 {
			v.errorf(sp+".ttl", "ttl %s is below a second (a cookie's Max-Age counts seconds)", s.TTL.D())
		}
	}
}
