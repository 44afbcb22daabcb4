package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestH1AndH2ShareOneTLSPortByALPN(t *testing.T) {
	f := newTLSFixture(t)
	l := listener("web", "127.0.0.1:0")
	l.TLS = f.tls
	s := newTestSet(t, Options{}, l)
	url := "https://" + s.Addrs()["web"] + "/"
	tests := []struct {
		name, alpn, want string
	}{
		{"a client offering h2 gets HTTP/2", "h2", "hello web HTTP/2.0"},
		{"a client offering only http/1.1 gets HTTP/1.1", "http/1.1", "hello web HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(tt.alpn)
			defer c.CloseIdleConnections()
			if _, body := get(t, c, url); body != tt.want {
				t.Fatalf("body %q, want %q", body, tt.want)
			}
			if n := s.OpenConns()[map[string]string{"h2": "h2", "http/1.1": "h1"}[tt.alpn]]; n != 1 {
				t.Errorf("open connections %v", s.OpenConns())
			}
		})
	}
}

func TestH2CPriorKnowledgeAndUpgrade(t *testing.T) {
	l := listener("plain", "127.0.0.1:0")
	l.H2C = true
	s := newTestSet(t, Options{}, l)
	addr := s.Addrs()["plain"]

	t.Run("prior knowledge", func(t *testing.T) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		c := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		if _, body := get(t, c, "http://"+addr+"/"); body != "hello plain HTTP/2.0" {
			t.Fatalf("body %q", body)
		}
		if n := s.OpenConns()["h2"]; n != 1 {
			t.Errorf("open connections %v", s.OpenConns())
		}
	})
	t.Run("Upgrade: h2c", func(t *testing.T) {
		status, body := h2cUpgradeGet(t, addr)
		if status != "200" || body != "hello plain HTTP/2.0" {
			t.Fatalf("status %s body %q", status, body)
		}
	})
	t.Run("plain HTTP/1.1 still works", func(t *testing.T) {
		if _, body := get(t, http.DefaultClient, "http://"+addr+"/"); body != "hello plain HTTP/1.1" {
			t.Fatalf("body %q", body)
		}
	})
}

// h2cUpgradeGet does GET / with Upgrade: h2c (RFC 7540 §3.2) by hand, since
// Go's client does not, and reads the response on stream 1.
func h2cUpgradeGet(t *testing.T, addr string) (status, body string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAA\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		t.Fatalf("no 101: %q", line)
	}
	for {
		if l, _ := br.ReadString('\n'); l == "\r\n" || l == "" {
			break
		}
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	fr.WriteSettings()
	dec := hpack.NewDecoder(4096, nil)
	var b bytes.Buffer
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v (status %q body %q)", err, status, b.String())
		}
		switch fr := frame.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				c.Write([]byte{0, 0, 0, 4, 1, 0, 0, 0, 0}) // SETTINGS ACK
			}
		case *http2.HeadersFrame:
			if fr.StreamID == 1 {
				hf, _ := dec.DecodeFull(fr.HeaderBlockFragment())
				for _, h := range hf {
					if h.Name == ":status" {
						status = h.Value
					}
				}
				if fr.StreamEnded() {
					return status, b.String()
				}
			}
		case *http2.DataFrame:
			if fr.StreamID == 1 {
				b.Write(fr.Data())
				if fr.StreamEnded() {
					return status, b.String()
				}
			}
		}
	}
}

func TestAltSvcAdvertisesHTTP3OnTCPResponses(t *testing.T) {
	f := newTLSFixture(t)
	l3 := listener("h3", "127.0.0.1:0")
	l3.TLS, l3.HTTP3 = f.tls, true
	l2 := listener("noh3", "127.0.0.1:0")
	l2.TLS = f.tls
	l3.Address, l2.Address = freePort(t), freePort(t)
	s := newTestSet(t, Options{}, l3, l2)
	c := f.client("h2")
	defer c.CloseIdleConnections()
	addr := s.Addrs()["h3"]
	_, port, _ := net.SplitHostPort(addr)
	resp, _ := get(t, c, "https://"+addr+"/")
	if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"; ma=86400`; got != want {
		t.Errorf("Alt-Svc %q, want %q", got, want)
	}
	resp, _ = get(t, c, "https://"+s.Addrs()["noh3"]+"/")
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("Alt-Svc %q on a listener without http3", got)
	}
}

func TestConnectionIDsStartWithTheNodeID(t *testing.T) {
	for _, node := range []uint8{0, 7, 255} {
		g := connIDGenerator{node: node}
		seen := map[string]bool{}
		for range 100 {
			id, err := g.GenerateConnectionID()
			if err != nil {
				t.Fatal(err)
			}
			b := id.Bytes()
			if len(b) != g.ConnectionIDLen() || b[0] != node {
				t.Fatalf("id %x: want %d bytes starting with %02x", b, g.ConnectionIDLen(), node)
			}
			if seen[string(b)] {
				t.Fatalf("id %x issued twice", b)
			}
			seen[string(b)] = true
		}
	}
}

// udpProxy relays one client's datagrams to server and records the first
// byte of the destination connection ID of every short-header packet the
// client sends: those IDs were issued by the server.
type udpProxy struct {
	pc     net.PacketConn
	mu     sync.Mutex
	firsts map[byte]int
}

func newUDPProxy(t *testing.T, server string) *udpProxy {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{pc: pc, firsts: map[byte]int{}}
	t.Cleanup(func() { pc.Close(); up.Close() })
	var client net.Addr
	var cmu sync.Mutex
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			cmu.Lock()
			client = from
			cmu.Unlock()
			if n > 1 && buf[0]&0x80 == 0 { // short header: DCID follows the first byte
				p.mu.Lock()
				p.firsts[buf[1]]++
				p.mu.Unlock()
			}
			up.Write(buf[:n])
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			cmu.Lock()
			to := client
			cmu.Unlock()
			if to != nil {
				pc.WriteTo(buf[:n], to)
			}
		}
	}()
	return p
}

func TestHTTP3(t *testing.T) {
	const node = 0x2a
	f := newTLSFixture(t)
	l := listener("web", "127.0.0.1:0")
	l.TLS, l.HTTP3 = f.tls, true
	s := newTestSet(t, Options{NodeID: node}, l)
	udpAddr := s.UDPAddrs()["web"]

	t.Run("quic-go's client gets 200 and the connection IDs carry the node id", func(t *testing.T) {
		proxy := newUDPProxy(t, udpAddr)
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.pool, ServerName: "a.example.com"}, QUICConfig: &quic.Config{}}
		defer tr.Close()
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		for range 3 {
			resp, body := get(t, c, "https://"+proxy.pc.LocalAddr().String()+"/")
			if resp.StatusCode != 200 || body != "hello web HTTP/3.0" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
		}
		if n := s.OpenConns()["h3"]; n != 1 {
			t.Errorf("open connections %v", s.OpenConns())
		}
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		if len(proxy.firsts) != 1 || proxy.firsts[node] == 0 {
			t.Fatalf("first bytes of server connection IDs in short-header packets: %v, want only %02x", proxy.firsts, node)
		}
	})
	t.Run("ngtcp2's gtlsclient gets the body", func(t *testing.T) {
		bin, err := exec.LookPath("gtlsclient")
		if err != nil {
			t.Skip("gtlsclient not installed (Debian package ngtcp2-client)")
		}
		host, port, _ := net.SplitHostPort(udpAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dir := t.TempDir()
		out, err := exec.CommandContext(ctx, bin, "--quiet", "--exit-on-all-streams-close", "--timeout=5s",
			"--download="+dir, host, port, "https://a.example.com:"+port+"/hello").CombinedOutput()
		got, rerr := os.ReadFile(filepath.Join(dir, "hello"))
		if err != nil || rerr != nil || string(got) != "hello web HTTP/3.0" {
			t.Fatalf("gtlsclient: %v, body %q (%v)\n%s", err, got, rerr, out)
		}
	})
}

func TestApply(t *testing.T) {
	t.Run("an unchanged listener keeps its h1 and h2 connections", func(t *testing.T) {
		f := newTLSFixture(t)
		tl := listener("tls", freePort(t))
		tl.TLS = f.tls
		s := newTestSet(t, Options{}, tl)
		addr := s.Addrs()["tls"]
		h1, h2 := f.client("http/1.1"), f.client("h2")
		defer h1.CloseIdleConnections()
		defer h2.CloseIdleConnections()
		url := "https://" + addr + "/"
		for _, c := range []*http.Client{h1, h2} {
			get(t, c, url)
		}
		// A reload that adds a listener and swaps a certificate.
		c, k, _ := f.ca.issue(t, "default.test")
		writeCert(t, f.dir, "default", c, k)
		if err := s.Apply([]config.Listener{tl, listener("more", "127.0.0.1:0")}, time.Second); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*http.Client{"h1": h1, "h2": h2} {
			var reused bool
			req, _ := http.NewRequest("GET", url, nil)
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
			}))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			resp.Body.Close()
			if !reused {
				t.Errorf("%s: the connection did not survive the apply", name)
			}
		}
		if s.Addrs()["more"] == "" {
			t.Error("the added listener is not serving")
		}
	})
	t.Run("a bind failure leaves the old listeners serving and closes what it opened", func(t *testing.T) {
		s := newTestSet(t, Options{}, listener("old", "127.0.0.1:0"))
		old := s.Addrs()["old"]
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		fresh := freePort(t)
		err = s.Apply([]config.Listener{listener("old", "127.0.0.1:0"), listener("fresh", fresh), listener("clash", taken.Addr().String())}, time.Second)
		if err == nil || !strings.Contains(err.Error(), "clash") {
			t.Fatalf("apply: %v", err)
		}
		if _, body := get(t, http.DefaultClient, "http://"+old+"/"); body != "hello old HTTP/1.1" {
			t.Fatalf("old listener: %q", body)
		}
		if c, err := net.Dial("tcp", fresh); err == nil {
			c.Close()
			t.Fatal("the socket opened by the failed apply is still open")
		}
	})
	t.Run("a removed listener stops accepting", func(t *testing.T) {
		s := newTestSet(t, Options{}, listener("gone", "127.0.0.1:0"))
		addr := s.Addrs()["gone"]
		if err := s.Apply(nil, time.Second); err != nil {
			t.Fatal(err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("still accepting")
		}
	})
	t.Run("a changed setting starts a new front on the same socket", func(t *testing.T) {
		l := listener("a", freePort(t))
		s := newTestSet(t, Options{}, l)
		l.Name = "b"
		if err := s.Apply([]config.Listener{l}, time.Second); err != nil {
			t.Fatal(err)
		}
		if _, body := get(t, http.DefaultClient, "http://"+l.Address+"/"); body != "hello b HTTP/1.1" {
			t.Fatalf("body %q", body)
		}
	})
}

func TestFreebindBindsAnAddressNotOnAnyInterface(t *testing.T) {
	// 192.0.2.0/24 is TEST-NET-1: configured nowhere. Only bind, no traffic.
	const addr = "192.0.2.77:0"
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Skip("192.0.2.77 is bindable without freebind here (ip_nonlocal_bind?)")
	}
	l := listener("vip", addr)
	l.Freebind = true
	s := newTestSet(t, Options{}, l)
	if got := s.Addrs()["vip"]; !strings.HasPrefix(got, "192.0.2.77:") {
		t.Fatalf("bound %q", got)
	}
	l2 := listener("vip-no-freebind", "192.0.2.78:"+strconv.Itoa(40000))
	if err := s.Apply([]config.Listener{l, l2}, time.Second); err == nil {
		t.Fatal("binding a foreign address without freebind succeeded")
	}
}
