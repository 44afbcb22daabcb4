//lint:file-ignore SA1019 the test's h2c client is x/net/http2's Transport, as the proxy's h2 upstream is.

package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// recorder is an upstream that remembers what it received.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rc *recorder) add(r *http.Request) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	rc.mu.Unlock()
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *recorder) last() *http.Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) == 0 {
		return nil
	}
	return rc.reqs[len(rc.reqs)-1]
}

// recordingUpstream is an upstream that records every request and
// answers body (nothing when empty); it returns the recorder and the
// upstream's address.
func recordingUpstream(t *testing.T, body string) (*recorder, string) {
	rec := &recorder{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		if body != "" {
			io.WriteString(w, body)
		}
	}))
	t.Cleanup(up.Close)
	return rec, upstreamAddr(up)
}

// proxyOpts shape the test config: YAML added to the pool and to l7, and
// a last change to the compiled generation.
type proxyOpts struct {
	pool   string // indented 6 spaces, under the pool
	l7     string // indented 2 spaces, under l7
	routes string // replaces the catch-all route list, indented 4 spaces
	lis    string // added inside the listener's flow mapping, e.g. ", h2c: true"
	tune   func(*Generation)
}

// freePort finds a loopback port (config validation wants a real one).
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func testYAML(addr string, endpoints []string, o proxyOpts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: test}\nl7:\n  listeners:\n    - {name: web, address: %q%s}\n", addr, o.lis)
	b.WriteString("  pools:\n    - name: p\n      endpoints:\n")
	for _, e := range endpoints {
		fmt.Fprintf(&b, "        - {address: %q}\n", e)
	}
	if len(endpoints) == 0 {
		b.WriteString("        []\n")
	}
	b.WriteString(o.pool)
	if o.routes == "" {
		o.routes = "    - {name: all, pool: p}\n"
	}
	b.WriteString("  routes:\n" + o.routes)
	b.WriteString(o.l7)
	return b.String()
}

// startProxy compiles a one-listener, one-pool config over the given
// endpoints and applies it.
func startProxy(t testing.TB, endpoints []string, o proxyOpts) (*Proxy, string) {
	t.Helper()
	g := compileYAML(t, testYAML(freePort(t), endpoints, o))
	if o.tune != nil {
		o.tune(g)
	}
	p := applyNew(t, g)
	return p, p.Addrs()["web"]
}

// compileYAML parses and compiles a config document.
func compileYAML(t testing.TB, src string) *Generation {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	g, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// applyNew starts a proxy on g, shut down when the test ends.
func applyNew(t testing.TB, g *Generation) *Proxy {
	t.Helper()
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := p.Apply(g, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

func upstreamAddr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func TestHeadersAreRewrittenForTheUpstream(t *testing.T) {
	rec := &recorder{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "leak")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	cases := []struct {
		name       string
		trusted    []string
		wantXFF    string
		wantPrefix string
	}{
		{"an untrusted client's forwarding headers are replaced", nil, "127.0.0.1", "for=127.0.0.1;"},
		{"a trusted proxy's forwarding headers are appended to", []string{"127.0.0.0/8"}, "10.9.9.9, 127.0.0.1", "for=10.9.9.9, for=127.0.0.1;"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l7 := "  via: portcullis\n"
			if tc.trusted != nil {
				l7 += "  trusted_proxies: [" + strings.Join(tc.trusted, ",") + "]\n"
			}
			_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{l7: l7})
			req, _ := http.NewRequest("GET", "http://"+addr+"/x?q=1", nil)
			req.Host = "site.example"
			req.Header.Set("X-Forwarded-For", "10.9.9.9")
			req.Header.Set("Forwarded", "for=10.9.9.9")
			req.Header.Set("Connection", "X-Hop-Field")
			req.Header.Set("X-Hop-Field", "must not pass")
			req.Header.Set("Proxy-Authorization", "secret")
			req.Header.Set("X-Keep", "yes")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			got := rec.last()
			if v := got.Header.Get("X-Forwarded-For"); v != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", v, tc.wantXFF)
			}
			if v := strings.Join(got.Header.Values("Forwarded"), ", "); !strings.HasPrefix(v, tc.wantPrefix) || !strings.Contains(v, `host="site.example";proto=http`) {
				t.Errorf("Forwarded %q", v)
			}
			if got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-Host") != "site.example" {
				t.Errorf("X-Forwarded-Proto/Host %q %q", got.Header.Get("X-Forwarded-Proto"), got.Header.Get("X-Forwarded-Host"))
			}
			if got.Header.Get("X-Hop-Field") != "" || got.Header.Get("Proxy-Authorization") != "" {
				t.Errorf("hop-by-hop fields reached the upstream: %v", got.Header)
			}
			if got.Header.Get("X-Keep") != "yes" || got.Host != "site.example" || got.URL.RawQuery != "q=1" {
				t.Errorf("end-to-end data lost: %v host %q query %q", got.Header, got.Host, got.URL.RawQuery)
			}
			if id := got.Header.Get("X-Request-Id"); len(id) < 18 {
				t.Errorf("request id %q not generated", id)
			}
			if got.Header.Get("Via") != "1.1 portcullis" || res.Header.Get("Via") != "1.1 portcullis" {
				t.Errorf("Via: request %q response %q", got.Header.Get("Via"), res.Header.Get("Via"))
			}
			if res.Header.Get("X-Secret-Hop") != "" || res.Header.Get("Keep-Alive") != "" {
				t.Errorf("hop-by-hop response fields reached the client: %v", res.Header)
			}
		})
	}
}

func TestAnIncomingRequestIDIsPropagated(t *testing.T) {
	rec, up := recordingUpstream(t, "")
	_, addr := startProxy(t, []string{up}, proxyOpts{l7: "  echo_request_id: true\n"})
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := rec.last().Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("upstream saw %q", got)
	}
	if res.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("client saw %q", res.Header.Get("X-Request-Id"))
	}
}

func TestSlowBodiesStreamAndEventStreamsFlush(t *testing.T) {
	for _, tc := range []struct{ name, ctype string }{
		{"a chunked body arrives in pieces", "text/plain"},
		{"server-sent events are flushed at once", "text/event-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, "data: two\n\n")
			}))
			defer up.Close()
			defer close(release)
			_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{})
			res, err := http.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			br := bufio.NewReader(res.Body)
			done := make(chan string, 1)
			go func() { l, _ := br.ReadString('\n'); done <- l }()
			select {
			case l := <-done:
				if l != "data: one\n" {
					t.Fatalf("first piece %q", l)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the first piece was held back while the upstream was still sending")
			}
		})
	}
}

func TestFailedEndpointsAreRetriedElsewhere(t *testing.T) {
	// A port that refuses connections.
	dead := freePort(t)
	_, up := recordingUpstream(t, "alive")
	_, addr := startProxy(t, []string{dead, up}, proxyOpts{})
	for i := range 4 {
		res, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "alive" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, b)
		}
	}
}

func TestAPostIsNotRetriedAfterItWasSentUnlessBuffered(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			mu.Lock()
			hits[name]++
			mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	a := httptest.NewServer(handler("a"))
	b := httptest.NewServer(handler("b"))
	defer a.Close()
	defer b.Close()
	_, addr := startProxy(t, []string{upstreamAddr(a), upstreamAddr(b)}, proxyOpts{
		pool: "      retries: {attempts: 1, on: [connect-failure, gateway-error]}\n",
	})
	// A streamed (chunked) POST cannot be sent twice.
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("streamed")); pw.Close() }()
	res, err := http.Post("http://"+addr+"/", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	mu.Lock()
	total := hits["a"] + hits["b"]
	mu.Unlock()
	if res.StatusCode != 503 || total != 1 {
		t.Fatalf("streamed POST: status %d, upstream hits %d (want 503, 1)", res.StatusCode, total)
	}
	// A small POST is buffered and may be retried.
	res, err = http.Post("http://"+addr+"/", "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	mu.Lock()
	total = hits["a"] + hits["b"]
	mu.Unlock()
	if total != 3 {
		t.Fatalf("buffered POST: upstream hits %d, want 3 (two attempts)", total)
	}
}

func TestAResponseHeaderTimeoutIs504(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{pool: "      timeouts: {response_header: 200ms}\n"})
	start := time.Now()
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 504 || !strings.Contains(string(b), `"status":504`) || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d body %q after %v", res.StatusCode, b, time.Since(start))
	}
}

func TestMalformedRequestsNeverReachTheUpstream(t *testing.T) {
	rec := &recorder{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rec.add(r)
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{})
	cases := []struct{ name, raw string }{
		{"two different content lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
		{"an unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"a bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"a chunk longer than announced", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n"},
		{"a space before the colon", "GET / HTTP/1.1\r\nHost: x\r\nFoo : bar\r\n\r\n"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, tc.raw)
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			// 501 is RFC 9112 §6.1's answer to an unknown transfer coding.
			if res.StatusCode != 400 && res.StatusCode != 501 {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
			time.Sleep(50 * time.Millisecond)
			if n := rec.count(); n != before {
				t.Errorf("the upstream received %d request(s)", n-before)
			}
		})
	}
}

func TestUpstreamProtocols(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("Content-Type", "application/grpc")
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
		w.Header().Set("Grpc-Status", "0")
	})
	h2c := httptest.NewUnstartedServer(h)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	defer h2c.Close()
	h2tls := httptest.NewUnstartedServer(h)
	h2tls.EnableHTTP2 = true
	h2tls.StartTLS()
	defer h2tls.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h2tls.Certificate().Raw}), 0o644)
	h1 := httptest.NewServer(h)
	defer h1.Close()
	h1tls := httptest.NewTLSServer(h)
	defer h1tls.Close()
	ca1 := filepath.Join(t.TempDir(), "ca1.pem")
	os.WriteFile(ca1, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h1tls.Certificate().Raw}), 0o644)

	ups := []struct {
		name, proto, addr string
		tls               bool
		want              string
	}{
		{"h1", protoH1, upstreamAddr(h1), false, "HTTP/1.1"},
		{"h2c", protoH2C, upstreamAddr(h2c), false, "HTTP/2.0"},
		{"h2 over TLS", protoH2, strings.TrimPrefix(h2tls.URL, "https://"), true, "HTTP/2.0"},
		{"h1 over TLS", protoH1, strings.TrimPrefix(h1tls.URL, "https://"), true, "HTTP/1.1"},
	}
	clients := []struct {
		name string
		c    *http.Client
	}{
		{"client h1", &http.Client{}},
		{"client h2c", &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(n, a)
		}}}},
	}
	for _, u := range ups {
		for _, cl := range clients {
			t.Run(cl.name+" to upstream "+u.name, func(t *testing.T) {
				po := "      protocol: " + u.proto + "\n"
				if u.tls {
					// The test server's certificate is the only CA trusted
					// (tls.ca_file pins it); SNI example.com is in its SANs.
					pin := ca
					if u.proto == protoH1 {
						pin = ca1
					}
					po += "      tls: {enabled: true, ca_file: " + pin + ", server_name: example.com}\n"
				}
				_, addr := startProxy(t, []string{u.addr}, proxyOpts{pool: po, lis: ", h2c: true"})
				res, err := cl.c.Post("http://"+addr+"/svc/Method", "application/grpc", strings.NewReader("hello"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if string(b) != "hello" || res.Header.Get("X-Proto") != u.want {
					t.Fatalf("body %q upstream proto %q", b, res.Header.Get("X-Proto"))
				}
				if res.Trailer.Get("Grpc-Status") != "0" {
					t.Fatalf("trailers lost: %v", res.Trailer)
				}
			})
		}
	}
}

func TestNoRouteAndNoEndpointAnswerJSON(t *testing.T) {
	_, addr := startProxy(t, nil, proxyOpts{routes: "    - {name: api, pool: p, match: {path_prefix: /api}}\n"})
	for path, want := range map[string]int{"/nothing": 404, "/api": 503} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || res.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), fmt.Sprintf(`"status":%d`, want)) {
			t.Errorf("%s: %d %q", path, res.StatusCode, b)
		}
	}
}
