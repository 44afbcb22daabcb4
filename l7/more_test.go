package l7

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAnOverloadedPoolAnswers503WithRetryAfter(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer up.Close()
	_, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{pool: "      max_concurrent: 1\n"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := http.Get("http://" + addr + "/slow"); err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	res, err := http.Get("http://" + addr + "/second")
	close(release)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "overloaded") {
		t.Fatalf("%d Retry-After=%q %s", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
}

// selfSigned writes a throwaway ECDSA certificate for 127.0.0.1.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func TestAnH2ClientOverTLSKeepsItsConnectionAcrossAReload(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer up.Close()
	cert, key := selfSigned(t)
	lis := ", tls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}"
	addr := freePort(t)
	load := func(via string) *Generation {
		src := testYAML(addr, []string{upstreamAddr(up)}, proxyOpts{lis: lis, l7: "  via: " + via + "\n"})
		return compileYAML(t, src)
	}
	p := applyNew(t, load("one"))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	get := func() (proto, body, via string, reused bool) {
		var info httptrace.GotConnInfo
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }})
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.Proto, string(b), res.Header.Get("Via"), info.Reused
	}
	proto, body, via, _ := get()
	if proto != "HTTP/2.0" || body != "https" || via != "2 one" {
		t.Fatalf("first: %s %q via %q", proto, body, via)
	}
	if err := p.Apply(load("two"), time.Second); err != nil {
		t.Fatal(err)
	}
	proto, _, via, reused := get()
	if proto != "HTTP/2.0" || !reused || via != "2 two" {
		t.Fatalf("after reload: %s reused=%v via %q (want the same h2 connection, new config)", proto, reused, via)
	}
}

func TestTheAccessLogHasOneJSONLinePerRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	logFile := filepath.Join(t.TempDir(), "access.log")
	p, addr := startProxy(t, []string{upstreamAddr(up)}, proxyOpts{l7: "  access_log: {enabled: true, path: " + logFile + "}\n"})
	req, _ := http.NewRequest("GET", "http://"+addr+"/a/b", nil)
	req.Header.Set("X-Request-Id", "rid-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.Shutdown(ctx) // flushes the log
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines: %s", len(lines), b)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"route": "all", "pool": "p", "endpoint": upstreamAddr(up), "status": 200.0, "bytes_out": 5.0,
		"protocol": "HTTP/1.1", "client_ip": "127.0.0.1", "request_id": "rid-1", "path": "/a/b"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	for _, k := range []string{"duration_ms", "upstream_ms", "tls", "bytes_in"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("no %s in %s", k, lines[0])
		}
	}
}

func TestMetricsCountRequestsByRouteAndClass(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	dead := freePort(t)
	p, addr := startProxy(t, []string{upstreamAddr(up), dead}, proxyOpts{})
	for _, path := range []string{"/", "/", "/missing", "/", "/"} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	hist := 0
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			labels := ""
			for _, l := range m.Label {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			switch mf.GetName() {
			case "portcullis_http_requests_total", "portcullis_http_upstream_connect_errors_total":
				got[mf.GetName()+"{"+labels+"}"] = m.GetCounter().GetValue()
			case "portcullis_http_request_duration_seconds":
				hist++
				if labels == "route=all," && m.GetHistogram().GetSampleCount() != 5 {
					t.Errorf("histogram count %d, want 5", m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	for k, v := range map[string]float64{
		"portcullis_http_requests_total{code=2xx,route=all,}":    4,
		"portcullis_http_requests_total{code=4xx,route=all,}":    1,
		"portcullis_http_requests_total{code=5xx,route=all,}":    0,
		"portcullis_http_upstream_connect_errors_total{pool=p,}": 1,
	} {
		if got[k] < v || (v == 0 && got[k] != 0) || (k != "portcullis_http_upstream_connect_errors_total{pool=p,}" && got[k] != v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if hist != 2 {
		t.Errorf("%d duration histograms, want 2 (route all, no route)", hist)
	}
}

func TestAnUpstreamWhoseCertificateIsNotPinnedIsRefused(t *testing.T) {
	pinned := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer pinned.Close()
	// httptest's TLS servers all share one certificate: the other server
	// gets one of its own, for localhost.
	certFile, keyFile := selfSigned(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	other.StartTLS()
	defer other.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pinned.Certificate().Raw}), 0o644)
	_, addr := startProxy(t, []string{strings.TrimPrefix(other.URL, "https://")}, proxyOpts{
		pool: "      tls: {enabled: true, ca_file: " + ca + ", server_name: localhost}\n      retries: {attempts: 0}\n",
	})
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: a certificate outside the pinned CA must not be accepted", res.StatusCode)
	}
}

func TestAKeepAliveConnectionTheUpstreamClosedIsReplacedForAGet(t *testing.T) {
	// An upstream that answers one request per connection and then closes
	// it without saying so (no Connection: close), as servers with short
	// keep-alive timeouts do.
	getsAfterUpstreamCloses(t, func(net.Conn) {}, 0)
}

func TestAKeepAliveConnectionTheUpstreamHalfClosedIsReplacedForAGetAtOnce(t *testing.T) {
	// A lingering close, as Apache's event MPM closes idle keep-alive
	// connections: the upstream sends its FIN while the connection idles
	// in the pool, then keeps reading (and never resets). The next request
	// on it must see the end at once and go to a fresh connection, not
	// wait for the response-header timeout (a wait that skipped the read
	// before it would lose the FIN's wake-up).
	getsAfterUpstreamCloses(t, func(c net.Conn) {
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // lingers, reading what comes
	}, 2*time.Second)
}

// getsAfterUpstreamCloses makes three GETs through the proxy to an upstream
// that answers one request per connection and then ends it with end
// (the connection's Close follows) while the proxy holds it idle; each GET
// must get the upstream's answer, within the given time when it is not 0.
func getsAfterUpstreamCloses(t *testing.T, end func(net.Conn), within time.Duration) {
	t.Helper()
	up := serveConns(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(20 * time.Millisecond)
		end(c)
	})
	_, addr := startProxy(t, []string{up}, proxyOpts{pool: "      retries: {attempts: 0}\n"})
	for i := range 3 {
		start := time.Now()
		res, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "ok" || within > 0 && time.Since(start) > within {
			t.Fatalf("request %d: %d %q after %v", i, res.StatusCode, b, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond) // the upstream has closed by now
	}
}
