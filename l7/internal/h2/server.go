// Package h2 is a lean HTTP/2 server (RFC 9113) for the proxy's TLS
// listeners, where Go's HTTP/2 server was the proxy's largest cost: it
// flushes, and so writes one TLS record and makes one system call, whenever
// its write queue runs empty, which under load is after nearly every frame,
// and it moves every frame through a channel to its serve goroutine.
//
// Here every connection has one reader goroutine (frames in, flow control,
// stream state) and one writer goroutine. Handlers (one goroutine per
// stream) append their frames to the connection's write buffer under its
// lock and wake the writer (a stream whose response ends when no writer
// runs becomes the writer itself rather than start one), which takes
// everything queued at once: while it sits in a write, the responses of
// the other streams gather, so a busy connection sends many responses per
// TLS record and per system call, as HAProxy does. Response heads are
// encoded with HPACK's static table only (hpackenc.go), as HAProxy's are.
// Response headers and bodies of up to 4 KiB are held until
// the handler returns or flushes, so a small response is one HEADERS and
// one DATA frame with END_STREAM, with a Content-Length.
//
// Frames are parsed by golang.org/x/net/http2's Framer, which also checks
// that CONTINUATION frames follow their HEADERS; header blocks are decoded
// with x/net's HPACK decoder and validated here (headers.go), as is what
// the framer leaves to a server (stream states, flow control, SETTINGS,
// request validation, limits). Protection against abuse: a cap on
// concurrent streams (REFUSED_STREAM beyond it), on handlers still running
// after their stream was reset (rapid reset, CVE-2023-44487: the
// connection is closed with ENHANCE_YOUR_CALM), on queued output (a client
// that does not read stops its handlers, then loses its connection), and
// on header list size (431).
//
// The handler sees a *http.Request like net/http's: Proto "HTTP/2.0", TLS
// state, RemoteAddr, a context cancelled when the stream is reset or the
// connection ends, and trailers through the Trailer header and
// http.TrailerPrefix. The ResponseWriter is an http.Flusher; there is no
// Hijacker (RFC 9113 §8.6: no Upgrade in HTTP/2).
package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Server holds the settings of the connections it serves.
type Server struct {
	Handler http.Handler
	// MaxConcurrentStreams is advertised in SETTINGS and enforced.
	// Default 250.
	MaxConcurrentStreams uint32
	// IdleTimeout closes a connection without streams (GOAWAY first).
	// Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header list (RFC 9113 §6.5.2
	// SETTINGS_MAX_HEADER_LIST_SIZE); larger ones get 431. Default 16 KiB.
	MaxHeaderBytes int
	// PrefaceTimeout bounds the wait for the client's connection preface
	// and first SETTINGS. Default 10s.
	PrefaceTimeout time.Duration

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown atomic.Bool
}

const (
	defaultMaxStreams = 250
	defaultIdle       = 120 * time.Second
	defaultMaxHeader  = 16 << 10

	// Receive windows: a stream may send 1 MiB before its handler reads,
	// the connection 4 MiB in total.
	streamWindow = 1 << 20
	connWindow   = 4 << 20
	// maxFrame is the largest frame we accept (the RFC's default).
	maxFrame = 16 << 10

	// holdBody is how much response body a stream holds back before its
	// first frame, so a small response goes out as HEADERS + one DATA.
	holdBody = 4 << 10
	// maxQueued is the output queued in a connection beyond which handlers
	// wait for the writer; queueKill is where the connection is dropped
	// (control frames queued by a client that does not read).
	maxQueued = 256 << 10
	queueKill = 4 << 20
	// rapidResets is how many streams, reset by the client while their
	// handler still ran, a connection may have in a resetWindow.
	rapidResets = 200
	resetWindow = time.Second
)

var errClosed = errors.New("h2: stream closed")

// conn is one HTTP/2 connection.
type conn struct {
	srv    *Server
	c      net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	tls    *tls.ConnectionState
	remote string
	br     *bufio.Reader
	fr     *http2.Framer
	hdec   *hpack.Decoder
	hb     headerBlock // the header block being read

	maxStreams uint32
	maxHeader  uint32
	idle       time.Duration

	// Reader goroutine only.
	maxClientID  uint32
	sawSettings  bool
	resetCount   int
	resetStart   time.Time
	recentResets [32]uint32 // streams we reset, whose late frames are ignored
	recentNext   int

	// mu guards everything below, the write side and the stream map.
	mu          sync.Mutex
	wcond       sync.Cond // windows opened, queue drained, stream or conn gone
	streams     map[uint32]*stream
	running     int // handlers running
	wbuf        []byte
	spare       []byte
	outBox      *[]byte // for giving wbuf back to outPool
	henc        hpackEncoder
	sendWindow  int64
	peerInitial int64 // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int   // peer's SETTINGS_MAX_FRAME_SIZE
	recvWindow  int64 // what the client may still send on the connection
	unacked     int64 // connection bytes consumed, not yet given back
	goAway      bool  // GOAWAY sent: no new streams
	dead        bool  // the connection is closing: writes fail
	werr        error
	linger      bool // after a connection error: drain before closing
	writerOn    bool // a writer goroutine runs
	wclosed     bool // the last writer ran: nothing more is sent
	wdeadline   time.Time
	wdone       chan struct{}
	idleTimer   *time.Timer
	handlers    sync.WaitGroup
}

// readerPool holds the connections' read buffers. Small: under TLS the
// record layer already reads from the socket in large pieces and keeps a
// record's plaintext; this buffer only saves calls into it, and an idle
// connection keeps it.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// ServeConn serves an HTTP/2 connection whose client preface has not been
// read yet (after TLS with ALPN "h2", or a cleartext prior-knowledge
// connection) until it ends. Requests' contexts derive from ctx.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	cn := s.newConn(ctx, c)
	if cn == nil {
		return
	}
	defer s.forget(cn)
	cn.serve()
}

func (s *Server) newConn(ctx context.Context, c net.Conn) *conn {
	ctx, cancel := context.WithCancel(ctx)
	cn := &conn{
		srv:         s,
		c:           c,
		ctx:         ctx,
		cancel:      cancel,
		remote:      c.RemoteAddr().String(),
		maxStreams:  s.MaxConcurrentStreams,
		idle:        s.IdleTimeout,
		streams:     map[uint32]*stream{},
		sendWindow:  65535,
		peerInitial: 65535,
		peerFrame:   16384,
		recvWindow:  65535,
		wdone:       make(chan struct{}),
	}
	cn.wcond.L = &cn.mu
	if cn.maxStreams == 0 {
		cn.maxStreams = defaultMaxStreams
	}
	if cn.idle <= 0 {
		cn.idle = defaultIdle
	}
	mh := s.MaxHeaderBytes
	if mh <= 0 {
		mh = defaultMaxHeader
	}
	cn.maxHeader = uint32(mh)
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cn.tls = &st
	}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		cancel()
		c.Close()
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[cn] = struct{}{}
	s.mu.Unlock()
	return cn
}

func (s *Server) forget(cn *conn) {
	s.mu.Lock()
	delete(s.conns, cn)
	s.mu.Unlock()
}

// Shutdown tells every connection to finish: GOAWAY with the last stream
// it took, then the connection closes when its streams are done. When ctx
// ends first the rest are closed. New connections are refused.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StartShutdown()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s.Conns() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// StartShutdown sends GOAWAY on every connection and closes the idle ones,
// without waiting (for net/http's RegisterOnShutdown).
func (s *Server) StartShutdown() {
	s.shutdown.Store(true)
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for cn := range s.conns {
		conns = append(conns, cn)
	}
	s.mu.Unlock()
	for _, cn := range conns {
		cn.startGoAway()
	}
}

// Close closes every connection now.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		cn.c.Close()
		cn.cancel()
	}
	return nil
}

// Conns is the number of connections being served.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// connError ends the connection with GOAWAY(code).
type connError struct {
	code http2.ErrCode
	why  string
}

func (e connError) Error() string { return "h2: connection error " + e.code.String() + ": " + e.why }

func (cn *conn) serve() {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(cn.c)
	cn.br = br
	err := cn.handshake()
	if err == nil {
		err = cn.readLoop()
	}
	var ce connError
	var h2ce http2.ConnectionError
	switch {
	case err == nil:
		cn.mu.Lock()
		cn.finishLocked()
		cn.mu.Unlock()
	case errors.As(err, &ce):
		cn.fail(ce.code)
	case errors.As(err, &h2ce):
		cn.fail(http2.ErrCode(h2ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		cn.fail(http2.ErrCodeFrameSize)
	default:
		cn.closeNow()
	}
	// Streams still open end with the connection (their contexts are
	// not children of the connection's: see streamCtx).
	cn.mu.Lock()
	for _, st := range cn.streams {
		cn.closeStreamLocked(st, errClosed)
	}
	cn.mu.Unlock()
	<-cn.wdone
	if cn.linger {
		// The client may still be sending: closing with unread bytes
		// would reset the connection and could destroy the GOAWAY
		// before the client reads it. Read and drop for a moment.
		cn.c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, cn.c, 1<<20)
	}
	cn.c.Close()
	cn.cancel()
	cn.handlers.Wait()
	cn.mu.Lock()
	if cn.idleTimer != nil {
		// Stopped, or it would keep the connection alive until it fires.
		cn.idleTimer.Stop()
	}
	cn.dead = true // no idle timer is armed again
	cn.mu.Unlock()
	cn.br = nil
	br.Reset(nil)
	readerPool.Put(br)
}

func (cn *conn) handshake() error {
	pt := cn.srv.PrefaceTimeout
	if pt <= 0 {
		pt = 10 * time.Second
	}
	cn.c.SetReadDeadline(time.Now().Add(pt))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(cn.br, pre[:]); err != nil {
		return err
	}
	if string(pre[:]) != http2.ClientPreface {
		return connError{http2.ErrCodeProtocol, "bad preface"}
	}
	cn.fr = http2.NewFramer(nil, cn.br)
	cn.fr.SetReuseFrames()
	cn.fr.SetMaxReadFrameSize(maxFrame)
	cn.hdec = hpack.NewDecoder(4096, cn.emit)
	cn.hdec.SetMaxStringLength(4 * int(cn.maxHeader))

	cn.mu.Lock()
	cn.wbuf = appendSettings(cn.wbuf,
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cn.maxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cn.maxHeader},
	)
	cn.wbuf = appendWindowUpdate(cn.wbuf, 0, connWindow-65535)
	cn.recvWindow = connWindow
	cn.kick()
	cn.mu.Unlock()
	return nil
}

// readLoop reads frames until the connection ends.
func (cn *conn) readLoop() error {
	cn.armIdle()
	for {
		f, err := cn.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cn.resetStream(se.StreamID, se.Code)
				continue
			}
			return err
		}
		if !cn.sawSettings {
			sf, ok := f.(*http2.SettingsFrame)
			if !ok || sf.IsAck() {
				return connError{http2.ErrCodeProtocol, "first frame is not SETTINGS"}
			}
			cn.sawSettings = true
			cn.c.SetReadDeadline(time.Time{})
		}
		if err := cn.handle(f); err != nil {
			return err
		}
		cn.mu.Lock()
		done := cn.goAway && len(cn.streams) == 0 && cn.running == 0
		cn.mu.Unlock()
		if done {
			return nil
		}
	}
}

func (cn *conn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return cn.onSettings(f)
	case *http2.HeadersFrame:
		return cn.onHeadersFrame(f)
	case *http2.ContinuationFrame:
		return cn.onContinuation(f)
	case *http2.DataFrame:
		return cn.onData(f)
	case *http2.WindowUpdateFrame:
		return cn.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			cn.mu.Lock()
			cn.wbuf = appendPing(cn.wbuf, f.Data)
			err := cn.kickChecked()
			cn.mu.Unlock()
			return err
		}
	case *http2.RSTStreamFrame:
		return cn.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			cn.resetStream(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.GoAwayFrame:
		// The client will open no more streams; finish the open ones.
		cn.startGoAway()
	case *http2.PushPromiseFrame:
		return connError{http2.ErrCodeProtocol, "PUSH_PROMISE from a client"}
	}
	// Unknown frame types are ignored (RFC 9113 §4.1).
	return nil
}

func (cn *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - cn.peerInitial
			cn.peerInitial = int64(s.Val)
			for _, st := range cn.streams {
				st.sendWindow += delta
				if st.sendWindow > 1<<31-1 {
					return connError{http2.ErrCodeFlowControl, "window overflow"}
				}
			}
		case http2.SettingMaxFrameSize:
			cn.peerFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			cn.henc.sizeUpdate = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	cn.wcond.Broadcast()
	cn.wbuf = appendFrameHeader(cn.wbuf, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	return cn.kickChecked()
}

func (cn *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		cn.sendWindow += inc
		if cn.sendWindow > 1<<31-1 {
			return connError{http2.ErrCodeFlowControl, "connection window overflow"}
		}
		cn.wcond.Broadcast()
		return nil
	}
	st := cn.streams[f.StreamID]
	if st == nil {
		if f.StreamID > cn.maxClientID {
			return connError{http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream"}
		}
		return nil
	}
	st.sendWindow += inc
	if st.sendWindow > 1<<31-1 {
		cn.resetLocked(st.id, http2.ErrCodeFlowControl)
		return nil
	}
	cn.wcond.Broadcast()
	return nil
}

func (cn *conn) onReset(f *http2.RSTStreamFrame) error {
	cn.mu.Lock()
	st := cn.streams[f.StreamID]
	if st == nil {
		idle := f.StreamID > cn.maxClientID
		cn.mu.Unlock()
		if idle {
			return connError{http2.ErrCodeProtocol, "RST_STREAM on an idle stream"}
		}
		return nil
	}
	running := !st.handlerDone
	cn.closeStreamLocked(st, errReset)
	cn.mu.Unlock()
	if running {
		now := time.Now()
		if now.Sub(cn.resetStart) > resetWindow {
			cn.resetStart, cn.resetCount = now, 0
		}
		cn.resetCount++
		if cn.resetCount > rapidResets {
			return connError{http2.ErrCodeEnhanceYourCalm, "too many streams reset while in progress"}
		}
	}
	return nil
}

var errReset = errors.New("h2: stream reset by the client")

// resetStream sends RST_STREAM and forgets the stream.
func (cn *conn) resetStream(id uint32, code http2.ErrCode) {
	cn.mu.Lock()
	cn.resetLocked(id, code)
	cn.mu.Unlock()
}

func (cn *conn) resetLocked(id uint32, code http2.ErrCode) {
	if st := cn.streams[id]; st != nil {
		cn.closeStreamLocked(st, errClosed)
	}
	cn.noteReset(id)
	cn.wbuf = appendRST(cn.wbuf, id, code)
	cn.kick()
}

// noteReset remembers a stream we reset, whose frames already in flight
// are then ignored rather than treated as a protocol error (RFC 9113 §5.1).
func (cn *conn) noteReset(id uint32) {
	cn.recentResets[cn.recentNext] = id
	cn.recentNext = (cn.recentNext + 1) % len(cn.recentResets)
}

func (cn *conn) recentlyReset(id uint32) bool {
	for _, r := range cn.recentResets {
		if r == id && id != 0 {
			return true
		}
	}
	return false
}

// closeStreamLocked removes st: its handler's context is cancelled, its
// body reader fails with err unless complete, and unread body bytes go
// back to the connection window.
func (cn *conn) closeStreamLocked(st *stream, err error) {
	if st.closed {
		return
	}
	st.closed = true
	delete(cn.streams, st.id)
	if !st.remoteDone {
		st.bodyErr = err
	}
	if n := len(st.body) - st.bodyOff; n > 0 {
		cn.giveBackLocked(int64(n))
	}
	st.body, st.bodyOff = nil, 0
	st.ctx.cancel()
	st.bodyCond.Broadcast()
	cn.wcond.Broadcast()
	if len(cn.streams) == 0 {
		cn.armIdleLocked()
	}
}

// giveBackLocked returns consumed bytes to the client's connection window,
// in WINDOW_UPDATEs of at least a quarter of it.
func (cn *conn) giveBackLocked(n int64) {
	cn.unacked += n
	if cn.unacked >= connWindow/4 {
		cn.wbuf = appendWindowUpdate(cn.wbuf, 0, uint32(cn.unacked))
		cn.recvWindow += cn.unacked
		cn.unacked = 0
		cn.kick()
	}
}

func (cn *conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	data := f.Data()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if n > cn.recvWindow {
		return connError{http2.ErrCodeFlowControl, "connection window exceeded"}
	}
	cn.recvWindow -= n
	st := cn.streams[id]
	if st == nil || st.remoteDone {
		switch {
		case id > cn.maxClientID:
			return connError{http2.ErrCodeProtocol, "DATA on an idle stream"}
		case st == nil && !cn.recentlyReset(id):
			return connError{http2.ErrCodeStreamClosed, "DATA on a closed stream"}
		}
		cn.giveBackLocked(n)
		if st != nil {
			cn.resetLocked(id, http2.ErrCodeStreamClosed)
		}
		return nil
	}
	if n > st.recvWindow {
		cn.giveBackLocked(n)
		cn.resetLocked(id, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWindow -= n
	// Padding is consumed at once.
	if pad := n - int64(len(data)); pad > 0 {
		cn.giveBackLocked(pad)
	}
	st.received += int64(len(data))
	if st.declared >= 0 && st.received > st.declared {
		cn.giveBackLocked(int64(len(data)))
		cn.resetLocked(id, http2.ErrCodeProtocol)
		return nil
	}
	if len(data) > 0 {
		if st.bodyOff > 0 && st.bodyOff == len(st.body) {
			st.body, st.bodyOff = st.body[:0], 0
		}
		st.body = append(st.body, data...)
	}
	if f.StreamEnded() {
		if st.declared >= 0 && st.received != st.declared {
			cn.resetLocked(id, http2.ErrCodeProtocol)
			return nil
		}
		cn.endRemoteLocked(st)
	}
	st.bodyCond.Broadcast()
	return nil
}

// endRemoteLocked marks the client's side of st done; a stream whose
// handler has also finished is closed.
func (cn *conn) endRemoteLocked(st *stream) {
	st.remoteDone = true
	st.bodyCond.Broadcast()
	if st.handlerDone {
		cn.closeStreamLocked(st, nil)
	}
}

// startGoAway sends GOAWAY with the last stream taken; the connection ends
// when its streams are done. Idempotent.
func (cn *conn) startGoAway() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.goAway || cn.dead {
		return
	}
	cn.goAway = true
	cn.wbuf = appendGoAway(cn.wbuf, cn.maxClientID, http2.ErrCodeNo)
	cn.kick()
	if len(cn.streams) == 0 && cn.running == 0 {
		cn.finishLocked()
	}
}

// finishLocked ends an idle connection after its GOAWAY: the writer sends
// what is queued, then closes; the reader then fails and returns.
func (cn *conn) finishLocked() {
	if cn.dead {
		return
	}
	cn.dead = true
	cn.wcond.Broadcast()
	cn.kick()
}

// fail ends the connection with GOAWAY(code).
func (cn *conn) fail(code http2.ErrCode) {
	cn.mu.Lock()
	if !cn.dead {
		cn.wbuf = appendGoAway(cn.wbuf, cn.maxClientID, code)
		cn.linger = true
	}
	cn.finishLocked()
	cn.mu.Unlock()
	cn.cancel()
}

func (cn *conn) closeNow() {
	cn.mu.Lock()
	cn.wbuf = cn.wbuf[:0]
	cn.finishLocked()
	cn.mu.Unlock()
	cn.c.Close()
	cn.cancel()
}

// armIdle (re)starts the idle timer: it fires GOAWAY on a connection that
// has had no stream for the idle timeout.
func (cn *conn) armIdle() {
	cn.mu.Lock()
	cn.armIdleLocked()
	cn.mu.Unlock()
}

func (cn *conn) armIdleLocked() {
	if cn.dead {
		return
	}
	if cn.idleTimer == nil {
		cn.idleTimer = time.AfterFunc(cn.idle, cn.idleFired)
		return
	}
	cn.idleTimer.Reset(cn.idle)
}

func (cn *conn) idleFired() {
	cn.mu.Lock()
	busy := len(cn.streams) > 0 || cn.running > 0
	cn.mu.Unlock()
	if !busy {
		// The writer closes the connection after the GOAWAY, which ends
		// the reader's wait.
		cn.startGoAway()
	}
}
