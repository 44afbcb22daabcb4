package l7

import (
	"fmt"
	"testing"
	"time"
)

// jwtRoute is a route with a JWT check (an inline Ed25519 key), a scope
// condition, one claim forwarded and a rate limit that never bites.
func jwtRoute(tb testing.TB, s *testSigner) string {
	return fmt.Sprintf(`    - name: api
      pool: p
      jwt:
        issuer: https://idp.test
        audiences: [orders]
        keys: [{jwk: %s}]
        claims: [{name: scope, contains: orders:read}]
        forward_claims: [{claim: sub, header: X-User}]
      rate_limit: {requests: 1000000000, per: 1s}
`, s.jwk(tb))
}

func jwtClient(tb testing.TB, addr string, s *testSigner) *rawClient {
	rc := newRawClient(tb, addr)
	rc.req = []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\nAuthorization: Bearer " + s.token(tb, map[string]any{"exp": time.Now().Unix() + 3600}) + "\r\n\r\n")
	return rc
}

// BenchmarkProxyH1JWT is BenchmarkProxyH1KeepAlive on a route with a JWT
// check, a claim forwarded upstream and a rate limit: the client sends the
// same token every time, as clients do, so after the first request the
// signature check is the verified-token cache's.
func BenchmarkProxyH1JWT(b *testing.B) {
	s := newSigner(b, "k1")
	up := benchUpstream(b)
	_, addr := startProxy(b, []string{up}, proxyOpts{routes: jwtRoute(b, s)})
	rc := jwtClient(b, addr, s)
	benchRequests(b, rc)
}

// maxAllocsJWT is the budget of a request on jwtRoute: the base request's
// budget plus what the route adds. Measured with Go 1.26: 5 more than the
// base request: the X-User value slice, RateLimit-Remaining rendered for a
// count beyond the small-number table (a slice and a string), and the
// growth of the response header map for the RateLimit fields. The token
// check itself allocates nothing once the token is cached.
const maxAllocsJWT = maxAllocsPerRequest + 6

func TestAllocationBudgetOfAJWTRequest(t *testing.T) {
	skipAllocMeasurement(t)
	s := newSigner(t, "k1")
	up := benchUpstream(t)
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: jwtRoute(t, s)})
	rc := jwtClient(t, addr, s)
	n := allocsPerRequest(t, rc, 100, 2000, 10*time.Millisecond)
	t.Logf("%.1f allocations per JWT-checked, rate-limited request", n)
	if n > maxAllocsJWT {
		t.Errorf("%.1f allocations per request, budget %d", n, maxAllocsJWT)
	}
}
