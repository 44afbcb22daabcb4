package listen

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/internal/h1"
	"github.com/portcullis-lb/portcullis/l7/internal/h2"
	"github.com/portcullis-lb/portcullis/l7/internal/rawio"
)

// listenTCP binds a TCP socket, with IP_FREEBIND when asked so that a
// floating VIP can be bound before this node holds it (ip(7)).
func listenTCP(addr string, freebind bool) (net.Listener, error) {
	return listenConfig(freebind).Listen(context.Background(), "tcp", addr)
}

func listenUDP(addr string, freebind bool) (*net.UDPConn, error) {
	pc, err := listenConfig(freebind).ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func listenConfig(freebind bool) *net.ListenConfig {
	if !freebind {
		return &net.ListenConfig{}
	}
	return &net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// An AF_INET6 socket needs IPV6_FREEBIND (Linux ≥ 4.15);
			// IP_FREEBIND is the AF_INET option.
			if network == "tcp6" || network == "udp6" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return &net.OpError{Op: "setsockopt", Net: network, Err: serr}
		}
		return nil
	}}
}

// socket is one bound address. It outlives the fronts that serve it.
type socket struct {
	set  *Set
	ln   net.Listener
	tls  atomic.Pointer[tlsMaterial] // nil: cleartext
	cur  atomic.Pointer[front]
	quic *quicSocket // guarded by set.mu

	// baseTLS is what the TLS listener starts each handshake with: it only
	// looks up the current material, so swapping certificates needs no new
	// listener. Session ticket keys live here, so tickets stay valid across
	// certificate reloads.
	baseTLS    *tls.Config
	acceptDone chan struct{}

	// perIP counts the open connections of each client address; maxPerIP
	// is the listener's max_conns_per_ip (0: none), read per accept so a
	// reload changes it without a new front.
	perIP    *perIPTable
	maxPerIP atomic.Int32
}

func newSocket(s *Set, ln net.Listener) *socket {
	sk := &socket{set: s, ln: ln, acceptDone: make(chan struct{}), perIP: newPerIPTable()}
	sk.baseTLS = &tls.Config{GetConfigForClient: sk.tlsConfigForClient}
	return sk
}

var errNoTLS = errors.New("listener no longer terminates TLS")

func (sk *socket) tlsConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	if m := sk.tls.Load(); m != nil {
		return m.conf, nil
	}
	return nil, errNoTLS
}

func (sk *socket) name() string {
	if f := sk.cur.Load(); f != nil {
		return f.cfg.Name
	}
	return ""
}

// acceptLoop hands every accepted connection to the current front. One loop
// per socket, whatever happens to the fronts, is what lets a front be
// replaced without rebinding.
func (sk *socket) acceptLoop() {
	defer close(sk.acceptDone)
	var delay time.Duration
	for {
		c, err := sk.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off as net/http does rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			sk.set.log.Warn("accept failed", "address", sk.ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ip := peerAddr(c)
		if !sk.perIP.acquire(ip, int(sk.maxPerIP.Load())) {
			sk.refuse(c)
			continue
		}
		sk.dispatch(&trackedConn{Conn: rawio.Wrap(c), perIP: sk.perIP, ip: ip})
	}
}

// refuse closes a connection over max_conns_per_ip before anything is read
// from it (no TLS handshake, no request), with a reset rather than a FIN:
// the client learns at once, and no FIN_WAIT or TIME_WAIT state is kept for
// a client that opens too many. One counter update, no log line.
func (sk *socket) refuse(c net.Conn) {
	if f := sk.cur.Load(); f != nil {
		f.refusedPerIP.Add(1)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (sk *socket) dispatch(c *trackedConn) {
	for {
		f := sk.cur.Load()
		if f == nil {
			c.Close()
			return
		}
		select {
		case f.conns <- c:
			return
		case <-f.closing:
			// A new front is stored before the old one closes, so a
			// closing front that is still current means the socket is
			// going away.
			if sk.cur.Load() == f {
				c.Close()
				return
			}
		}
	}
}

// apply makes l the socket's serving settings. The front is kept when they
// did not change (its connections live on); otherwise a new front takes new
// connections and the old one drains.
func (sk *socket) apply(l config.Listener, drain time.Duration, dropQUIC *quicSocket) {
	sk.maxPerIP.Store(int32(min(max(l.MaxConnsPerIP, 0), 1<<30)))
	old := sk.cur.Load()
	if old != nil && sameServing(old.cfg, l) && dropQUIC == nil && old.quic == sk.quic {
		return
	}
	f := newFront(sk, l)
	sk.cur.Store(f)
	f.start()
	if old != nil {
		go func() {
			old.stop(drain)
			if dropQUIC != nil {
				dropQUIC.close()
			}
		}()
	}
}

// sameServing reports whether a and b configure a front identically. The
// TLS material is not part of it: it is swapped under a running front.
func sameServing(a, b config.Listener) bool {
	return a.Name == b.Name && (a.TLS == nil) == (b.TLS == nil) && a.H2C == b.H2C && a.HTTP3 == b.HTTP3 &&
		a.ReadHeaderTimeout == b.ReadHeaderTimeout && a.IdleTimeout == b.IdleTimeout &&
		a.MaxHeaderBytes == b.MaxHeaderBytes && a.H2MaxConcurrentStreams == b.H2MaxConcurrentStreams &&
		a.H3MaxStreams == b.H3MaxStreams && usesLean(a) == usesLean(b)
}

// usesLean reports whether l is served by the lean HTTP/1.1 server
// (l7/internal/h1) rather than net/http: cleartext, no h2c, and not
// server: stdlib.
func usesLean(l config.Listener) bool {
	return l.TLS == nil && !l.H2C && l.Server != "stdlib"
}

// close stops accepting at once and drains the front for drain.
func (sk *socket) close(drain time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	sk.closeCtx(ctx)
	sk.set.log.Info("listener closed", "address", sk.ln.Addr().String())
}

func (sk *socket) closeCtx(ctx context.Context) {
	sk.ln.Close()
	<-sk.acceptDone
	if f := sk.cur.Load(); f != nil {
		f.stopCtx(ctx)
	}
	if sk.quic != nil {
		sk.quic.close()
	}
}

// front is one generation of serving settings on a socket: an http.Server
// (and an http3.Server with http3), or the lean HTTP/1.1 server for plain
// cleartext listeners. It is a net.Listener for its http.Server, fed by the
// socket's accept loop.
type front struct {
	sk      *socket
	cfg     config.Listener
	srv     *http.Server
	lean    *h1.Server // instead of srv
	h2      *h2.Server // HTTP/2 over TLS, handed over by srv after ALPN
	h3      *http3.Server
	quic    *quicSocket
	conns   chan *trackedConn
	closing chan struct{}
	once    sync.Once
	served  chan struct{}

	upMu     sync.Mutex
	upgraded map[*connInfo]struct{} // h2c-upgraded connections: hijacked, so http.Server no longer tracks them

	// refusedPerIP counts the connections max_conns_per_ip closed; shared
	// by every front of the listener's name, so reloads do not reset it.
	refusedPerIP *atomic.Uint64
}

func newFront(sk *socket, l config.Listener) *front {
	s := sk.set
	f := &front{
		sk:       sk,
		cfg:      l,
		quic:     sk.quic,
		conns:    make(chan *trackedConn),
		closing:  make(chan struct{}),
		served:   make(chan struct{}),
		upgraded: map[*connInfo]struct{}{},

		refusedPerIP: s.refusedCounter(l.Name),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if l.TLS != nil {
		protos.SetHTTP2(true)
	} else if l.H2C {
		// Prior knowledge is served by net/http itself; the Upgrade form
		// by the h2c wrapper below.
		protos.SetUnencryptedHTTP2(true)
	}
	h := s.handler
	if l.H2C && l.TLS == nil {
		h = newH2CUpgrade(f, h)
	}
	if f.quic != nil {
		_, port, _ := net.SplitHostPort(sk.ln.Addr().String())
		h = &altSvcHandler{h: h, v: []string{`h3=":` + port + `"; ma=86400`}}
	}
	if usesLean(l) {
		f.lean = &h1.Server{
			Handler:           h,
			ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
			IdleTimeout:       l.IdleTimeout.D(),
			MaxHeaderBytes:    l.MaxHeaderBytes,
		}
		return f
	}
	f.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
		IdleTimeout:       l.IdleTimeout.D(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		Protocols:         &protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: l.H2MaxConcurrentStreams},
		ConnContext:       connContext,
		ConnState:         connState,
		ErrorLog:          slog.NewLogLogger(s.log.With("listener", l.Name).Handler(), slog.LevelDebug),
	}
	if l.TLS != nil && l.Server != "stdlib" {
		// HTTP/2 over TLS on the lean server (l7/internal/h2): net/http
		// does the handshake and HTTP/1.1, and hands "h2" connections
		// over; its own HTTP/2 server is then never set up.
		f.h2 = &h2.Server{
			Handler:              h,
			MaxConcurrentStreams: uint32(max(l.H2MaxConcurrentStreams, 0)),
			IdleTimeout:          l.IdleTimeout.D(),
			MaxHeaderBytes:       l.MaxHeaderBytes,
		}
		f.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": f.serveH2}
		f.srv.RegisterOnShutdown(f.h2.StartShutdown)
	}
	if f.quic != nil {
		f.quic.setLimits(l)
		f.h3 = &http3.Server{
			Handler:        s.handler,
			MaxHeaderBytes: l.MaxHeaderBytes,
			IdleTimeout:    l.IdleTimeout.D(),
			ConnContext:    f.h3ConnContext,
		}
	}
	return f
}

func (f *front) start() {
	if f.lean != nil {
		go f.serveLean()
		return
	}
	go func() {
		defer close(f.served)
		// net.ErrClosed: a drain closes the socket before Shutdown tells
		// the server, so Serve can see the close first. Not an error.
		if err := f.srv.Serve(f); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			f.sk.set.log.Error("listener stopped", "listener", f.cfg.Name, "err", err)
		}
	}()
	if f.h3 != nil {
		go func() {
			if err := f.h3.ServeListener(f.quic.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				f.sk.set.log.Error("http3 listener stopped", "listener", f.cfg.Name, "err", err)
			}
		}()
	}
}

// serveH2 serves a TLS connection that chose "h2" on the lean HTTP/2
// server. net/http skips its ConnState hook for it, so it is classified
// here; its requests find the listener in the connection's context.
func (f *front) serveH2(_ *http.Server, c *tls.Conn, _ http.Handler) {
	ctx := connContext(context.Background(), c)
	if tc := asTracked(c); tc != nil {
		tc.info.classify(protoH2)
	}
	f.h2.ServeConn(ctx, c)
}

// serveLean is the lean front's accept loop: one goroutine per connection,
// which carries the listener name in its context (ListenerName) and is
// counted as h1 from the start.
func (f *front) serveLean() {
	defer close(f.served)
	for {
		c, err := f.Accept()
		if err != nil {
			return
		}
		tc := c.(*trackedConn)
		tc.info.classify(protoH1)
		go f.lean.ServeConn(context.WithValue(context.Background(), connInfoKey{}, &tc.info), tc)
	}
}

// Accept implements net.Listener for the front's http.Server.
func (f *front) Accept() (net.Conn, error) {
	select {
	case tc := <-f.conns:
		tc.info.name = f.cfg.Name
		tc.info.set = f.sk.set
		tc.info.conn = tc
		if f.cfg.TLS != nil {
			return tls.Server(tc, f.sk.baseTLS), nil
		}
		return tc, nil
	case <-f.closing:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it stops this front from taking
// connections; the socket stays open for the next front.
func (f *front) Close() error {
	f.once.Do(func() { close(f.closing) })
	return nil
}

// Addr implements net.Listener.
func (f *front) Addr() net.Addr { return f.sk.ln.Addr() }

// stop drains the front for drain, then closes what is left.
func (f *front) stop(drain time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	f.stopCtx(ctx)
}

func (f *front) stopCtx(ctx context.Context) {
	f.Close()
	if f.lean != nil {
		<-f.served // no ServeConn starts after this
		_ = f.lean.Shutdown(ctx)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f.srv.Shutdown(ctx); err != nil {
			f.srv.Close()
			if f.h2 != nil {
				f.h2.Close()
			}
		}
		f.drainUpgraded(ctx)
	})
	if f.h3 != nil {
		wg.Go(func() { _ = f.h3.Shutdown(ctx) })
	}
	wg.Wait()
	<-f.served
}

// drainUpgraded waits for h2c-upgraded connections (which http.Server no
// longer tracks) until ctx is done, then closes those left.
func (f *front) drainUpgraded(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		f.upMu.Lock()
		n := len(f.upgraded)
		f.upMu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			f.upMu.Lock()
			for ci := range f.upgraded {
				ci.conn.Close()
			}
			f.upMu.Unlock()
			return
		}
	}
}

// altSvcHandler advertises HTTP/3 on TCP responses. The header value is one
// shared slice with cap == len, so a later Add copies instead of writing
// into it: no allocation per request.
type altSvcHandler struct {
	h http.Handler
	v []string
}

func (a *altSvcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Alt-Svc"] = a.v[:1:1]
	a.h.ServeHTTP(w, r)
}

// trackedConn is every accepted TCP connection: it carries the listener
// name for ListenerName and keeps the open-connection counters right.
type trackedConn struct {
	net.Conn
	info      connInfo
	firstRead atomic.Bool
	preface   atomic.Bool // the client opened with the HTTP/2 preface (h2c)
	// perIP counted the connection under ip; released on the first Close.
	perIP    *perIPTable
	ip       netip.Addr
	released atomic.Bool
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.firstRead.Load() {
		c.firstRead.Store(true)
		if n >= 3 && string(b[:3]) == "PRI" {
			c.preface.Store(true)
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.info.closed()
	if c.perIP != nil && c.released.CompareAndSwap(false, true) {
		c.perIP.release(c.ip)
	}
	return c.Conn.Close()
}

// ReadFrom keeps the kernel's splice/sendfile path of *net.TCPConn for
// cleartext responses (io.Copy into the connection).
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// NetConn returns the underlying connection (e.g. the *net.TCPConn).
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func asTracked(c net.Conn) *trackedConn {
	switch c := c.(type) {
	case *trackedConn:
		return c
	case *tls.Conn:
		tc, _ := c.NetConn().(*trackedConn)
		return tc
	}
	return nil
}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc := asTracked(c); tc != nil {
		return context.WithValue(ctx, connInfoKey{}, &tc.info)
	}
	return ctx
}

// connState classifies a connection the first time it becomes active: by
// ALPN under TLS, by the preface in cleartext. net/http and its HTTP/2
// server both report StateActive before the first request.
func connState(c net.Conn, st http.ConnState) {
	if st != http.StateActive && st != http.StateIdle {
		return
	}
	tc := asTracked(c)
	if tc == nil || tc.info.proto.Load() != protoNone {
		return
	}
	p := int32(protoH1)
	if t, ok := c.(*tls.Conn); ok {
		if t.ConnectionState().NegotiatedProtocol == "h2" {
			p = protoH2
		}
	} else if tc.preface.Load() {
		p = protoH2
	}
	tc.info.classify(p)
}
