package listen

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestThePerAddressTableDropsAnAddressAtZero(t *testing.T) {
	tab := newPerIPTable()
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for range 2 {
		if !tab.acquire(a, 2) {
			t.Fatal("refused under the limit")
		}
	}
	if tab.acquire(a, 2) {
		t.Fatal("a third connection was let in with a limit of 2")
	}
	if !tab.acquire(b, 2) || !tab.acquire(a, 0) {
		t.Fatal("another address, or no limit, was refused")
	}
	if tab.count(a) != 3 || tab.size() != 2 {
		t.Fatalf("count %d size %d", tab.count(a), tab.size())
	}
	for range 3 {
		tab.release(a)
	}
	tab.release(b)
	if tab.size() != 0 {
		t.Fatalf("%d addresses left at zero connections", tab.size())
	}
}

func TestConcurrentAcceptsAndClosesLeaveTheTableEmpty(t *testing.T) {
	tab := newPerIPTable()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			a := netip.AddrFrom4([4]byte{10, 0, byte(g % 3), 1})
			for range 1000 {
				if tab.acquire(a, 1000) {
					tab.release(a)
				}
			}
		})
	}
	wg.Wait()
	if tab.size() != 0 {
		t.Fatalf("%d addresses left", tab.size())
	}
}

func TestAcceptAllocatesNothingForThePerAddressCount(t *testing.T) {
	tab := newPerIPTable()
	a := netip.MustParseAddr("192.0.2.7")
	tab.acquire(a, 0) // the entry exists: the steady state of a busy client
	if n := testing.AllocsPerRun(1000, func() {
		tab.acquire(a, 10)
		tab.release(a)
	}); n != 0 {
		t.Fatalf("%v allocations per accept and close", n)
	}
}

// perIPClient opens a connection from a source address and proves it is
// served with one request; it reports false when the listener closed it
// instead (without an answer).
type perIPClient func(t *testing.T, addr, from string) (net.Conn, bool)

// dialFrom connects from the source address from. A refused connection
// can already fail here: the reset may arrive before connect(2) returns.
func dialFrom(t *testing.T, addr, from string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// getOn sends GET / on c (cleartext or TLS) and reports whether an answer
// came back.
func getOn(c net.Conn) bool {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

func TestConnectionsBeyondMaxConnsPerIPAreClosedAtAccept(t *testing.T) {
	fx := newTLSFixture(t)
	cleartext := func(t *testing.T, addr, from string) (net.Conn, bool) {
		c, err := dialFrom(t, addr, from)
		return c, err == nil && getOn(c)
	}
	overTLS := func(t *testing.T, addr, from string) (net.Conn, bool) {
		c, err := dialFrom(t, addr, from)
		if err != nil {
			return nil, false
		}
		tc := tls.Client(c, &tls.Config{RootCAs: fx.ca.pool, ServerName: "default.test", NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			// Refused before TLS: the handshake finds the connection closed.
			return tc, false
		}
		return tc, getOn(tc)
	}
	tests := []struct {
		name   string
		tune   func(*config.Listener)
		client perIPClient
	}{
		{"lean HTTP/1.1", func(*config.Listener) {}, cleartext},
		{"net/http HTTP/1.1 (server: stdlib)", func(l *config.Listener) { l.Server = "stdlib" }, cleartext},
		{"h2c listener (net/http)", func(l *config.Listener) { l.H2C = true }, cleartext},
		{"TLS, refused before the handshake", func(l *config.Listener) { l.TLS = fx.tls }, overTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listener("web", "127.0.0.1:0")
			l.MaxConnsPerIP = 2
			tt.tune(&l)
			s := newTestSet(t, Options{}, l)
			addr := s.Addrs()["web"]
			var open []net.Conn
			for i := range 2 {
				c, ok := tt.client(t, addr, "127.0.0.1")
				if !ok {
					t.Fatalf("connection %d under the limit was refused", i+1)
				}
				open = append(open, c)
			}
			if _, ok := tt.client(t, addr, "127.0.0.1"); ok {
				t.Fatal("a third connection from the same address was served")
			}
			if n := s.RefusedConns()["web"]; n != 1 {
				t.Fatalf("refused counter %d, want 1", n)
			}
			if _, ok := tt.client(t, addr, "127.0.0.2"); !ok {
				t.Fatal("another client address was refused")
			}
			// The first two are still served: the limit refused only the
			// newcomer.
			if !getOn(open[0]) {
				t.Fatal("an established connection stopped being served")
			}

			// A closed connection gives its place back.
			sk := s.socketOf(l.Address)
			ip := netip.MustParseAddr("127.0.0.1")
			open[1].Close()
			waitFor(t, "the closed connection to be uncounted", func() bool { return sk.perIP.count(ip) == 1 })
			c, ok := tt.client(t, addr, "127.0.0.1")
			if !ok {
				t.Fatal("refused after a connection closed")
			}

			// A reload raises the limit without a new front: the open
			// connections stay and count.
			l.MaxConnsPerIP = 3
			if err := s.Apply([]config.Listener{l}, time.Second); err != nil {
				t.Fatal(err)
			}
			if _, ok := tt.client(t, addr, "127.0.0.1"); !ok {
				t.Fatal("the raised limit did not apply")
			}
			if !getOn(c) {
				t.Fatal("a connection did not survive the reload")
			}
			if _, ok := tt.client(t, addr, "127.0.0.1"); ok {
				t.Fatal("a fourth connection was served with a limit of 3")
			}
			if n := s.RefusedConns()["web"]; n != 2 {
				t.Fatalf("refused counter %d after the reload, want 2 (kept across it)", n)
			}
		})
	}
}

func TestWithoutALimitConnectionsAreCountedAndForgotten(t *testing.T) {
	s := newTestSet(t, Options{}, listener("web", "127.0.0.1:0"))
	addr := s.Addrs()["web"]
	var cs []net.Conn
	for range 5 {
		c, err := dialFrom(t, addr, "127.0.0.1")
		if err != nil || !getOn(c) {
			t.Fatal("refused without a limit")
		}
		cs = append(cs, c)
	}
	sk := s.socketOf("127.0.0.1:0")
	if n := sk.perIP.count(netip.MustParseAddr("127.0.0.1")); n != 5 {
		t.Fatalf("counted %d connections, want 5", n)
	}
	for _, c := range cs {
		c.Close()
	}
	waitFor(t, "the table to empty", func() bool { return sk.perIP.size() == 0 })
}

// socketOf is the socket bound for a configured address.
func (s *Set) socketOf(addr string) *socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socks[addr]
}

// BenchmarkPerIPAcquireRelease is the table's cost per connection (one
// accept and one close) from many addresses on all cores.
func BenchmarkPerIPAcquireRelease(b *testing.B) {
	tab := newPerIPTable()
	b.RunParallel(func(pb *testing.PB) {
		var i uint32
		for pb.Next() {
			i++
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if tab.acquire(a, 100) {
				tab.release(a)
			}
		}
	})
}
