package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// TestAProtectedRouteThroughTheDaemon: a route with a remote JWKS (served
// by the test as an identity provider would), a scope condition, a claim
// forwarded upstream, a rate limit per subject and CORS, through the real
// `portcullis run`.
func TestAProtectedRouteThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: "idp-1", Use: "sig", Algorithm: "EdDSA"}}})
	idp := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(set)
	})
	up := serve(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s auth=%q", r.Header.Get("X-User"), r.Header.Get("Authorization"))
	})
	token := func(scope string) string {
		now := time.Now().Unix()
		c, _ := json.Marshal(map[string]any{"iss": "https://idp.e2e", "aud": "orders", "sub": "alice", "scope": scope, "iat": now, "exp": now + 300})
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, (&jose.SignerOptions{}).WithHeader("kid", "idp-1"))
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := sg.Sign(c)
		s, _ := obj.CompactSerialize()
		return s
	}
	port := freePort(t)
	d := startDaemon(t, dir, fmt.Sprintf(`l7:
  listeners:
    - {name: web, address: "127.0.0.1:%d"}
  pools:
    - {name: orders, endpoints: [{address: "%s"}]}
  routes:
    - name: orders
      pool: orders
      match: {path_prefix: /orders}
      cors:
        allowed_origins: ["https://*.shop.test"]
        allowed_methods: [GET, POST]
        allowed_headers: [Authorization]
        allow_credentials: true
      jwt:
        issuer: https://idp.e2e
        audiences: [orders]
        jwks: {url: "http://%s/jwks.json"}
        claims: [{name: scope, contains: "orders:read"}]
        forward_claims: [{claim: sub, header: X-User}]
        strip_authorization: true
      rate_limit: {requests: 5, per: 1m, key: consumer}
`, port, up, idp))
	base := fmt.Sprintf("http://127.0.0.1:%d/orders/7", port)
	do := func(method string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := d.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}

	res, body := do("GET", nil)
	if res.StatusCode != 401 || res.Header.Get("Www-Authenticate") != "Bearer" || !strings.Contains(body, `"status":401`) {
		t.Fatalf("no token: %d %q %q", res.StatusCode, res.Header.Get("Www-Authenticate"), body)
	}
	good := map[string]string{"Authorization": "Bearer " + token("orders:read profile"), "X-User": "mallory"}
	// The daemon fetches the set when the config is applied; give it a moment.
	e2etest.Eventually(t, "a good token to pass", 5*time.Second, 20*time.Millisecond, func() (bool, string) {
		res, body = do("GET", good)
		return res.StatusCode == 200, fmt.Sprintf("%d %s", res.StatusCode, body)
	})
	if body != `user=alice auth=""` {
		t.Fatalf("the upstream saw %q: want the sub claim in X-User and no Authorization", body)
	}
	if res.Header.Get("Ratelimit-Limit") != "5" {
		t.Errorf("RateLimit-Limit %q", res.Header.Get("Ratelimit-Limit"))
	}
	res, _ = do("GET", map[string]string{"Authorization": "Bearer " + token("orders:write")})
	if res.StatusCode != 403 || res.Header.Get("Www-Authenticate") != `Bearer error="insufficient_scope"` {
		t.Fatalf("insufficient scope: %d %q", res.StatusCode, res.Header.Get("Www-Authenticate"))
	}
	res, _ = do("OPTIONS", map[string]string{"Origin": "https://www.shop.test", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://www.shop.test" || res.Header.Get("Access-Control-Allow-Headers") != "authorization" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	// The limit is 5 per minute per subject; the passes above took some.
	limited := false
	for range 6 {
		res, _ = do("GET", good)
		if res.StatusCode == 429 {
			limited = true
			break
		}
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if !limited || res.Header.Get("Retry-After") == "" || res.Header.Get("Ratelimit-Remaining") != "0" {
		t.Fatalf("not limited after 5 requests: %d %v", res.StatusCode, res.Header)
	}
}

// serve runs a plain HTTP server on loopback for the test and returns its
// host:port.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
