//lint:file-ignore SA1019 x/net/http2's Transport is the HTTP/2 client that takes a DialTLSContext per upstream and h2c without Upgrade; moving to net/http's Protocols-based client is tracked in the L7 issue.

package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/portcullis-lb/portcullis/l7/internal/rawio"
	"github.com/portcullis-lb/portcullis/l7/pool"
)

// Upstream protocols.
const (
	protoH1  = "http1"
	protoH2  = "h2"
	protoH2C = "h2c"
)

// upstreamConf is a pool's compiled transport settings, whatever package
// produced them (the seam converts).
type upstreamConf struct {
	Protocol              string
	TLS                   *tls.Config // nil = cleartext
	ConnectTimeout        time.Duration
	ResponseHeaderTimeout time.Duration
	IdleTimeout           time.Duration
	TotalTimeout          time.Duration
	MaxIdlePerEndpoint    int
	Retry                 pool.Retry
}

func (c *upstreamConf) equal(o *upstreamConf) bool {
	if c.Protocol != o.Protocol || c.ConnectTimeout != o.ConnectTimeout || c.IdleTimeout != o.IdleTimeout ||
		c.MaxIdlePerEndpoint != o.MaxIdlePerEndpoint || (c.TLS == nil) != (o.TLS == nil) {
		return false
	}
	if c.TLS == nil {
		return true
	}
	a, b := c.TLS, o.TLS
	return a.ServerName == b.ServerName && a.InsecureSkipVerify == b.InsecureSkipVerify &&
		((a.RootCAs == nil && b.RootCAs == nil) || (a.RootCAs != nil && b.RootCAs != nil && a.RootCAs.Equal(b.RootCAs))) &&
		len(a.Certificates) == len(b.Certificates)
}

// upstream owns the connections to the endpoints of one pool. It outlives a
// generation when a reload leaves the pool's transport settings as they were,
// so a reload does not drop warm keep-alive connections.
type upstream struct {
	conf    upstreamConf
	dialer  net.Dialer
	hosts   sync.Map // endpoint address → *hostPool
	h2      *http2.Transport
	scheme  string
	stats   *poolStats
	closing atomic.Bool
}

func newUpstream(c upstreamConf, stats *poolStats) *upstream {
	u := &upstream{conf: c, stats: stats, scheme: "http"}
	u.dialer = net.Dialer{Timeout: c.ConnectTimeout, KeepAlive: 30 * time.Second}
	if c.TLS != nil {
		u.scheme = "https"
	}
	switch c.Protocol {
	case protoH2:
		tc := c.TLS
		if tc == nil {
			tc = &tls.Config{}
		}
		tc = tc.Clone()
		tc.NextProtos = []string{"h2"}
		u.scheme = "https"
		u.h2 = &http2.Transport{
			TLSClientConfig: tc,
			DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				return u.dial(ctx, addr, cfg)
			},
			IdleConnTimeout: c.IdleTimeout,
			ReadIdleTimeout: 30 * time.Second, // PING a silent connection so a dead one is found
			PingTimeout:     5 * time.Second,
		}
	case protoH2C:
		u.scheme = "http"
		u.h2 = &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return u.dial(ctx, addr, nil)
			},
			IdleConnTimeout: c.IdleTimeout,
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     5 * time.Second,
		}
	}
	return u
}

// dial opens a connection, TLS when cfg is set (SNI defaults to the
// endpoint's host), and counts connect errors for the pool's metric.
func (u *upstream) dial(ctx context.Context, addr string, cfg *tls.Config) (net.Conn, error) {
	c, err := u.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		u.stats.connectErrors.Add(1)
		return nil, &connectError{err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c = rawio.Wrap(c)
	if cfg == nil {
		return c, nil
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	tlsConn := tls.Client(c, cfg)
	hctx := ctx
	if u.conf.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, u.conf.ConnectTimeout)
		defer cancel()
	}
	if err := tlsConn.HandshakeContext(hctx); err != nil {
		c.Close()
		u.stats.connectErrors.Add(1)
		return nil, &connectError{err}
	}
	return tlsConn, nil
}

// connectError marks a failure before any byte of the request was sent:
// always safe to retry elsewhere.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func (u *upstream) host(addr string) *hostPool {
	if hp, ok := u.hosts.Load(addr); ok {
		return hp.(*hostPool)
	}
	hp, _ := u.hosts.LoadOrStore(addr, &hostPool{addr: addr, up: u})
	return hp.(*hostPool)
}

// closeIdle closes every idle connection (shutdown, or a reload that
// replaced this transport).
func (u *upstream) closeIdle() {
	u.closing.Store(true)
	u.hosts.Range(func(_, v any) bool {
		v.(*hostPool).sweep(time.Time{}, true)
		return true
	})
	if u.h2 != nil {
		u.h2.CloseIdleConnections()
	}
}

// sweepIdle closes connections idle longer than the idle timeout.
func (u *upstream) sweepIdle(now time.Time) {
	u.hosts.Range(func(_, v any) bool {
		v.(*hostPool).sweep(now, false)
		return true
	})
}

// hostPool is the keep-alive pool of one endpoint: a LIFO stack, so the
// most recently used (warmest, least likely closed by the server) connection
// is reused first and the surplus ages out.
type hostPool struct {
	addr string
	up   *upstream
	mu   sync.Mutex
	idle []*h1conn
}

// h1conn is one upstream HTTP/1.1 connection with its buffers.
type h1conn struct {
	conn        net.Conn
	br          *bufio.Reader
	bw          *bufio.Writer
	hp          *hostPool
	idleAt      time.Time
	hasDeadline bool      // a total-timeout deadline is set
	rd          time.Time // the header-timeout read deadline armed, if any
	// abort cuts a wait on the upstream (an HTTP/2+ client reset its
	// stream). Made once per connection: a closure per request would be
	// an allocation per request.
	abort func()
}

// armHeaderTimeout sets the response-header read deadline. Re-arming a
// deadline costs two runtime timer updates per request, a few percent of
// the proxy's CPU, so the deadline is armed with slack (1/8 of the timeout)
// and left alone while it is still at least the timeout away: a timeout
// fires between t and 1.125·t after the request was sent. A total-timeout
// deadline, when earlier, is set exactly.
func (c *h1conn) armHeaderTimeout(t time.Duration, total time.Time) {
	now := time.Now()
	want := now.Add(t)
	if !total.IsZero() && total.Before(want) {
		c.conn.SetReadDeadline(total)
		c.rd = total
		return
	}
	if !c.rd.IsZero() && !c.rd.Before(want) && c.rd.Sub(want) <= t/8 {
		return
	}
	c.rd = want.Add(t / 8)
	c.conn.SetReadDeadline(c.rd)
}

const (
	upstreamReadBuf  = 16 << 10 // largest response head accepted, as HAProxy's tune.bufsize
	upstreamWriteBuf = 4 << 10
)

// get returns an idle connection (reused=true) or dials a new one.
func (hp *hostPool) get(ctx context.Context) (c *h1conn, reused bool, err error) {
	idleTO := hp.up.conf.IdleTimeout
	hp.mu.Lock()
	for n := len(hp.idle); n > 0; n = len(hp.idle) {
		c = hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		if idleTO > 0 && time.Since(c.idleAt) > idleTO {
			hp.mu.Unlock()
			c.conn.Close()
			hp.mu.Lock()
			continue
		}
		hp.mu.Unlock()
		return c, true, nil
	}
	hp.mu.Unlock()
	conn, err := hp.up.dial(ctx, hp.addr, hp.up.conf.TLS)
	if err != nil {
		return nil, false, err
	}
	return &h1conn{
		conn:  conn,
		br:    bufio.NewReaderSize(conn, upstreamReadBuf),
		bw:    bufio.NewWriterSize(conn, upstreamWriteBuf),
		hp:    hp,
		abort: func() { conn.SetReadDeadline(time.Unix(1, 0)) },
	}, false, nil
}

// put returns a connection whose last exchange ended cleanly.
func (hp *hostPool) put(c *h1conn) {
	if c.hasDeadline {
		if c.conn.SetDeadline(time.Time{}) != nil {
			c.conn.Close()
			return
		}
		c.hasDeadline = false
		c.rd = time.Time{}
	}
	// A header-timeout deadline still armed is harmless while idle (no
	// read happens) and is re-armed or reused by the next exchange.
	c.idleAt = time.Now()
	max := hp.up.conf.MaxIdlePerEndpoint
	hp.mu.Lock()
	if len(hp.idle) >= max || hp.up.closing.Load() {
		hp.mu.Unlock()
		c.conn.Close()
		return
	}
	hp.idle = append(hp.idle, c)
	hp.mu.Unlock()
}

func (hp *hostPool) sweep(now time.Time, all bool) {
	idleTO := hp.up.conf.IdleTimeout
	var old []*h1conn
	hp.mu.Lock()
	keep := hp.idle[:0]
	for _, c := range hp.idle {
		if all || (idleTO > 0 && now.Sub(c.idleAt) > idleTO) {
			old = append(old, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(hp.idle[len(keep):])
	hp.idle = keep
	hp.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// isTimeout reports a deadline or context timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
