package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// fixture is a daemon with three listeners in front of three upstreams.
type fixture struct {
	d                           *daemon
	ca                          *testCA
	tlsPort, h2cPort, plainPort int
	h1, h2c, h2tls              *upstream
}

// fixtureL7 is the l7 section of the fixture's config. The default route
// (no match) goes to the HTTP/1.1 upstream, whose answers are longer than
// 5 bytes, as h2spec wants.
func (f *fixture) l7(certFile, keyFile string, extraRoutes string) string {
	return fmt.Sprintf(`l7:
  listeners:
    - name: tls
      address: 127.0.0.1:%d
      http3: true
      tls:
        certificates:
          - cert_file: %s
            key_file: %s
    - name: h2c
      address: 127.0.0.1:%d
      h2c: true
    - name: plain
      address: 127.0.0.1:%d
  pools:
    - name: h1
      endpoints:
        - address: %s
    - name: h2c
      protocol: h2c
      endpoints:
        - address: %s
    - name: h2tls
      protocol: h2
      tls:
        enabled: true
        ca_file: %s
      endpoints:
        - address: %s
  routes:
    - name: to-h1
      pool: h1
      match: {path_prefix: /h1}
    - name: to-h2c
      pool: h2c
      match: {path_prefix: /h2c}
    - name: to-h2tls
      pool: h2tls
      match: {path_prefix: /h2tls}
    - name: grpc
      pool: h2c
      match: {path_prefix: /grpc}
    - name: default
      pool: h1
%s`, f.tlsPort, certFile, keyFile, f.h2cPort, f.plainPort,
		f.h1.addr, f.h2c.addr, f.ca.pemFile, f.h2tls.addr, extraRoutes)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{ca: newCA(t, dir)}
	_, _, upCert := f.ca.issue(t, dir, "upstream", "upstream.test")
	certFile, keyFile, _ := f.ca.issue(t, dir, "proxy", "proxy.test")
	f.h1 = newUpstream(t, "h1", "http1", nil)
	f.h2c = newUpstream(t, "h2c", "h2c", nil)
	f.h2tls = newUpstream(t, "h2tls", "h2", &upCert)
	f.tlsPort, f.h2cPort, f.plainPort = freePort(t), freePort(t), freePort(t)
	f.d = startDaemon(t, dir, f.l7(certFile, keyFile, ""))
	return f
}

// client is one way of talking to the daemon.
type client struct {
	name    string // "h3 client" etc.
	base    string // scheme://host:port
	proto   string // the response's Proto
	xfProto string // X-Forwarded-Proto the upstream should see
	c       *http.Client
}

func (f *fixture) clients(t *testing.T) []client {
	t.Helper()
	tlsConf := func(alpn ...string) *tls.Config {
		return &tls.Config{RootCAs: f.ca.pool, NextProtos: alpn}
	}
	var h1, h2, h2c http.Protocols
	h1.SetHTTP1(true)
	h2.SetHTTP2(true)
	h2c.SetUnencryptedHTTP2(true)
	h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.pool, ServerName: "proxy.test"}, QUICConfig: &quic.Config{}}
	cs := []client{
		{"h1 client", fmt.Sprintf("http://127.0.0.1:%d", f.plainPort), "HTTP/1.1", "http",
			&http.Client{Transport: &http.Transport{Protocols: &h1}}},
		{"h1-over-TLS client", fmt.Sprintf("https://127.0.0.1:%d", f.tlsPort), "HTTP/1.1", "https",
			&http.Client{Transport: &http.Transport{Protocols: &h1, TLSClientConfig: tlsConf("http/1.1")}}},
		{"h2 client", fmt.Sprintf("https://127.0.0.1:%d", f.tlsPort), "HTTP/2.0", "https",
			&http.Client{Transport: &http.Transport{Protocols: &h2, TLSClientConfig: tlsConf("h2")}}},
		{"h2c client", fmt.Sprintf("http://127.0.0.1:%d", f.h2cPort), "HTTP/2.0", "http",
			&http.Client{Transport: &http.Transport{Protocols: &h2c}}},
		{"h3 client", fmt.Sprintf("https://127.0.0.1:%d", f.tlsPort), "HTTP/3.0", "https",
			&http.Client{Transport: h3}},
	}
	for i := range cs {
		cs[i].c.Timeout = 10 * time.Second
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.c.CloseIdleConnections()
		}
		h3.Close()
	})
	return cs
}

func slug(s string) string {
	return strings.NewReplacer(" ", "-", "/", "-").Replace(s)
}

// TestProtocolsThroughTheDaemon: every client protocol reaches every
// upstream protocol through `portcullis run`, HTTP/3 is advertised and
// served to an independent client, and trailers come back.
func TestProtocolsThroughTheDaemon(t *testing.T) {
	f := newFixture(t)
	clients := f.clients(t)

	t.Run("matrix", func(t *testing.T) {
		ups := []struct {
			name, prefix string
			u            *upstream
			proto        string
			tls          bool
		}{
			{"an h1 upstream", "/h1", f.h1, "HTTP/1.1", false},
			{"an h2c upstream", "/h2c", f.h2c, "HTTP/2.0", false},
			{"an h2-TLS upstream", "/h2tls", f.h2tls, "HTTP/2.0", true},
		}
		for _, c := range clients {
			for _, up := range ups {
				name := c.name + " to " + up.name
				t.Run(name, func(t *testing.T) {
					path := up.prefix + "/" + slug(name)
					resp, err := c.c.Get(c.base + path + "?q=1")
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatalf("reading the body: %v", err)
					}
					want := up.u.name + " " + path
					if resp.StatusCode != 200 || string(body) != want {
						t.Fatalf("%s %s: status %d body %q, want 200 %q", resp.Proto, path, resp.StatusCode, body, want)
					}
					if resp.Proto != c.proto {
						t.Errorf("answered over %s, want %s", resp.Proto, c.proto)
					}
					s, ok := up.u.saw(path)
					if !ok {
						t.Fatalf("upstream %s did not see %s", up.u.name, path)
					}
					if s.Method != "GET" || s.Path != path || s.Proto != up.proto || s.TLS != up.tls {
						t.Errorf("upstream saw %s %s over %s (TLS %v), want GET %s over %s (TLS %v)",
							s.Method, s.Path, s.Proto, s.TLS, path, up.proto, up.tls)
					}
					if s.XFF != "127.0.0.1" || s.XFProto != c.xfProto {
						t.Errorf("upstream saw X-Forwarded-For %q X-Forwarded-Proto %q, want 127.0.0.1 and %s", s.XFF, s.XFProto, c.xfProto)
					}
					if host := strings.TrimPrefix(strings.TrimPrefix(c.base, "http://"), "https://"); s.Host != host {
						t.Errorf("upstream saw Host %q, want the client's %q", s.Host, host)
					}

					// A 256 KiB request body and a 1 MiB answer stream
					// through whole.
					post := path + "/post"
					reqBody := pattern(256 << 10)
					resp, err = c.c.Post(c.base+post+"?size="+strconv.Itoa(1<<20), "application/octet-stream", bytes.NewReader(reqBody))
					if err != nil {
						t.Fatalf("POST: %v", err)
					}
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					wantBody := append([]byte(up.u.name+" "+post+"\n"), pattern(1<<20)...)
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, wantBody) {
						t.Fatalf("POST %s: status %d, %d bytes (%v), want 200 and %d bytes", post, resp.StatusCode, len(body), err, len(wantBody))
					}
					if s, ok := up.u.saw(post); !ok || s.Method != "POST" || s.Body != string(reqBody) {
						t.Errorf("upstream saw the POST %v: method %q, %d body bytes, want %d", ok, s.Method, len(s.Body), len(reqBody))
					}
				})
			}
		}
	})

	t.Run("Alt-Svc is advertised on the TCP responses of the http3 listener", func(t *testing.T) {
		want := `h3=":` + strconv.Itoa(f.tlsPort) + `"`
		for _, c := range clients {
			if c.proto == "HTTP/3.0" {
				continue
			}
			resp, err := c.c.Get(c.base + "/h1/alt-svc")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := resp.Header.Get("Alt-Svc")
			switch {
			case c.xfProto == "https" && !strings.HasPrefix(got, want):
				t.Errorf("%s: Alt-Svc %q, want %s…", c.name, got, want)
			case c.xfProto == "http" && got != "":
				t.Errorf("%s: Alt-Svc %q on a listener without http3", c.name, got)
			default:
				t.Logf("%s: Alt-Svc %q", c.name, got)
			}
		}
	})

	t.Run("ngtcp2's gtlsclient gets the body over HTTP/3", func(t *testing.T) {
		bin, err := exec.LookPath("gtlsclient")
		if err != nil {
			t.Skip("gtlsclient not installed (Debian package ngtcp2-client)")
		}
		port := strconv.Itoa(f.tlsPort)
		for _, up := range []struct {
			prefix, name string
			u            *upstream
		}{{"/h1", "h1", f.h1}, {"/h2c", "h2c", f.h2c}, {"/h2tls", "h2tls", f.h2tls}} {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			// gtlsclient (ngtcp2 1.x) has no CA option and does not verify
			// the server's certificate by default; it checks the protocol.
			out, err := exec.CommandContext(ctx, bin, "--quiet", "--exit-on-all-streams-close", "--timeout=5s",
				"--download="+dir, "127.0.0.1", port, "https://proxy.test:"+port+up.prefix+"/gtlsclient").CombinedOutput()
			cancel()
			got, rerr := os.ReadFile(filepath.Join(dir, "gtlsclient"))
			want := up.name + " " + up.prefix + "/gtlsclient"
			if err != nil || rerr != nil || string(got) != want {
				t.Fatalf("gtlsclient to %s: %v, body %q (%v), want %q\n%s", up.name, err, got, rerr, want, out)
			}
			if s, ok := up.u.saw(up.prefix + "/gtlsclient"); !ok || s.XFProto != "https" {
				t.Errorf("upstream %s: saw the request %v, X-Forwarded-Proto %q", up.name, ok, s.XFProto)
			}
		}
	})

	t.Run("gRPC-style trailers come back through the proxy", func(t *testing.T) {
		ups := []struct {
			name, prefix string
			u            *upstream
			proto        string
		}{
			{"an h2c gRPC upstream", "/grpc", f.h2c, "HTTP/2.0"},
			{"an h2-TLS gRPC upstream", "/h2tls/grpc", f.h2tls, "HTTP/2.0"},
			// HTTP/1.1 carries trailers after a chunked body.
			{"an h1 upstream with trailers", "/h1/grpc", f.h1, "HTTP/1.1"},
		}
		for _, c := range clients {
			if c.proto == "HTTP/1.1" {
				continue // gRPC needs HTTP/2 or HTTP/3 between the client and the proxy
			}
			for _, up := range ups {
				t.Run(c.name+" to "+up.name, func(t *testing.T) {
					path := up.prefix + "/echo.Echo/Say-" + slug(c.name)
					msg := grpcFrame("hello from " + c.name)
					req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(msg))
					req.Header.Set("Content-Type", "application/grpc")
					req.Header.Set("Te", "trailers")
					resp, err := c.c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatalf("reading the body: %v", err)
					}
					if resp.StatusCode != 200 || !bytes.Equal(body, msg) || resp.Header.Get("Content-Type") != "application/grpc" {
						t.Fatalf("status %d content-type %q body %q, want 200 application/grpc %q",
							resp.StatusCode, resp.Header.Get("Content-Type"), body, msg)
					}
					if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
						t.Errorf("trailer Grpc-Status %q, want 0 (trailers %v, headers %v)", got, resp.Trailer, resp.Header)
					}
					if got := resp.Trailer.Get("Grpc-Message"); got != "all good" {
						t.Errorf("trailer Grpc-Message %q, want \"all good\" (trailers %v)", got, resp.Trailer)
					}
					s, ok := up.u.saw(path)
					if !ok {
						t.Fatalf("the upstream did not see %s", path)
					}
					if s.Method != "POST" || s.Proto != up.proto || s.ContentType != "application/grpc" || s.TE != "trailers" || s.Body != string(msg) {
						t.Errorf("upstream saw %s over %s, content-type %q, TE %q, body %q", s.Method, s.Proto, s.ContentType, s.TE, s.Body)
					}
				})
			}
		}
	})
}
