//lint:file-ignore SA1019 the h2c upstream is served with x/net/http2's server, as in the other tests.

package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// countingServer serves a countingUpstream until the test ends; it returns
// the upstream and its address.
func countingServer(t *testing.T) (*countingUpstream, string) {
	up := &countingUpstream{}
	us := httptest.NewServer(up)
	t.Cleanup(us.Close)
	return up, upstreamAddr(us)
}

// countingUpstream counts the requests whose head it saw and those whose
// body it read whole: an over-limit request must never be complete there
// (and, when refused by its Content-Length, never seen at all).
type countingUpstream struct {
	heads, complete atomic.Int64
	lastLen         atomic.Int64
}

func (u *countingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.heads.Add(1)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	u.complete.Add(1)
	u.lastLen.Store(int64(len(b)))
	fmt.Fprintf(w, "got %d", len(b))
}

// limitClient sends one request through the proxy by one protocol.
// length false sends the body without a Content-Length (chunked over
// HTTP/1.1, DATA frames without content-length over HTTP/2); refused says
// the test expects a refusal (only the raw client uses it, see rawH1).
type limitClient struct {
	name string
	tls  bool
	h3   bool
	do   func(t *testing.T, addr, path string, body []byte, length, refused bool) (status int, hdr http.Header)
}

// dialClient opens a client connection to addr that gives up after 10s.
func dialClient(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawH1 speaks HTTP/1.1 by hand to the lean server. A body with a
// Content-Length waits for 100 Continue (Expect), so a refusal is answered
// before the body is sent. A body without one, when a refusal is expected,
// is sent as the start of a larger chunk whose rest never comes: the proxy
// must refuse it from what it has read (a whole chunk would have the server
// wait for the CRLF after it), and nothing is left unread that would turn
// its close into a reset.
func rawH1(t *testing.T, addr, path string, body []byte, length, refused bool) (int, http.Header) {
	t.Helper()
	c := dialClient(t, addr)
	defer c.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\n", path)
	switch {
	case body == nil:
		b.WriteString("\r\n")
	case length:
		fmt.Fprintf(&b, "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	default:
		if refused {
			fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n", len(body)+4096)
			b.Write(body)
			break
		}
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n", len(body))
		b.Write(body)
		b.WriteString("\r\n0\r\n\r\n")
	}
	c.Write(b.Bytes())
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err == nil && res.StatusCode == http.StatusContinue {
		c.Write(body)
		res, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == 200 {
		return 200, res.Header
	}
	if length && body != nil && res.StatusCode == http.StatusRequestEntityTooLarge {
		// Answered before the body: the connection ends (the body is
		// not read to reach a next request).
		if _, err := br.ReadByte(); err == nil {
			t.Error("the connection stayed open after a 413")
		}
	}
	return res.StatusCode, res.Header
}

// lengthOrNot hides the body's length from net/http's client when asked.
func lengthOrNot(body []byte, length bool) io.Reader {
	if body == nil {
		return nil
	}
	if length {
		return bytes.NewReader(body)
	}
	return struct{ io.Reader }{bytes.NewReader(body)}
}

func goClient(c *http.Client, wantProto string) func(t *testing.T, addr, path string, body []byte, length, refused bool) (int, http.Header) {
	return func(t *testing.T, addr, path string, body []byte, length, _ bool) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+addr+path, lengthOrNot(body, length))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(res.Body)
		res.Body.Close()
		if res.Proto != wantProto {
			t.Fatalf("served over %s, want %s", res.Proto, wantProto)
		}
		return res.StatusCode, res.Header
	}
}

func limitClients() []limitClient {
	h1tls := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	h2tls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	h3 := &http.Client{Transport: &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, QUICConfig: &quic.Config{}}}
	return []limitClient{
		{"lean HTTP/1.1", false, false, rawH1},
		{"HTTP/1.1 over TLS (net/http)", true, false, goClient(h1tls, "HTTP/1.1")},
		{"HTTP/2 over TLS (lean h2)", true, false, goClient(h2tls, "HTTP/2.0")},
		{"HTTP/3", true, true, goClient(h3, "HTTP/3.0")},
	}
}

// limitsProxy starts a proxy whose listener sets the limits under test:
// max_uri_bytes 300 and a 1000-byte body default, raised or lowered by two
// routes.
func limitsProxy(t *testing.T, cl limitClient, upstream string, pool string) string {
	t.Helper()
	lis := ", max_uri_bytes: 300, max_body_bytes: 1000"
	if cl.tls {
		cert, key := selfSigned(t)
		lis += ", tls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}"
	}
	if cl.h3 {
		lis += ", http3: true"
	}
	routes := `    - {name: small, pool: p, match: {path_prefix: /small}, max_body_bytes: 100}
    - {name: big, pool: p, match: {path_prefix: /big}, max_body_bytes: 100000}
    - {name: all, pool: p}
`
	_, addr := startProxy(t, []string{upstream}, proxyOpts{lis: lis, routes: routes, pool: pool})
	return addr
}

func TestRequestBodiesOverTheirLimitGet413AndNeverReachTheUpstream(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		size    int
		length  bool // a Content-Length, or a body of unknown length
		status  int
		refused bool // the upstream must not even see the head
	}{
		{"a Content-Length over the route's limit is refused before the body", "/small", 101, true, 413, true},
		{"a Content-Length at the route's limit passes", "/small", 100, true, 200, false},
		{"a streamed body growing past the route's limit is cut", "/small", 101, false, 413, false},
		{"a streamed body at the route's limit passes", "/small", 100, false, 200, false},
		{"the listener's limit is the default of the other routes", "/other", 1001, true, 413, true},
		{"a streamed body past the listener's limit is cut", "/other", 1001, false, 413, false},
		{"the listener's limit lets its own size through", "/other", 1000, false, 200, false},
		{"a route may allow more than its listener", "/big", 5000, true, 200, false},
		{"a route may allow more than its listener, streamed", "/big", 5000, false, 200, false},
	}
	for _, cl := range limitClients() {
		t.Run(cl.name, func(t *testing.T) {
			up, upAddr := countingServer(t)
			addr := limitsProxy(t, cl, upAddr, "")
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					heads, complete := up.heads.Load(), up.complete.Load()
					status, hdr := cl.do(t, addr, tt.path, bytes.Repeat([]byte("x"), tt.size), tt.length, tt.status != 200)
					if status != tt.status {
						t.Fatalf("status %d, want %d", status, tt.status)
					}
					switch {
					case tt.status == 200:
						if up.complete.Load() != complete+1 || up.lastLen.Load() != int64(tt.size) {
							t.Fatalf("the upstream did not get the whole body (%d bytes)", up.lastLen.Load())
						}
					case tt.refused && up.heads.Load() != heads:
						t.Fatal("the upstream saw a request refused by its Content-Length")
					case up.complete.Load() != complete:
						t.Fatal("the upstream received a whole over-limit body")
					}
					if status == 413 && hdr.Get("Content-Type") != "application/json" {
						t.Fatalf("413 without the proxy's JSON body: %v", hdr)
					}
				})
			}
			// The refusals left nothing broken behind.
			if status, _ := cl.do(t, addr, "/small", []byte("ok"), false, false); status != 200 {
				t.Fatalf("after the refusals: %d", status)
			}
		})
	}
}

func TestAStreamedBodyPastItsLimitAbortsAnHTTP2Upstream(t *testing.T) {
	up := &countingUpstream{}
	us := httptest.NewUnstartedServer(up)
	us.Config.Protocols = new(http.Protocols)
	us.Config.Protocols.SetUnencryptedHTTP2(true)
	us.Start()
	defer us.Close()
	for _, cl := range limitClients() {
		t.Run(cl.name, func(t *testing.T) {
			addr := limitsProxy(t, cl, upstreamAddr(us), "      protocol: h2c\n")
			complete := up.complete.Load()
			if status, _ := cl.do(t, addr, "/small", bytes.Repeat([]byte("x"), 500), false, true); status != 413 {
				t.Fatalf("status %d, want 413", status)
			}
			if up.complete.Load() != complete {
				t.Fatal("the upstream received a whole over-limit body")
			}
			if status, _ := cl.do(t, addr, "/small", bytes.Repeat([]byte("x"), 100), false, false); status != 200 || up.complete.Load() != complete+1 {
				t.Fatalf("a body at the limit: %d", status)
			}
		})
	}
}

func TestA413BeforeTheBodyIsNotPrecededBy100Continue(t *testing.T) {
	up, upAddr := countingServer(t)
	addr := limitsProxy(t, limitClient{}, upAddr, "")
	c := dialClient(t, addr)
	defer c.Close()
	io.WriteString(c, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	all, _ := io.ReadAll(c) // to the close
	if !bytes.HasPrefix(all, []byte("HTTP/1.1 413 ")) || bytes.Contains(all, []byte("100 Continue")) {
		t.Fatalf("answer:\n%s", all)
	}
	if up.heads.Load() != 0 {
		t.Fatal("the upstream saw the request")
	}
}

func TestRequestTargetsOverMaxURIBytesGet414(t *testing.T) {
	tests := []struct {
		name   string
		target string
		status int
	}{
		{"a target of exactly max_uri_bytes passes", "/" + strings.Repeat("a", 299), 200},
		{"one byte more is 414", "/" + strings.Repeat("a", 300), 414},
		{"the query counts", "/a?" + strings.Repeat("q", 400), 414},
	}
	for _, cl := range limitClients() {
		t.Run(cl.name, func(t *testing.T) {
			up, upAddr := countingServer(t)
			addr := limitsProxy(t, cl, upAddr, "")
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					heads := up.heads.Load()
					status, hdr := cl.do(t, addr, tt.target, nil, false, tt.status != 200)
					if status != tt.status {
						t.Fatalf("status %d, want %d", status, tt.status)
					}
					if status == 414 && (up.heads.Load() != heads || hdr.Get("Content-Type") != "application/json") {
						t.Fatalf("upstream saw it: %v; header %v", up.heads.Load() != heads, hdr)
					}
				})
			}
		})
	}
}

func TestTheDefaultURILimitIs8KiB(t *testing.T) {
	_, upAddr := countingServer(t)
	_, addr := startProxy(t, []string{upAddr}, proxyOpts{})
	if status, _ := rawH1(t, addr, "/"+strings.Repeat("a", 8191), nil, false, false); status != 200 {
		t.Fatalf("8 KiB: %d", status)
	}
	if status, _ := rawH1(t, addr, "/"+strings.Repeat("a", 8192), nil, false, true); status != 414 {
		t.Fatalf("8 KiB + 1: %d", status)
	}
}

func TestARateLimitOnWhatTheClientSendsRunsBeforeAuthentication(t *testing.T) {
	s := newSigner(t, "k1")
	good := s.token(t, nil)
	bad := good[:len(good)-4] + "AAAA" // a forged signature
	tests := []struct {
		name string
		key  string
		// the statuses of three bad tokens, then of three good ones
		want [6]int
	}{
		{"client_ip: forged tokens beyond the limit get 429, not 401", "client_ip", [6]int{401, 401, 429, 429, 429, 429}},
		{"route: one bucket, counted before the token", "route", [6]int{401, 401, 429, 429, 429, 429}},
		{"header: counted before the token", "header:X-Tenant", [6]int{401, 401, 429, 429, 429, 429}},
		{"consumer: only authenticated requests count", "consumer", [6]int{401, 401, 401, 200, 200, 429}},
		{"claim: only authenticated requests count", "claim:sub", [6]int{401, 401, 401, 200, 200, 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, upAddr := countingServer(t)
			routes := fmt.Sprintf(`    - name: api
      pool: p
      jwt: {issuer: https://idp.test, audiences: [orders], keys: [{jwk: %s}]}
      rate_limit: {requests: 2, per: 1h, key: %q}
`, s.jwk(t), tt.key)
			_, addr := startProxy(t, []string{upAddr}, proxyOpts{routes: routes})
			var got [6]int
			for i := range got {
				tok := bad
				if i >= 3 {
					tok = good
				}
				res, _ := send(t, "GET", "http://"+addr+"/x", map[string]string{"Authorization": "Bearer " + tok, "X-Tenant": "t"})
				got[i] = res.StatusCode
				if res.StatusCode == 401 && tt.key != "consumer" && !strings.HasPrefix(tt.key, "claim:") && res.Header.Get("Ratelimit-Limit") != "2" {
					t.Errorf("a 401 after the limit ran lacks its RateLimit fields: %v", res.Header)
				}
			}
			if got != tt.want {
				t.Fatalf("statuses %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConnectionsRefusedPerAddressAreCountedInTheMetrics(t *testing.T) {
	_, upAddr := countingServer(t)
	p, addr := startProxy(t, []string{upAddr}, proxyOpts{lis: ", max_conns_per_ip: 1"})
	first := dialClient(t, addr)
	defer first.Close()
	io.WriteString(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("the first connection was not served: %v", err)
	}
	// The second from the same address is closed at accept, unanswered.
	if second, err := net.Dial("tcp", addr); err == nil {
		second.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(second, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if b, _ := io.ReadAll(second); len(b) > 0 {
			t.Fatalf("the second connection was answered: %q", b)
		}
		second.Close()
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "portcullis_http_connections_refused_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := ""
			for _, l := range m.Label {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			if labels == "listener=web,reason=per_ip_limit," && m.GetCounter().GetValue() == 1 {
				return
			}
			t.Fatalf("%s %v", labels, m.GetCounter().GetValue())
		}
	}
	t.Fatal("no portcullis_http_connections_refused_total{listener=web,reason=per_ip_limit}")
}

// chunkedUpstream is benchUpstream for chunked request bodies: it reads a
// head, then the chunk lines up to the last chunk, and answers 64 bytes.
func chunkedUpstream(tb testing.TB) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64))
	return serveConns(tb, func(c net.Conn, br *bufio.Reader) {
		for {
			for inHead := true; ; {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if inHead && len(line) == 2 {
					inHead = false
					continue
				}
				if !inHead && string(line) == "0\r\n" {
					br.ReadSlice('\n')
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

func TestABodyLimitCostsARequestNoAllocation(t *testing.T) {
	skipAllocMeasurement(t)
	measure := func(lis string) float64 {
		_, addr := startProxy(t, []string{chunkedUpstream(t)}, proxyOpts{lis: lis})
		rc := newRawClient(t, addr)
		rc.req = []byte("POST /upload HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		return allocsPerRequest(t, rc, 100, 2000, 0)
	}
	without, with := measure(""), measure(", max_body_bytes: 1000")
	t.Logf("%.1f allocations per chunked POST without a body limit, %.1f with one", without, with)
	if with > without {
		t.Errorf("the body limit costs %.1f allocations per request", with-without)
	}
}

// BenchmarkForgedTokens is a client sending the same forged token (a valid
// token with its signature changed, so never cached) on one keep-alive
// connection, once to a route whose limit runs before the token check and
// is exhausted (every request a 429, no signature check), once to a route
// limited by consumer (every request a 401 after an Ed25519 check).
func BenchmarkForgedTokens(b *testing.B) {
	for _, key := range []string{"client_ip", "consumer"} {
		b.Run(key, func(b *testing.B) {
			s := newSigner(b, "k1")
			up := benchUpstream(b)
			routes := fmt.Sprintf(`    - name: api
      pool: p
      jwt: {issuer: https://idp.test, audiences: [orders], keys: [{jwk: %s}]}
      rate_limit: {requests: 1, per: 1h, key: %s}
`, s.jwk(b), key)
			_, addr := startProxy(b, []string{up}, proxyOpts{routes: routes})
			good := s.token(b, map[string]any{"exp": time.Now().Unix() + 3600})
			rc := newRawClient(b, addr)
			rc.req = []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + good[:len(good)-4] + "AAAA\r\n\r\n")
			rc.do(b)
			benchRequests(b, rc)
		})
	}
}

func TestTheBodyCounterStopsAtTheLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		body  string
		over  bool
	}{
		{"a body of the limit is whole", 5, "hello", false},
		{"one byte more is over", 5, "hello!", true},
		{"the largest limit cannot overflow", 1<<63 - 1, "hello", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &limitedBody{rc: io.NopCloser(strings.NewReader(tt.body)), left: tt.limit}
			got, err := io.ReadAll(b)
			if tt.over != (err == errBodyTooLarge) || b.over != tt.over {
				t.Fatalf("err %v over %v", err, b.over)
			}
			if !tt.over && string(got) != tt.body {
				t.Fatalf("read %q", got)
			}
		})
	}
}

// TestTooManyHeaderFieldsGet431 covers max_header_count over the lean
// HTTP/1.1 server and HTTP/2 over TLS: one field over the limit is 431 and
// never reaches the upstream; at the limit the request passes.
func TestTooManyHeaderFieldsGet431(t *testing.T) {
	up, upAddr := countingServer(t)
	cert, key := selfSigned(t)
	var protos http.Protocols
	protos.SetHTTP2(true)
	for _, tc := range []struct {
		name   string
		lis    string
		scheme string
		client *http.Client
	}{
		{"h1 lean", ", max_header_count: 10", "http", http.DefaultClient},
		{"h2 over TLS", ", max_header_count: 10, tls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}", "https",
			&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &protos}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startProxy(t, []string{upAddr}, proxyOpts{lis: tc.lis})
			// Go's clients add Host (h1: the request line's; h2:
			// :authority, not a field), User-Agent and Accept-Encoding.
			for _, n := range []struct{ extra, status int }{{6, 200}, {12, 431}} {
				req, _ := http.NewRequest("GET", tc.scheme+"://"+addr+"/", nil)
				for i := range n.extra {
					req.Header.Set(fmt.Sprintf("X-F%d", i), "v")
				}
				heads := up.heads.Load()
				res, err := tc.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != n.status {
					t.Fatalf("%d extra fields: %d, want %d", n.extra, res.StatusCode, n.status)
				}
				if n.status == 431 && up.heads.Load() != heads {
					t.Fatal("the upstream saw a refused request")
				}
			}
		})
	}
}
