package config

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// validateSecurity checks the routes' jwt, api_keys, cors and rate_limit.
func (v *validator) validateSecurity() {
	for i, r := range v.c.L7.Routes {
		p := fmt.Sprintf("l7.routes[%d]", i)
		v.validateJWT(p+".jwt", r.JWT)
		v.validateAPIKeys(p+".api_keys", r.APIKeys)
		v.validateCORS(p+".cors", r.CORS)
		v.validateRateLimit(p+".rate_limit", r)
	}
}

func (v *validator) validateJWT(p string, j *JWT) {
	if j == nil {
		return
	}
	// Without iss and aud a token any service of the same identity
	// provider was given would be accepted here (token substitution).
	if j.Issuer == "" {
		v.errorf(p+".issuer", "jwt needs the issuer its tokens must carry")
	}
	if len(j.Audiences) == 0 {
		v.errorf(p+".audiences", "jwt needs at least one audience its tokens must carry")
	}
	for k, a := range j.Algorithms {
		if !slices.Contains(JWTAlgorithms, a) {
			v.errorf(fmt.Sprintf("%s.algorithms[%d]", p, k), "algorithm %q: use one of %s (none is never accepted)", a, strings.Join(JWTAlgorithms, ", "))
		}
	}
	if len(j.Keys) == 0 && j.JWKSFile == "" && j.JWKS == nil {
		v.errorf(p, "jwt needs keys, jwks_file or jwks")
	}
	for k, key := range j.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", p, k)
		n := 0
		for _, s := range []string{key.JWK, key.PEM, key.PEMFile, key.Secret, key.SecretFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			v.errorf(kp, "set exactly one of jwk, pem, pem_file, secret and secret_file")
			continue
		}
		if key.Algorithm != "" && !slices.Contains(JWTAlgorithms, key.Algorithm) {
			v.errorf(kp+".algorithm", "algorithm %q: use one of %s", key.Algorithm, strings.Join(JWTAlgorithms, ", "))
			continue
		}
		vk, err := ParseJWTKey(key)
		if err != nil {
			v.errorf(kp, "%v", err)
			continue
		}
		if len(j.Algorithms) > 0 && !slices.Contains(j.Algorithms, vk.Algs[0]) {
			v.errorf(kp+".algorithm", "the key's algorithm %s is not in algorithms", vk.Algs[0])
		}
	}
	if j.JWKSFile != "" {
		b, err := os.ReadFile(j.JWKSFile)
		if err != nil {
			v.errorf(p+".jwks_file", "%v", err)
		} else if keys, _, err := ParseJWKS(b, true, JWKSFallbackAlgorithms(j.Algorithms)); err != nil {
			v.errorf(p+".jwks_file", "%s: %v", j.JWKSFile, err)
		} else if len(keys) == 0 {
			v.errorf(p+".jwks_file", "%s has no usable signing key", j.JWKSFile)
		}
	}
	if s := j.JWKS; s != nil {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(p+".jwks.url", "url %q: give an http or https URL", s.URL)
		}
		if s.MinRefreshInterval > s.RefreshInterval {
			v.errorf(p+".jwks.min_refresh_interval", "min_refresh_interval %v is longer than refresh_interval %v", s.MinRefreshInterval.D(), s.RefreshInterval.D())
		}
		if s.Timeout <= 0 {
			v.errorf(p+".jwks.timeout", "timeout must be positive")
		}
	}
	for k, c := range j.RequiredClaims {
		if c == "" {
			v.errorf(fmt.Sprintf("%s.required_claims[%d]", p, k), "a claim name is empty")
		}
	}
	for k, m := range j.Claims {
		mp := fmt.Sprintf("%s.claims[%d]", p, k)
		if m.Name == "" {
			v.errorf(mp+".name", "a claim condition needs a name")
		}
		if (m.Equals == "") == (m.Contains == "") {
			v.errorf(mp, "set one of equals and contains")
		}
	}
	seen := map[string]bool{}
	for k, f := range j.ForwardClaims {
		fp := fmt.Sprintf("%s.forward_claims[%d]", p, k)
		if f.Claim == "" {
			v.errorf(fp+".claim", "forward_claims needs a claim")
		}
		h := http.CanonicalHeaderKey(f.Header)
		switch {
		case !tokenRE.MatchString(f.Header):
			v.errorf(fp+".header", "%q is not a header name", f.Header)
		case hopByHop[h] || h == "Host" || h == "Authorization":
			v.errorf(fp+".header", "%s cannot carry a claim", f.Header)
		case seen[h]:
			v.errorf(fp+".header", "header %s is set twice", f.Header)
		}
		seen[h] = true
	}
}

func (v *validator) validateAPIKeys(p string, a *APIKeys) {
	if a == nil {
		return
	}
	if !tokenRE.MatchString(a.Header) {
		v.errorf(p+".header", "%q is not a header name", a.Header)
	}
	if len(a.Keys) == 0 {
		v.errorf(p+".keys", "api_keys needs at least one key")
	}
	hashes := map[string]bool{}
	for k, key := range a.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", p, k)
		if !nameRE.MatchString(key.Consumer) {
			v.errorf(kp+".consumer", "consumer %q: use letters, digits, '.', '_' and '-' (at most 63)", key.Consumer)
		}
		h := strings.ToLower(key.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			v.errorf(kp+".sha256", "sha256 must be 64 hex digits (printf %%s KEY | sha256sum), not the key itself")
		} else if hashes[h] {
			v.errorf(kp+".sha256", "the same key is listed twice")
		}
		hashes[h] = true
	}
}

func (v *validator) validateCORS(p string, c *CORS) {
	if c == nil {
		return
	}
	if len(c.AllowedOrigins) == 0 {
		v.errorf(p+".allowed_origins", "cors needs allowed_origins")
	}
	for k, o := range c.AllowedOrigins {
		op := fmt.Sprintf("%s.allowed_origins[%d]", p, k)
		if o == "*" {
			if c.AllowCredentials {
				// Fetch standard §3.2.5: a credentialed answer must name
				// the origin; reflecting any origin with credentials would
				// hand every site the user's session.
				v.errorf(op, `"*" cannot be combined with allow_credentials: list the origins`)
			}
			continue
		}
		if err := CheckOriginPattern(o); err != nil {
			v.errorf(op, "%v", err)
		}
	}
	for k, m := range c.AllowedMethods {
		if !methodRE.MatchString(m) {
			v.errorf(fmt.Sprintf("%s.allowed_methods[%d]", p, k), "%q is not an upper-case HTTP method", m)
		}
	}
	for k, h := range c.AllowedHeaders {
		if h == "*" && c.AllowCredentials {
			v.errorf(fmt.Sprintf("%s.allowed_headers[%d]", p, k), `"*" cannot be combined with allow_credentials: list the headers`)
		} else if h != "*" && !tokenRE.MatchString(h) {
			v.errorf(fmt.Sprintf("%s.allowed_headers[%d]", p, k), "%q is not a header name", h)
		}
	}
	for k, h := range c.ExposeHeaders {
		if !tokenRE.MatchString(h) {
			v.errorf(fmt.Sprintf("%s.expose_headers[%d]", p, k), "%q is not a header name", h)
		}
	}
}

// CheckOriginPattern checks an allowed origin: scheme://host[:port], where
// the host's first label may be * (one or more labels).
func CheckOriginPattern(o string) error {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return fmt.Errorf("origin %q: write scheme://host[:port], e.g. https://app.example.com", o)
	}
	if strings.ContainsAny(rest, "/?#@") || rest == "" || strings.ToLower(o) != o {
		return fmt.Errorf("origin %q: an origin has no path, no user and is lower case", o)
	}
	host := rest
	if strings.Contains(host, "*") {
		after, ok := strings.CutPrefix(host, "*.")
		if !ok || strings.Contains(after, "*") || !strings.Contains(after, ".") {
			return fmt.Errorf("origin %q: a wildcard stands for the first labels only, as in https://*.example.com", o)
		}
	}
	return nil
}

func (v *validator) validateRateLimit(p string, r Route) {
	l := r.RateLimit
	if l == nil {
		return
	}
	if l.Requests < 1 {
		v.errorf(p+".requests", "requests must be at least 1")
	}
	if l.Per <= 0 {
		v.errorf(p+".per", "per must be positive")
	}
	if l.Burst < 1 {
		v.errorf(p+".burst", "burst must be at least 1")
	}
	if l.MaxKeys < 1 {
		v.errorf(p+".max_keys", "max_keys must be at least 1")
	}
	name, isHeader := strings.CutPrefix(l.Key, "header:")
	claim, isClaim := strings.CutPrefix(l.Key, "claim:")
	switch {
	case l.Key == "client_ip" || l.Key == "route":
	case isHeader:
		if !tokenRE.MatchString(name) {
			v.errorf(p+".key", "%q is not a header name", name)
		}
	case l.Key == "consumer":
		if r.APIKeys == nil && r.JWT == nil {
			v.errorf(p+".key", "key consumer needs api_keys or jwt on the route")
		}
	case isClaim:
		if claim == "" {
			v.errorf(p+".key", "claim: needs a claim name")
		}
		if r.JWT == nil {
			v.errorf(p+".key", "key %s needs jwt on the route", l.Key)
		}
	default:
		v.errorf(p+".key", "key %q: use client_ip, header:NAME, consumer, claim:NAME or route", l.Key)
	}
	switch l.Scope {
	case RateLimitScopeLocal:
	case RateLimitScopeCluster:
		if v.c.Cluster == nil {
			v.errorf(p+".scope", "scope cluster shares the counts with the cluster's other nodes: it needs a cluster section")
		}
	default:
		v.errorf(p+".scope", "scope %q: use local or cluster", l.Scope)
	}
}
