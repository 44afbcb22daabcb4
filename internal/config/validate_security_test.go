package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodHash = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" // sha256("foo")

func TestSecurityErrorsNameTheirKeyPath(t *testing.T) {
	tests := []struct {
		name, route, wantPath, wantMsg string
	}{
		{"jwt needs an issuer", "    - {name: x, pool: p, jwt: {audiences: [a], keys: [{secret: 0123456789abcdef0123456789abcdef, algorithm: HS256}]}}\n", "l7.routes[1].jwt.issuer", "issuer"},
		{"jwt needs an audience", "    - {name: x, pool: p, jwt: {issuer: i, keys: [{secret: 0123456789abcdef0123456789abcdef, algorithm: HS256}]}}\n", "l7.routes[1].jwt.audiences", "audience"},
		{"jwt needs keys", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a]}}\n", "l7.routes[1].jwt", "keys, jwks_file or jwks"},
		{"alg none is not an algorithm", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], algorithms: [none], jwks: {url: 'https://idp/jwks'}}}\n", "l7.routes[1].jwt.algorithms[0]", "none is never accepted"},
		{"a key takes one source", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], keys: [{secret: s, pem: p}]}}\n", "l7.routes[1].jwt.keys[0]", "exactly one"},
		{"a short secret is refused", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], keys: [{secret: short, algorithm: HS256}]}}\n", "l7.routes[1].jwt.keys[0]", "at least 32 bytes"},
		{"a secret needs its algorithm", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], keys: [{secret: 0123456789abcdef0123456789abcdef}]}}\n", "l7.routes[1].jwt.keys[0]", "set algorithm"},
		{"a key outside algorithms is refused", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], algorithms: [RS256], keys: [{secret: 0123456789abcdef0123456789abcdef, algorithm: HS256}]}}\n", "l7.routes[1].jwt.keys[0].algorithm", "not in algorithms"},
		{"a jwks url must be http(s)", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], jwks: {url: 'file:///etc/jwks'}}}\n", "l7.routes[1].jwt.jwks.url", "http or https"},
		{"min_refresh_interval cannot exceed refresh_interval", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], jwks: {url: 'https://idp/j', refresh_interval: 10s, min_refresh_interval: 1m}}}\n", "l7.routes[1].jwt.jwks.min_refresh_interval", "longer"},
		{"a claim condition takes one kind", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], jwks: {url: 'https://idp/j'}, claims: [{name: s, equals: a, contains: b}]}}\n", "l7.routes[1].jwt.claims[0]", "one of equals and contains"},
		{"a claim cannot be forwarded in Authorization", "    - {name: x, pool: p, jwt: {issuer: i, audiences: [a], jwks: {url: 'https://idp/j'}, forward_claims: [{claim: sub, header: authorization}]}}\n", "l7.routes[1].jwt.forward_claims[0].header", "cannot carry"},
		{"an api key is a hash", "    - {name: x, pool: p, api_keys: {keys: [{consumer: c, sha256: my-secret-key}]}}\n", "l7.routes[1].api_keys.keys[0].sha256", "64 hex digits"},
		{"an api key appears once", "    - {name: x, pool: p, api_keys: {keys: [{consumer: c, sha256: " + goodHash + "}, {consumer: d, sha256: " + strings.ToUpper(goodHash) + "}]}}\n", "l7.routes[1].api_keys.keys[1].sha256", "twice"},
		{"a consumer is a name", "    - {name: x, pool: p, api_keys: {keys: [{consumer: 'a b', sha256: " + goodHash + "}]}}\n", "l7.routes[1].api_keys.keys[0].consumer", "consumer"},
		{"cors needs origins", "    - {name: x, pool: p, cors: {allow_credentials: true}}\n", "l7.routes[1].cors.allowed_origins", "needs allowed_origins"},
		{"credentials cannot go with any origin", "    - {name: x, pool: p, cors: {allowed_origins: ['*'], allow_credentials: true}}\n", "l7.routes[1].cors.allowed_origins[0]", "cannot be combined"},
		{"an origin has no path", "    - {name: x, pool: p, cors: {allowed_origins: ['https://a.test/']}}\n", "l7.routes[1].cors.allowed_origins[0]", "no path"},
		{"a wildcard stands for leading labels only", "    - {name: x, pool: p, cors: {allowed_origins: ['https://a.*.test']}}\n", "l7.routes[1].cors.allowed_origins[0]", "first labels"},
		{"a rate limit needs requests", "    - {name: x, pool: p, rate_limit: {per: 1s}}\n", "l7.routes[1].rate_limit.requests", "at least 1"},
		{"an unknown rate key is refused", "    - {name: x, pool: p, rate_limit: {requests: 1, key: cookie}}\n", "l7.routes[1].rate_limit.key", "client_ip, header:NAME"},
		{"a consumer key needs authentication", "    - {name: x, pool: p, rate_limit: {requests: 1, key: consumer}}\n", "l7.routes[1].rate_limit.key", "needs api_keys or jwt"},
		{"a claim key needs jwt", "    - {name: x, pool: p, rate_limit: {requests: 1, key: 'claim:tenant'}}\n", "l7.routes[1].rate_limit.key", "needs jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt(t, "t.yaml", withRoute(tt.route), tt.wantPath, tt.wantMsg, true)
		})
	}
}

func TestSecurityDefaultsAndRelativeKeyFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hs.key"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := withRoute(`    - name: x
      pool: p
      jwt: {issuer: i, audiences: [a], keys: [{secret_file: hs.key, algorithm: HS256}], jwks: {url: "https://idp.test/jwks"}}
      api_keys: {keys: [{consumer: c, sha256: ` + goodHash + `}]}
      cors: {allowed_origins: ["https://a.test"]}
      rate_limit: {requests: 7}
`)
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := c.L7.Routes[1]
	if r.JWT.Leeway.D() != DefaultJWTLeeway || r.JWT.JWKS.RefreshInterval.D() != 5*time.Minute || r.JWT.JWKS.MaxStale.D() != 24*time.Hour {
		t.Errorf("jwt defaults: %+v %+v", r.JWT, r.JWT.JWKS)
	}
	if r.JWT.Keys[0].SecretFile != filepath.Join(dir, "hs.key") {
		t.Errorf("secret_file %q not made relative to the config", r.JWT.Keys[0].SecretFile)
	}
	if r.APIKeys.Header != "X-API-Key" || strings.Join(r.CORS.AllowedMethods, ",") != "GET,HEAD,POST" {
		t.Errorf("api_keys/cors defaults: %+v %+v", r.APIKeys, r.CORS)
	}
	if l := r.RateLimit; l.Burst != 7 || l.Per.D() != time.Second || l.Key != "client_ip" || l.MaxKeys != DefaultRateLimitMaxKeys {
		t.Errorf("rate_limit defaults: %+v", l)
	}
}
