package l7

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// testSigner is an Ed25519 identity provider for the proxy tests.
type testSigner struct {
	priv ed25519.PrivateKey
	kid  string
}

func newSigner(t testing.TB, kid string) *testSigner {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{priv: priv, kid: kid}
}

// jwk is the public key as a JWK, quoted for a YAML flow mapping.
func (s *testSigner) jwk(t testing.TB) string {
	b, err := json.Marshal(jose.JSONWebKey{Key: s.priv.Public(), KeyID: s.kid, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return "'" + string(b) + "'"
}

func (s *testSigner) jwks(t testing.TB) []byte {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.priv.Public(), KeyID: s.kid, Use: "sig", Algorithm: "EdDSA"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *testSigner) token(t testing.TB, extra map[string]any) string {
	now := time.Now().Unix()
	c := map[string]any{"iss": "https://idp.test", "aud": "orders", "sub": "alice", "exp": now + 600, "iat": now, "scope": "orders:read"}
	for k, v := range extra {
		c[k] = v
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: s.priv}, (&jose.SignerOptions{}).WithHeader("kid", s.kid))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(c)
	obj, err := sg.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// send makes one request and returns the response with its body read.
func send(t testing.TB, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	res, b := do(t, method, url, hdr, nil)
	return res, string(b)
}

func TestAJWTRouteAuthenticatesAuthorizesAndForwardsClaims(t *testing.T) {
	rec, up := recordingUpstream(t, "ok")
	s := newSigner(t, "k1")
	routes := fmt.Sprintf(`    - name: orders
      pool: p
      match: {path_prefix: /orders}
      jwt:
        issuer: https://idp.test
        audiences: [orders]
        keys: [{jwk: %s}]
        claims: [{name: scope, contains: orders:read}]
        forward_claims: [{claim: sub, header: X-User}]
        strip_authorization: true
    - {name: open, pool: p}
`, s.jwk(t))
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: routes})
	base := "http://" + addr

	res, body := send(t, "GET", base+"/orders/1", nil)
	if res.StatusCode != 401 || res.Header.Get("Www-Authenticate") != "Bearer" || !strings.Contains(body, `"status":401`) || rec.count() != 0 {
		t.Fatalf("no token: %d %q %q", res.StatusCode, res.Header.Get("Www-Authenticate"), body)
	}
	res, body = send(t, "GET", base+"/orders/1", map[string]string{"Authorization": "Bearer " + s.token(t, map[string]any{"exp": 1})})
	if res.StatusCode != 401 || res.Header.Get("Www-Authenticate") != `Bearer error="invalid_token"` || strings.Contains(body, "expired") {
		t.Fatalf("expired token: %d %q %q", res.StatusCode, res.Header.Get("Www-Authenticate"), body)
	}
	res, _ = send(t, "GET", base+"/orders/1", map[string]string{"Authorization": "Bearer " + s.token(t, map[string]any{"scope": "orders:write"})})
	if res.StatusCode != 403 || res.Header.Get("Www-Authenticate") != `Bearer error="insufficient_scope"` {
		t.Fatalf("insufficient scope: %d %q", res.StatusCode, res.Header.Get("Www-Authenticate"))
	}
	if rec.count() != 0 {
		t.Fatal("a refused request reached the upstream")
	}
	res, body = send(t, "GET", base+"/orders/1", map[string]string{"Authorization": "Bearer " + s.token(t, nil), "X-User": "mallory"})
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("good token: %d %q", res.StatusCode, body)
	}
	got := rec.last()
	if v := got.Header.Values("X-User"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("X-User upstream %q", v)
	}
	if got.Header.Get("Authorization") != "" {
		t.Error("Authorization reached the upstream")
	}
	res, _ = send(t, "GET", base+"/elsewhere", map[string]string{"X-User": "mallory"})
	if res.StatusCode != 200 || rec.last().Header.Get("X-User") != "mallory" {
		t.Errorf("a route without jwt changed: %d", res.StatusCode)
	}
}

func TestCORSPreflightsNeverReachThePoolAndEveryAnswerCarriesCORS(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Vary", "Accept-Encoding")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	routes := `    - name: api
      pool: p
      match: {path_prefix: /api, methods: [GET, PUT]}
      cors:
        allowed_origins: ["https://*.example.com"]
        allowed_methods: [GET, PUT]
        allowed_headers: [Authorization]
        allow_credentials: true
        max_age: 1m
      api_keys: {keys: [{consumer: web, sha256: ` + hashHex("key-1") + `}]}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	base := "http://" + addr
	origin := "https://app.example.com"

	res, _ := send(t, "OPTIONS", base+"/api/x", map[string]string{"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"})
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != origin || res.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		res.Header.Get("Access-Control-Allow-Methods") != "GET, PUT" || res.Header.Get("Access-Control-Max-Age") != "60" || res.Header.Get("Vary") != "Origin" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	res, _ = send(t, "OPTIONS", base+"/api/x", map[string]string{"Origin": "https://evil.test", "Access-Control-Request-Method": "PUT"})
	if res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", res.StatusCode, res.Header)
	}
	if hits.Load() != 0 {
		t.Fatal("a preflight reached the pool")
	}
	res, _ = send(t, "GET", base+"/api/x", map[string]string{"Origin": origin})
	if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != origin || res.Header.Get("Vary") != "Origin" {
		t.Fatalf("a 401 lacks CORS: %d %v", res.StatusCode, res.Header)
	}
	res, _ = send(t, "GET", base+"/api/x", map[string]string{"Origin": origin, "X-API-Key": "key-1"})
	if res.StatusCode != 200 || res.Header.Values("Access-Control-Allow-Origin")[0] != origin || len(res.Header.Values("Access-Control-Allow-Origin")) != 1 ||
		!sameSet(res.Header.Values("Vary"), "Accept-Encoding", "Origin") {
		t.Fatalf("upstream answer: %d %v", res.StatusCode, res.Header)
	}
}

func TestCORSHeadersSurviveAnUpstreamFailure(t *testing.T) {
	routes := `    - name: api
      pool: p
      cors: {allowed_origins: ["https://app.example.com"]}
      rate_limit: {requests: 100, per: 1s}
`
	_, addr := startProxy(t, []string{"127.0.0.1:1"}, proxyOpts{routes: routes, pool: "      retries: {attempts: 1}\n"})
	res, _ := send(t, "GET", "http://"+addr+"/x", map[string]string{"Origin": "https://app.example.com"})
	if res.StatusCode != 502 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || res.Header.Get("Ratelimit-Limit") != "100" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
}

func TestARateLimitedRouteAnswers429WithItsHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	routes := `    - name: limited
      pool: p
      rate_limit: {requests: 3, per: 1m, key: "header:X-Tenant"}
`
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	url := "http://" + addr + "/x"
	for i := range 3 {
		res, _ := send(t, "GET", url, map[string]string{"X-Tenant": "a"})
		if res.StatusCode != 200 || res.Header.Get("Ratelimit-Limit") != "3" || res.Header.Get("Ratelimit-Remaining") != fmt.Sprint(2-i) || res.Header.Get("Ratelimit-Reset") == "" {
			t.Fatalf("request %d: %d %v", i, res.StatusCode, res.Header)
		}
	}
	res, body := send(t, "GET", url, map[string]string{"X-Tenant": "a"})
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "20" || res.Header.Get("Ratelimit-Remaining") != "0" || !strings.Contains(body, `"status":429`) {
		t.Fatalf("over the limit: %d %v %q", res.StatusCode, res.Header, body)
	}
	if res, _ := send(t, "GET", url, map[string]string{"X-Tenant": "b"}); res.StatusCode != 200 {
		t.Fatalf("another tenant was limited: %d", res.StatusCode)
	}
}

func TestAPIKeyInTheQueryIsRemovedBeforeForwarding(t *testing.T) {
	rec, up := recordingUpstream(t, "")
	routes := `    - name: keyed
      pool: p
      api_keys: {query: key, keys: [{consumer: ci, sha256: ` + hashHex("s3cret") + `}]}
`
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: routes})
	res, _ := send(t, "GET", "http://"+addr+"/x?a=1&key=s3cret&b=2", nil)
	if res.StatusCode != 200 || rec.last().URL.RawQuery != "a=1&b=2" {
		t.Fatalf("%d, upstream query %q", res.StatusCode, rec.last().URL.RawQuery)
	}
	if res, _ := send(t, "GET", "http://"+addr+"/x?key=wrong", nil); res.StatusCode != 401 || res.Header.Get("Www-Authenticate") == "" {
		t.Fatalf("wrong key: %d", res.StatusCode)
	}
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestRemoteKeySetsStopWithTheirGeneration(t *testing.T) {
	s := newSigner(t, "r1")
	var fetches atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write(s.jwks(t))
	}))
	defer idp.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	time.Sleep(20 * time.Millisecond)
	base := runtime.NumGoroutine()

	routes := `    - name: r
      pool: p
      jwt: {issuer: https://idp.test, audiences: [orders], jwks: {url: ` + idp.URL + `, refresh_interval: 1h}}
`
	yaml := testYAML(freePort(t), []string{upstreamAddr(up)}, proxyOpts{routes: routes})
	g1 := compileYAML(t, yaml)
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Apply(g1, time.Second); err != nil {
		t.Fatal(err)
	}
	addr := "http://" + p.Addrs()["web"] + "/x"
	tok := map[string]string{"Authorization": "Bearer " + s.token(t, nil)}
	deadline := time.Now().Add(3 * time.Second)
	for {
		res, _ := send(t, "GET", addr, tok)
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key set was not fetched: %d", res.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := fetches.Load()
	g2 := compileYAML(t, strings.Replace(yaml, "refresh_interval: 1h", "refresh_interval: 1h ", 1))
	if err := p.Apply(g2, time.Second); err != nil {
		t.Fatal(err)
	}
	if res, _ := send(t, "GET", addr, tok); res.StatusCode != 200 || fetches.Load() != n {
		t.Fatalf("after a reload: %d, fetches %d → %d (the cached set should carry over)", res.StatusCode, n, fetches.Load())
	}
	if r := g1.jwks.Remotes()[0]; r.Fetches() == 0 {
		t.Fatal("the first generation never fetched")
	}
	ctxShutdown(t, p)
	http.DefaultClient.CloseIdleConnections()
	deadline = time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxShutdown(t testing.TB, p *Proxy) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// sameSet reports whether header values hold exactly these names, once
// each, in any order.
func sameSet(vals []string, names ...string) bool {
	var got []string
	for _, v := range vals {
		for f := range strings.SplitSeq(v, ",") {
			got = append(got, strings.TrimSpace(f))
		}
	}
	if len(got) != len(names) {
		return false
	}
	for _, n := range names {
		found := false
		for _, g := range got {
			found = found || g == n
		}
		if !found {
			return false
		}
	}
	return true
}

func TestTheExampleConfigsCompile(t *testing.T) {
	for _, name := range []string{"edge-node.yaml", "quickstart.yaml"} {
		cfg, err := config.Load(filepath.Join(testbin.RepoRoot(), "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Compile(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "edge-node.yaml" && (len(g.security) == 0 || len(g.jwks.Remotes()) != 1 || g.jwks.Remotes()[0].Fetches() != 0) {
			t.Errorf("%s: the API route's security was not compiled (or it fetched at compile time)", name)
		}
	}
}

func TestTheAccessLogNamesTheConsumer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	logFile := filepath.Join(t.TempDir(), "access.log")
	routes := `    - name: keyed
      pool: p
      api_keys: {keys: [{consumer: billing-batch, sha256: ` + hashHex("k") + `}]}
`
	p, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{routes: routes, l7: "  access_log: {enabled: true, path: " + logFile + "}\n"})
	send(t, "GET", "http://"+addr+"/x", map[string]string{"X-API-Key": "k"})
	send(t, "GET", "http://"+addr+"/x", map[string]string{"X-API-Key": "wrong"})
	ctxShutdown(t, p)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), b)
	}
	for i, want := range []struct {
		status   float64
		consumer string
	}{{200, "billing-batch"}, {401, ""}} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["status"] != want.status || rec["consumer"] != want.consumer {
			t.Errorf("line %d: status %v consumer %v", i, rec["status"], rec["consumer"])
		}
	}
}

func TestTheRateLimitClientIsTheFirstUntrustedHop(t *testing.T) {
	g := &Generation{}
	for _, s := range []string{"127.0.0.0/8", "10.0.0.0/8"} {
		pfx, _ := netip.ParsePrefix(s)
		g.trusted = append(g.trusted, pfx)
	}
	tests := []struct {
		name string
		xff  []string
		want string
	}{
		{"no forwarding header: the peer", nil, "127.0.0.1"},
		{"one hop: its client", []string{"203.0.113.9"}, "203.0.113.9"},
		{"trusted hops are skipped from the right", []string{"198.51.100.1, 203.0.113.9, 10.1.1.1", "10.2.2.2"}, "203.0.113.9"},
		{"what the client wrote on the left is ignored", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"garbage stops the walk at the last known hop", []string{"203.0.113.9, nonsense, 10.1.1.1"}, "127.0.0.1"},
		{"only trusted hops: the peer", []string{"10.1.1.1"}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &reqState{}
			st.fwd.clientIP = "127.0.0.1"
			st.fwd.priorXFF = tt.xff
			if got := clientKey(g, st); got != tt.want {
				t.Fatalf("%q, want %q", got, tt.want)
			}
		})
	}
}
