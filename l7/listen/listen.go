// Package listen owns the L7 proxy's listeners: TCP and UDP sockets, TLS
// (certificates by SNI, reload from disk, mutual TLS), and the HTTP/1.1,
// HTTP/2 (ALPN and h2c) and HTTP/3 servers on them. It reconciles them with
// the config on every apply (see l7/SEAMS.md).
//
// The shape, from the socket inwards:
//
//	socket (one per configured address; kept across applies)
//	  └─ accept loop ─► current front (http.Server [+ http3.Server]) ─► handler
//	                     or, cleartext without h2c: the lean h1.Server
//	  └─ TLS material (atomic; swapped by apply and the file watcher)
//
// Cleartext listeners without h2c (and without `server: stdlib`) are served
// by the lean HTTP/1.1 server of l7/internal/h1 instead of net/http: about a
// third less CPU and 4 allocations per proxied request instead of ~21, with
// stricter parsing (it is the front door: RFC 9112 §11 smuggling defences).
// It gives the Set what net/http does: ListenerName, OpenConns()["h1"]
// (counted from accept), graceful drain, the request context cancelled when
// the client goes away, read_header_timeout, idle_timeout,
// max_header_bytes (431, and 414 for a request line that alone is too
// long), and Hijack for Upgrade. r.TLS is always nil there (cleartext).
//
// max_conns_per_ip is enforced by the socket's accept loop, before a front
// (or TLS) sees the connection: over the limit, the connection is reset at
// once and counted (RefusedConns). The counts live per socket, so they
// survive reloads and apply across fronts.
//
// A socket is never rebound while its address stays in the config: an apply
// that changes only certificates swaps the TLS material (new handshakes see
// it, open connections are untouched); an apply that changes the serving
// settings (name, timeouts, limits, h2c, http3) starts a new front on the
// same socket and lets the old one drain, so established connections finish
// on the settings they started with.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Options configures a Set.
type Options struct {
	// NodeID is the first byte of every QUIC connection ID this node issues
	// (config node.id), which the XDP program routes short-header packets by.
	NodeID uint8
	// Logger receives one line per listener event (never per request).
	// Default: slog.Default().
	Logger *slog.Logger
	// CertCheckInterval is how often certificate, key and CA files are
	// checked for changes (mtime, size, inode). Default: 2s.
	CertCheckInterval time.Duration
}

// Protocol indices of the open-connection counters.
const (
	protoNone = iota
	protoH1
	protoH2
	protoH3
	numProtos
)

var protoNames = [numProtos]string{"", "h1", "h2", "h3"}

// Set owns the proxy's listeners. Its methods are safe for concurrent use.
type Set struct {
	handler http.Handler
	opts    Options
	log     *slog.Logger
	cids    connIDGenerator

	conns [numProtos]atomic.Int64

	refMu   sync.Mutex
	refused map[string]*atomic.Uint64 // by listener name: max_conns_per_ip refusals

	mu      sync.Mutex
	socks   map[string]*socket // by configured address
	watchOn bool
	stop    chan struct{}
	stopped chan struct{}
	closed  bool
}

// NewSet returns a Set with no listeners that serves every request with h.
func NewSet(h http.Handler, opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CertCheckInterval <= 0 {
		opts.CertCheckInterval = 2 * time.Second
	}
	return &Set{
		handler: h,
		opts:    opts,
		log:     opts.Logger,
		cids:    connIDGenerator{node: opts.NodeID},
		socks:   map[string]*socket{},
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// ErrClosed is returned by Apply after Shutdown.
var ErrClosed = errors.New("listen: set is shut down")

// Apply reconciles the listeners with ls. It loads every certificate and
// binds every new socket (TCP, and UDP for http3) before it changes
// anything: if one fails, the sockets this call opened are closed, the
// error is returned and the previous listeners keep serving. Listeners whose
// address stays keep their sockets and connections; listeners that are gone
// stop accepting at once and get drain to finish their requests.
func (s *Set) Apply(ls []config.Listener, drain time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}

	// Phase 1: everything that can fail, touching nothing that serves.
	plans := make([]*applyPlan, 0, len(ls))
	var opened []func()
	fail := func(err error) error {
		for _, closeFn := range opened {
			closeFn()
		}
		return err
	}
	for _, l := range ls {
		p := &applyPlan{cfg: l, sock: s.socks[l.Address]}
		if l.TLS != nil {
			m, err := loadTLS(l.TLS)
			if err != nil {
				return fail(fmt.Errorf("listener %q: %w", l.Name, err))
			}
			p.tls = m
		}
		sk := p.sock
		if sk == nil {
			ln, err := listenTCP(l.Address, l.Freebind)
			if err != nil {
				return fail(fmt.Errorf("listener %q: %w", l.Name, err))
			}
			opened = append(opened, func() { ln.Close() })
			sk = newSocket(s, ln)
			p.fresh = sk
		}
		if l.HTTP3 && sk.quic == nil {
			// The UDP socket takes the TCP socket's port number, which
			// matters when the address asks for port 0 (tests).
			udp, err := listenUDP(sk.ln.Addr().String(), l.Freebind)
			if err != nil {
				return fail(fmt.Errorf("listener %q: http3: %w", l.Name, err))
			}
			q, err := newQUICSocket(s, sk, udp)
			if err != nil {
				udp.Close()
				return fail(fmt.Errorf("listener %q: http3: %w", l.Name, err))
			}
			opened = append(opened, q.close)
			p.quic = q
		}
		plans = append(plans, p)
	}

	// Phase 2: commit. Nothing below fails.
	if !s.watchOn {
		s.watchOn = true
		go s.watchCerts()
	}
	keep := map[string]bool{}
	for _, p := range plans {
		keep[p.cfg.Address] = true
		sk := p.sock
		if sk == nil {
			sk = p.fresh
			s.socks[p.cfg.Address] = sk
			go sk.acceptLoop()
			s.log.Info("listener bound", "listener", p.cfg.Name, "address", sk.ln.Addr().String())
		}
		sk.tls.Store(p.tls)
		var dropQUIC *quicSocket
		if p.quic != nil {
			sk.quic = p.quic
			s.log.Info("http3 bound", "listener", p.cfg.Name, "address", p.quic.udp.LocalAddr().String())
		} else if !p.cfg.HTTP3 && sk.quic != nil {
			dropQUIC, sk.quic = sk.quic, nil
		}
		sk.apply(p.cfg, drain, dropQUIC)
	}
	for addr, sk := range s.socks {
		if !keep[addr] {
			// Stop accepting now (callers and tests rely on it once Apply
			// returns); the connections drain in the background.
			delete(s.socks, addr)
			sk.ln.Close()
			go sk.close(drain)
		}
	}
	return nil
}

// applyPlan is what Apply prepared for one listener before committing.
type applyPlan struct {
	cfg   config.Listener
	sock  *socket      // the socket kept from before, or nil
	fresh *socket      // a newly bound socket, not yet serving
	quic  *quicSocket  // a newly bound UDP side
	tls   *tlsMaterial // nil for cleartext
}

// Shutdown stops accepting on every listener and waits until ctx is done
// for in-flight requests; then it closes what is left.
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	socks := s.socks
	s.socks = map[string]*socket{}
	watching := s.watchOn
	close(s.stop)
	s.mu.Unlock()
	if watching {
		<-s.stopped
	}
	var wg sync.WaitGroup
	for _, sk := range socks {
		wg.Go(func() { sk.closeCtx(ctx) })
	}
	wg.Wait()
	return ctx.Err()
}

// Addrs returns each listener's bound TCP address by listener name.
func (s *Set) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.socks))
	for _, sk := range s.socks {
		out[sk.name()] = sk.ln.Addr().String()
	}
	return out
}

// UDPAddrs returns the bound UDP (HTTP/3) address of each listener that
// serves HTTP/3, by listener name.
func (s *Set) UDPAddrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, sk := range s.socks {
		if sk.quic != nil {
			out[sk.name()] = sk.quic.udp.LocalAddr().String()
		}
	}
	return out
}

// refusedCounter is the max_conns_per_ip refusal counter of a listener
// name, created on first use and kept for the Set's life (a reload must not
// reset a counter).
func (s *Set) refusedCounter(name string) *atomic.Uint64 {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	if s.refused == nil {
		s.refused = map[string]*atomic.Uint64{}
	}
	c := s.refused[name]
	if c == nil {
		c = new(atomic.Uint64)
		s.refused[name] = c
	}
	return c
}

// RefusedConns returns, by listener name, how many TCP connections were
// closed at accept because their client address had max_conns_per_ip open
// already (every listener name served so far, also with none refused).
func (s *Set) RefusedConns() map[string]uint64 {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	out := make(map[string]uint64, len(s.refused))
	for name, c := range s.refused {
		out[name] = c.Load()
	}
	return out
}

// OpenConns returns the number of open client connections by protocol:
// "h1", "h2" (over TLS and h2c) and "h3". Reading it is cheap: the counters
// are atomics updated once per connection, never per request.
func (s *Set) OpenConns() map[string]int64 {
	out := make(map[string]int64, numProtos-1)
	for p := protoH1; p < numProtos; p++ {
		out[protoNames[p]] = s.conns[p].Load()
	}
	return out
}

type connInfoKey struct{}

// connInfo is the per-connection value that ConnContext puts in the
// connection's context, so every request on it finds its listener without
// an allocation of its own.
type connInfo struct {
	name  string
	set   *Set
	proto atomic.Int32 // protoNone until classified, -1 once closed
	conn  net.Conn     // the tracked TCP connection (nil for QUIC)
}

// classify counts the connection under proto, once.
func (ci *connInfo) classify(proto int32) {
	if ci.proto.CompareAndSwap(protoNone, proto) {
		ci.set.conns[proto].Add(1)
	}
}

// reclassify moves a counted connection to another protocol (h2c Upgrade).
func (ci *connInfo) reclassify(from, to int32) {
	if ci.proto.CompareAndSwap(from, to) {
		ci.set.conns[from].Add(-1)
		ci.set.conns[to].Add(1)
	}
}

// closed uncounts the connection, once.
func (ci *connInfo) closed() {
	if p := ci.proto.Swap(-1); p > 0 {
		ci.set.conns[p].Add(-1)
	}
}

// ListenerName returns the name of the listener a request came in on, from
// its context ("" outside a request the Set serves). The name is attached
// once per connection, so this costs a context lookup and no allocation.
func ListenerName(ctx context.Context) string {
	if ci, ok := ctx.Value(connInfoKey{}).(*connInfo); ok {
		return ci.name
	}
	return ""
}
