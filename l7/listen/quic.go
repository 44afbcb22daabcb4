package listen

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// ConnIDLen is the length of the QUIC connection IDs this node issues. The
// XDP program reads only the first byte; the other 7 are random, so IDs stay
// unlinkable (RFC 9000 §5.1) and collisions are negligible.
const ConnIDLen = 8

// connIDGenerator issues connection IDs whose first byte is the node id:
// short-header packets carry no length, so the XDP program can only find
// the id at a fixed offset — the first byte of the destination ID.
type connIDGenerator struct{ node byte }

func (g connIDGenerator) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [ConnIDLen]byte
	b[0] = g.node
	if _, err := rand.Read(b[1:]); err != nil {
		return quic.ConnectionID{}, err
	}
	return quic.ConnectionIDFromBytes(b[:]), nil
}

func (g connIDGenerator) ConnectionIDLen() int { return ConnIDLen }

// quicSocket is a listener's UDP side: the socket, the QUIC transport and
// listener. Like the TCP socket it outlives fronts; each front runs its own
// http3.Server on the shared QUIC listener.
type quicSocket struct {
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	conf atomic.Pointer[quic.Config] // limits of the current front
}

func newQUICSocket(s *Set, sk *socket, udp *net.UDPConn) (*quicSocket, error) {
	q := &quicSocket{udp: udp}
	q.tr = &quic.Transport{Conn: udp, ConnectionIDGenerator: s.cids}
	// The TLS config looks up the socket's current material per handshake
	// (as over TCP); http3.ConfigureTLSConfig sets ALPN h3 on what it returns.
	tlsConf := http3.ConfigureTLSConfig(&tls.Config{GetConfigForClient: sk.tlsConfigForClient})
	// Listen, not ListenEarly: 0-RTT requests can be replayed, and a proxy
	// cannot know which of its upstream requests tolerate that.
	ln, err := q.tr.Listen(tlsConf, &quic.Config{
		GetConfigForClient: func(*quic.ClientInfo) (*quic.Config, error) { return q.conf.Load(), nil },
	})
	if err != nil {
		q.tr.Close()
		return nil, err
	}
	q.ln = ln
	return q, nil
}

// setLimits makes l's limits apply to new QUIC connections.
func (q *quicSocket) setLimits(l config.Listener) {
	q.conf.Store(&quic.Config{
		MaxIdleTimeout:     l.IdleTimeout.D(),
		MaxIncomingStreams: int64(l.H3MaxStreams),
	})
}

func (q *quicSocket) close() {
	q.ln.Close()
	q.tr.Close()
	q.udp.Close()
}

// h3ConnContext counts the QUIC connection and names its listener.
func (f *front) h3ConnContext(ctx context.Context, c *quic.Conn) context.Context {
	ci := &connInfo{name: f.cfg.Name, set: f.sk.set}
	ci.classify(protoH3)
	context.AfterFunc(c.Context(), ci.closed)
	return context.WithValue(ctx, connInfoKey{}, ci)
}
