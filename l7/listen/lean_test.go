package listen

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// Cleartext listeners without h2c are served by the lean HTTP/1.1 server
// (l7/internal/h1). These tests hold it to what net/http gave the Set.

func newSetWith(t *testing.T, h http.Handler, ls ...config.Listener) *Set {
	t.Helper()
	s := NewSet(h, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.Apply(ls, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// rawConn is one client connection with its reader.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip writes raw and reads one response (status, body).
func (c *rawConn) roundTrip(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", raw, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// closedWithin reports whether the server closes c within d.
func (c *rawConn) closedWithin(d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.ReadByte()
	return err != nil && !isTimeoutErr(err)
}

func isTimeoutErr(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	e2etest.Until(t, what, 5*time.Second, cond)
}

func TestCleartextH1IsServedByTheLeanServer(t *testing.T) {
	s := newTestSet(t, Options{}, listener("plain", "127.0.0.1:0"))
	addr := s.Addrs()["plain"]
	c := dialRaw(t, addr)
	for i := range 3 {
		res, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if res.StatusCode != 200 || body != "hello plain HTTP/1.1" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
		// net/http sniffs a Content-Type by itself; the lean server
		// leaves it to the upstream's answer.
		if res.Header.Get("Content-Type") != "" {
			t.Fatal("served by net/http, not the lean server")
		}
	}
	if n := s.OpenConns()["h1"]; n != 1 {
		t.Errorf("open connections %v, want h1=1", s.OpenConns())
	}
	c.Close()
	waitFor(t, "the closed connection to be uncounted", func() bool { return s.OpenConns()["h1"] == 0 })
}

func TestServerStdlibIsTheEscapeHatch(t *testing.T) {
	l := listener("std", "127.0.0.1:0")
	l.Server = "stdlib"
	s := newTestSet(t, Options{}, l)
	c := dialRaw(t, s.Addrs()["std"])
	res, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if body != "hello std HTTP/1.1" || res.Header.Get("Content-Type") == "" {
		t.Fatalf("body %q, Content-Type %q: want net/http's answer", body, res.Header.Get("Content-Type"))
	}
	if n := s.OpenConns()["h1"]; n != 1 {
		t.Errorf("open connections %v", s.OpenConns())
	}
	// Switching the server is a serving change: a new front, same socket.
	l.Server = "lean"
	if err := s.Apply([]config.Listener{l}, time.Second); err != nil {
		t.Fatal(err)
	}
	res, _ = dialRaw(t, s.Addrs()["std"]).roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if res.Header.Get("Content-Type") != "" {
		t.Fatal("still net/http after server: lean")
	}
}

// gate is a handler that holds requests to /slow until released and
// reports how each ended.
type gate struct {
	release   chan struct{}
	started   chan struct{}
	cancelled chan struct{}
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), started: make(chan struct{}, 16), cancelled: make(chan struct{}, 16)}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/slow" {
		io.WriteString(w, "fast "+ListenerName(r.Context()))
		return
	}
	io.Copy(io.Discard, r.Body) // as the proxy: the body goes upstream first
	g.started <- struct{}{}
	select {
	case <-g.release:
		w.Header().Set("Content-Length", "4")
		io.WriteString(w, "done")
	case <-r.Context().Done():
		g.cancelled <- struct{}{}
	}
}

func TestLeanGracefulShutdown(t *testing.T) {
	t.Run("idle connections close at once, in-flight requests finish", func(t *testing.T) {
		g := newGate()
		s := newSetWith(t, g, listener("web", "127.0.0.1:0"))
		addr := s.Addrs()["web"]
		idle := dialRaw(t, addr)
		idle.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		busy := dialRaw(t, addr)
		io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-g.started
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done <- s.Shutdown(ctx)
		}()
		if !idle.closedWithin(2 * time.Second) {
			t.Fatal("the idle keep-alive connection was not closed by Shutdown")
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatal("still accepting during the drain")
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) with a request in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(g.release)
		res, err := http.ReadResponse(busy.br, nil)
		if err != nil {
			t.Fatalf("the in-flight request did not finish: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		if string(b) != "done" || !res.Close {
			t.Fatalf("body %q, Connection: close %v", b, res.Close)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if !busy.closedWithin(time.Second) {
			t.Fatal("the connection stayed open after its last response")
		}
		if n := s.OpenConns()["h1"]; n != 0 {
			t.Errorf("open connections %v after Shutdown", s.OpenConns())
		}
	})
	t.Run("past the drain, requests are cancelled and connections closed", func(t *testing.T) {
		g := newGate()
		s := newSetWith(t, g, listener("web", "127.0.0.1:0"))
		busy := dialRaw(t, s.Addrs()["web"])
		io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-g.started
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); err == nil {
			t.Fatal("Shutdown reported a clean drain with a request stuck")
		}
		select {
		case <-g.cancelled:
		case <-time.After(2 * time.Second):
			t.Fatal("the stuck request's context was not cancelled")
		}
		if !busy.closedWithin(2 * time.Second) {
			t.Fatal("the stuck connection was not closed")
		}
		if n := s.OpenConns()["h1"]; n != 0 {
			t.Errorf("open connections %v", s.OpenConns())
		}
	})
	t.Run("a removed listener drains its requests", func(t *testing.T) {
		g := newGate()
		s := newSetWith(t, g, listener("web", "127.0.0.1:0"))
		busy := dialRaw(t, s.Addrs()["web"])
		io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-g.started
		if err := s.Apply(nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		close(g.release)
		res, err := http.ReadResponse(busy.br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("in-flight request on a removed listener: %v", err)
		}
	})
}

func TestLeanContextIsCancelledWhenTheClientGoesAway(t *testing.T) {
	g := newGate()
	s := newSetWith(t, g, listener("web", "127.0.0.1:0"))
	for _, name := range []string{"no body", "with a body"} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, s.Addrs()["web"])
			req := "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
			if name == "with a body" {
				req = "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
			}
			io.WriteString(c, req)
			<-g.started
			c.Close()
			select {
			case <-g.cancelled:
			case <-time.After(3 * time.Second):
				t.Fatal("the handler's context outlived its client")
			}
		})
	}
	t.Run("a pipelined next request is not mistaken for a hang-up", func(t *testing.T) {
		c := dialRaw(t, s.Addrs()["web"])
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		<-g.started
		select {
		case <-g.cancelled:
			t.Fatal("cancelled while the client waits")
		case <-time.After(1500 * time.Millisecond):
		}
		g.release <- struct{}{}
		for _, want := range []string{"done", "fast web"} {
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			if string(b) != want {
				t.Fatalf("body %q, want %q", b, want)
			}
		}
	})
}

func TestLeanLimits(t *testing.T) {
	l := listener("web", "127.0.0.1:0")
	l.ReadHeaderTimeout = config.Duration(300 * time.Millisecond)
	l.IdleTimeout = config.Duration(time.Second)
	l.MaxHeaderBytes = 32 << 10 // above the pooled 16 KiB buffer
	s := newTestSet(t, Options{}, l)
	addr := s.Addrs()["web"]

	t.Run("read_header_timeout cuts a slow head", func(t *testing.T) {
		c := dialRaw(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		start := time.Now()
		if !c.closedWithin(3 * time.Second) {
			t.Fatal("a half-sent head kept the connection")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("idle_timeout closes a keep-alive connection", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		start := time.Now()
		if !c.closedWithin(4 * time.Second) {
			t.Fatal("the idle connection was kept")
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Fatalf("closed after %v, before idle_timeout", d)
		}
	})
	t.Run("max_header_bytes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			raw  string
			want int
		}{
			{"a 24 KiB head fits in 32 KiB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 24<<10) + "\r\n\r\n", 200},
			{"a 40 KiB head is 431", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431},
			{"a 40 KiB target is 414", "GET /" + strings.Repeat("a", 40<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialRaw(t, addr)
				res, _ := c.roundTrip(t, tc.raw)
				if res.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
				}
			})
		}
	})
}

func TestLeanUpgradeByHijack(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			io.WriteString(w, "no upgrade")
			return
		}
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		go func() {
			defer c.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			io.Copy(c, rw) // echo, including what was buffered
		}()
	})
	s := newSetWith(t, h, listener("web", "127.0.0.1:0"))
	c := dialRaw(t, s.Addrs()["web"])
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly ")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	io.WriteString(c, "late")
	buf := make([]byte, len("early late"))
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "early late" {
		t.Fatalf("echoed %q, %v", buf, err)
	}
	if n := s.OpenConns()["h1"]; n != 1 {
		t.Errorf("open connections %v with a tunnel up", s.OpenConns())
	}
	c.Close()
	waitFor(t, "the tunnel to be uncounted", func() bool { return s.OpenConns()["h1"] == 0 })
}

func TestLeanApplyKeepsConnectionsOfUnchangedListeners(t *testing.T) {
	g := newGate()
	a := listener("a", freePort(t))
	s := newSetWith(t, g, a)
	kept := dialRaw(t, a.Address)
	if _, body := kept.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); body != "fast a" {
		t.Fatalf("body %q", body)
	}
	if err := s.Apply([]config.Listener{a, listener("b", "127.0.0.1:0")}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, body := kept.roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); body != "fast a" {
		t.Fatalf("after apply: %q", body)
	}
	// A changed setting: the old front drains (an in-flight request
	// finishes on it), new connections get the new front.
	io.WriteString(kept, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-g.started
	renamed := a
	renamed.Name = "a2"
	if err := s.Apply([]config.Listener{renamed}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, body := dialRaw(t, a.Address).roundTrip(t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); body != "fast a2" {
		t.Fatalf("new connection: %q", body)
	}
	close(g.release)
	res, err := http.ReadResponse(kept.br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the draining request: %v %v", res, err)
	}
	io.Copy(io.Discard, res.Body)
	if !kept.closedWithin(2 * time.Second) {
		t.Fatal("the old front kept its connection after the drain")
	}
}

// recorder is the test upstream: it records every request that reached
// the handler (after reading its whole body).
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.seen = append(rc.seen, r.Method+" "+r.URL.Path+" "+string(b))
	rc.mu.Unlock()
	w.Header().Set("Content-Length", "2")
	io.WriteString(w, "ok")
}

func (rc *recorder) all() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.seen...)
}

// TestLeanRejectsSmuggling sends each malformed request followed by a
// second request that a lenient parser would see as a new message. Every
// case must get one 4xx/5xx answer, the connection must close, and the
// handler must see neither the malformed request nor /smuggled.
func TestLeanRejectsSmuggling(t *testing.T) {
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name, raw string
		want      int
	}{
		{"CL and TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n", 400},
		{"duplicate CL, different", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"duplicate CL, equal", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"CL list", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
		{"CL with a sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
		{"CL in hex", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", 400},
		{"CL overflowing", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"TE xchunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501},
		{"TE chunked, identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501},
		{"TE twice", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE with a space before the colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE with a tab before the colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE folded", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"chunk size with a sign", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n", 400},
		{"chunk size with a space", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size 0x", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size overflowing", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size with a bare LF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"chunk data longer than its size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400},
		{"chunk without its CRLF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n", 400},
		{"trailer without a colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n", 400},
		{"NUL in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"CR in a value", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
		{"bare LF ending a field", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"bare LF ending the request line", "GET /a HTTP/1.1\nHost: x\r\n\r\n", 400},
		{"bare LF ending the head", "GET /a HTTP/1.1\r\nHost: x\n\n", 400},
		{"NUL in a name", "GET /a HTTP/1.1\r\nHost: x\r\nX-\x00A: a\r\n\r\n", 400},
		{"empty name", "GET /a HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", 400},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"Host with a path", "GET /a HTTP/1.1\r\nHost: x/y\r\n\r\n", 400},
		{"space in the target", "GET /a /b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"NUL in the target", "GET /a\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"lower-case version", "GET /a http/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/1.2", "GET /a HTTP/1.2\r\nHost: x\r\n\r\n", 505},
		{"method with a slash", "GE/T /a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"Expect other than 100-continue", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
	}
	rec := &recorder{}
	s := newSetWith(t, rec, listener("web", "127.0.0.1:0"))
	addr := s.Addrs()["web"]
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, tc.raw+next)
			res, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, res.Body)
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
			if !c.closedWithin(time.Second) {
				t.Error("the connection stayed open after a malformed request")
			}
		})
	}
	if got := rec.all(); len(got) > 0 {
		t.Fatalf("the handler received %q", got)
	}
	// The same connection-level check for a well-formed chunked request
	// with trailers: one request, then the next one, nothing else.
	c := dialRaw(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: GET /smuggled HTTP/1.1\r\n\r\n"+next)
	for range 2 {
		res, err := http.ReadResponse(c.br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%v %v", res, err)
		}
		io.Copy(io.Discard, res.Body)
	}
	if got := rec.all(); strings.Join(got, "|") != "POST /a abc|GET /smuggled " {
		t.Fatalf("handler saw %q", got)
	}
}
