// Package h1 is a lean HTTP/1.1 server for one connection at a time, for
// cleartext listeners where net/http's server is the proxy's largest cost
// after the kernel: net/http allocates ~17 objects per request, runs a
// background read per request (one more read syscall and two deadline
// changes), and clones the response header map at WriteHeader.
//
// It serves an http.Handler with a pooled *http.Request and a
// ResponseWriter that supports Flush and Hijack. Parsing is strict, because
// the proxy forwards what it accepts (RFC 9112 §11.2, request smuggling):
//
//   - request line: token method, origin-form or absolute-form target (or
//     "*" for OPTIONS), HTTP/1.0 or HTTP/1.1; anything else is 400 (505
//     for other versions);
//   - header fields: token names with the colon right after the name (no
//     whitespace before it, RFC 9112 §5.1), no obsolete line folding, no
//     control characters in values, CRLF line ends only;
//   - exactly one Host in HTTP/1.1 (RFC 9112 §3.2);
//   - one Content-Length with digits only; several (even equal) are 400;
//   - Transfer-Encoding only "chunked", once, never with Content-Length,
//     never in HTTP/1.0 (400; other codings 501);
//   - chunked bodies: hex sizes without signs or spaces, CRLF after each
//     chunk, trailers read and dropped; a bad chunk ends the connection.
//
// After a malformed body the connection is closed: the stream cannot be
// trusted to be at a message boundary.
//
// Lifecycle, as net/http's server gives it: Shutdown closes idle
// keep-alive connections at once, lets busy ones finish their request
// (answered with Connection: close) and closes what is left when its
// context ends; Close closes everything. Each connection's context (the
// requests' context) is cancelled when the connection ends, when the
// server closes it, and when the client goes away while a handler runs:
// a handler that has read the whole body and has run for about a second
// gets its connection probed (a non-blocking MSG_PEEK from the sweeper,
// never per request), and an end of stream or a reset cancels it.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// Server holds the settings of the connections it serves.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds the wait for a request head once its first
	// byte arrived... and, for simplicity, from the start of the wait.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout time.Duration
	// MaxHeaderBytes is the largest request head (request line and
	// fields). Default 16 KiB, as HAProxy's tune.bufsize.
	MaxHeaderBytes int

	mu       sync.Mutex
	conns    map[*conn]struct{}
	sweeping bool
	shutdown atomic.Bool
	closed   atomic.Bool
	// epoch counts sweeper ticks; a handler records it when it starts
	// waiting on the upstream, so the sweeper knows how long it has run.
	epoch atomic.Int64
}

// Idle connections give their buffers back: a connection that waited this
// long for its next request drops its 16 KiB reader and 4 KiB writer until
// a byte arrives (HAProxy frees its buffers the same way). Busy connections
// never pay for it: the check is one atomic operation per request.
const idleRelease = time.Second

// Connection wait states, for the sweeper.
const (
	stBusy      int32 = iota
	stIdle            // waiting for a request with buffers
	stReleasing       // the sweeper is interrupting the wait
	stReleased        // the wait was interrupted: drop the buffers
	stBare            // waiting for a request without buffers
	stShut            // Shutdown closed the idle connection
	stNew             // waiting for the connection's first request
)

// newGrace is how long Shutdown lets a new connection send its first
// request before it counts as idle (net/http gives 5s): a connection
// accepted just before a reload or shutdown began is served, not dropped.
const newGrace = 2 * time.Second

const defaultMaxHeader = 16 << 10

// conn is one client connection and everything reused across its requests.
type conn struct {
	srv       *Server
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	ctx       context.Context
	cancel    context.CancelFunc
	remote    string
	req       http.Request
	tmpl      *http.Request // empty request carrying ctx (its field is unexported)
	url       url.URL
	hdr       http.Header
	vals      []string
	body      body
	w         response
	rd        time.Time // read deadline armed
	hijacked  bool
	inHandler bool
	served    bool // a request was read on the connection

	state     atomic.Int32
	idleSince atomic.Int64
	one       [1]byte
	pc        prefixConn
	// watch is the sweeper epoch (+1) at which the running handler had
	// the whole request body; 0 when no handler runs or it still reads.
	watch   atomic.Int64
	probing atomic.Bool
}

// prefixConn replays the byte read while the connection had no buffer.
type prefixConn struct {
	net.Conn
	b   byte
	has bool
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0] = p.b
		p.has = false
		return 1, nil
	}
	return p.Conn.Read(b)
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, defaultMaxHeader) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// ServeConn serves c until the client closes, an error, a hijack or the
// server's shutdown. Every request's context derives from ctx (values such
// as the listener name are looked up there); it is cancelled when the
// connection ends or the client goes away.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cn := &conn{srv: s, c: c, ctx: ctx, cancel: cancel, remote: c.RemoteAddr().String(), hdr: make(http.Header, 16)}
	cn.tmpl = new(http.Request).WithContext(ctx)
	cn.pc.Conn = c
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		c.Close()
		return
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[cn] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
	s.mu.Unlock()
	cn.takeBuffers()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cn)
		s.mu.Unlock()
		if !cn.hijacked {
			c.Close()
			cn.dropBuffers()
		}
	}()
	for {
		keep := cn.serveOne()
		if !keep || cn.hijacked {
			return
		}
	}
}

// errors that become status codes.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func bad(msg string) error { return &statusError{http.StatusBadRequest, msg} }

// armRead sets the read deadline with slack, re-arming only when the armed
// one is too near (timer updates cost a few percent per request).
func (cn *conn) armRead(d time.Duration) {
	if d <= 0 {
		return
	}
	want := time.Now().Add(d)
	if !cn.rd.IsZero() && !cn.rd.Before(want) && cn.rd.Sub(want) <= d/8 {
		return
	}
	cn.rd = want.Add(d / 8)
	cn.c.SetReadDeadline(cn.rd)
}

// serveOne reads and serves one request; false ends the connection.
func (cn *conn) serveOne() bool {
	s := cn.srv
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 120 * time.Second
	}
	cn.armRead(idle)
	if !cn.waitRequest(idle) {
		return false
	}
	headTimer := s.ReadHeaderTimeout > 0 && s.ReadHeaderTimeout < idle && !cn.headBuffered()
	if headTimer {
		// The common case, a head that arrived whole, needs no header
		// timer: it is complete before any read could wait.
		cn.armRead(s.ReadHeaderTimeout)
	}
	cn.served = true
	keep, err := cn.readRequest()
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			cn.writeError(se.code, se.msg)
		}
		return false
	}
	// The body is read by the handler, with no header timeout: it may be
	// a long upload. The idle timeout still bounds each read.
	if headTimer {
		cn.armRead(idle)
	}
	r := &cn.req
	w := &cn.w
	*w = response{cn: cn, req: r, hdr: w.hdr}
	if w.hdr == nil {
		w.hdr = make(http.Header, 16)
	} else {
		clear(w.hdr)
	}
	cn.inHandler = true
	if cn.body.done {
		cn.startWatch()
	}
	ok := cn.serveHandler(w, r)
	cn.inHandler = false
	cn.watch.Store(0)
	if !ok {
		return false
	}
	if cn.hijacked {
		return false
	}
	if err := w.finish(); err != nil {
		return false
	}
	if !keep || w.closeAfter || cn.body.err != nil {
		return false
	}
	// Discard what the handler left of the body, a little at most; a
	// larger rest is cheaper to drop with the connection.
	if !cn.body.done {
		if n, err := io.CopyN(io.Discard, &cn.body, 256<<10); err != nil && err != io.EOF || n == 256<<10 {
			return false
		}
		if !cn.body.done {
			return false
		}
	}
	return true
}

// headBuffered reports whether a whole request head is already in the
// read buffer.
func (cn *conn) headBuffered() bool {
	b, _ := cn.br.Peek(cn.br.Buffered())
	return indexHeadEnd(b) >= 0
}

// startWatch lets the sweeper probe the connection while the handler runs:
// the body is read, so nothing else reads the socket until it returns.
func (cn *conn) startWatch() {
	if !cn.inHandler || cn.hijacked {
		return
	}
	cn.watch.Store(cn.srv.epoch.Load() + 1)
}

func (cn *conn) takeBuffers() {
	cn.br = readerPool.Get().(*bufio.Reader)
	cn.br.Reset(&cn.pc)
	cn.bw = writerPool.Get().(*bufio.Writer)
	cn.bw.Reset(cn.c)
}

func (cn *conn) dropBuffers() {
	if cn.br != nil {
		cn.br.Reset(nil)
		if cn.br.Size() == defaultMaxHeader {
			readerPool.Put(cn.br)
		}
		cn.bw.Reset(nil)
		writerPool.Put(cn.bw)
		cn.br, cn.bw = nil, nil
	}
}

// waitRequest waits for the first byte of the next request. Leftover
// pipelined bytes are served at once; otherwise the wait may be cut by the
// sweeper, and then continues without buffers.
func (cn *conn) waitRequest(idle time.Duration) bool {
	if cn.br.Buffered() > 0 {
		return true
	}
	s := cn.srv
	cn.idleSince.Store(time.Now().UnixNano())
	ist := stIdle
	if !cn.served {
		ist = stNew
	}
	cn.state.Store(ist)
	// Shutdown sets its flag before it looks for idle connections: either
	// it finds this one idle or this one sees the flag.
	if ist == stIdle && s.shutdown.Load() && cn.state.CompareAndSwap(stIdle, stBusy) {
		return false
	}
	_, err := cn.br.Peek(1)
	if cn.state.CompareAndSwap(ist, stBusy) {
		return err == nil
	}
	// The sweeper is cutting this wait, or Shutdown closed the
	// connection; let the sweeper finish setting the deadline before
	// replacing it.
	st := cn.state.Load()
	for ; st != stReleased && st != stShut; st = cn.state.Load() {
		runtime.Gosched()
	}
	if st == stShut {
		return false
	}
	cn.state.Store(stBusy)
	cn.rd = time.Time{}
	cn.armRead(idle)
	if err == nil || cn.br.Buffered() > 0 {
		return true // a request arrived as the sweeper struck
	}
	if !isTimeout(err) {
		return false
	}
	cn.dropBuffers()
	cn.state.Store(stBare)
	if s.shutdown.Load() && cn.state.CompareAndSwap(stBare, stBusy) {
		return false
	}
	n, err := cn.c.Read(cn.one[:])
	if !cn.state.CompareAndSwap(stBare, stBusy) || n == 0 || err != nil {
		return false
	}
	cn.pc.b, cn.pc.has = cn.one[0], true
	cn.takeBuffers()
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sweep cuts the waits of connections idle longer than idleRelease so
// they drop their buffers. It runs twice a second while the server has
// connections and stops with the last one; the cost is per idle
// connection, never per request.
func (s *Server) sweep() {
	t := time.NewTicker(idleRelease / 2)
	defer t.Stop()
	past := time.Unix(1, 0)
	var batch []*conn
	var probe []*conn
	for now := range t.C {
		batch, probe = batch[:0], probe[:0]
		epoch := s.epoch.Add(1)
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.sweeping = false
			s.mu.Unlock()
			return
		}
		for cn := range s.conns {
			if st := cn.state.Load(); (st == stIdle || st == stNew) && now.UnixNano()-cn.idleSince.Load() > int64(idleRelease) {
				batch = append(batch, cn)
			}
			// A handler that has run for two ticks (0.5-1s) with the
			// body read: is its client still there?
			if w := cn.watch.Load(); w != 0 && w <= epoch-1 && !cn.probing.Load() {
				probe = append(probe, cn)
			}
		}
		s.mu.Unlock()
		for _, cn := range probe {
			cn.probing.Store(true)
			// Its own goroutine: if the handler returned meanwhile and the
			// connection went back to a blocking read, the probe waits for
			// that read rather than holding up the sweep.
			go cn.probeGone()
		}
		for _, cn := range batch {
			if cn.state.CompareAndSwap(stIdle, stReleasing) || cn.state.CompareAndSwap(stNew, stReleasing) {
				cn.c.SetReadDeadline(past)
				cn.state.Store(stReleased)
			}
		}
	}
}

// probeGone cancels the connection's context when its client has closed
// or reset the connection while a handler runs. It reads nothing: a
// pipelined next request stays in the socket.
func (cn *conn) probeGone() {
	defer cn.probing.Store(false)
	if cn.watch.Load() == 0 {
		return
	}
	if peerGone(cn.c) {
		cn.cancel()
	}
}

// Shutdown stops the server gracefully: idle keep-alive connections are
// closed at once (and as they become idle), busy ones get Connection: close
// on their response and close after it. When ctx ends first, the rest are
// closed (their contexts cancelled) and ctx's error is returned. New
// connections given to ServeConn after Shutdown are closed. Hijacked
// connections are not the server's any more.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 50*time.Millisecond)
			t.Reset(wait)
		}
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (s *Server) closeIdle() int {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		if cn.state.CompareAndSwap(stIdle, stShut) || cn.state.CompareAndSwap(stBare, stShut) ||
			now-cn.idleSince.Load() > int64(newGrace) && cn.state.CompareAndSwap(stNew, stShut) {
			cn.c.Close()
			cn.cancel()
		}
	}
	return len(s.conns)
}

// Close closes every connection now and cancels their contexts.
func (s *Server) Close() error {
	s.shutdown.Store(true)
	s.closed.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for cn := range s.conns {
		// Close first: a handler woken by the cancellation must find the
		// connection gone, not write a last answer on it.
		cn.c.Close()
		cn.cancel()
	}
	return nil
}

// Conns returns the number of connections being served (hijacked ones
// excluded).
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serveHandler runs the handler; a panic (http.ErrAbortHandler from the
// proxy when an upstream body broke) closes the connection.
func (cn *conn) serveHandler(w *response, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			ok = false
		}
	}()
	cn.srv.Handler.ServeHTTP(w, r)
	return true
}

// readRequest parses the head into cn.req; keep reports keep-alive.
func (cn *conn) readRequest() (keep bool, err error) {
	max := cn.srv.MaxHeaderBytes
	if max <= 0 {
		max = defaultMaxHeader
	}
	var end int
	for {
		buf, _ := cn.br.Peek(cn.br.Buffered())
		i := indexHeadEnd(buf)
		if i == -2 {
			return false, bad("bare LF in the request head")
		}
		if i >= 0 {
			end = i
			break
		}
		if len(buf) >= max {
			if bytes.IndexByte(buf, '\n') < 0 {
				// Not even the request line fits (RFC 9112 §3).
				return false, &statusError{http.StatusRequestURITooLong, "request target too long"}
			}
			return false, &statusError{http.StatusRequestHeaderFieldsTooLarge, "request head too large"}
		}
		if len(buf) == cn.br.Size() {
			cn.growReader(max)
		}
		if _, err := cn.br.Peek(len(buf) + 1); err != nil {
			return false, err
		}
	}
	raw, _ := cn.br.Peek(end)
	// One string for the whole head: fields and the target are slices of
	// it, so they stay valid while the body is read through the buffer.
	head := string(raw[:end-4])
	cn.br.Discard(end)

	line, rest, _ := strings.Cut(head, "\r\n")
	sp1 := strings.IndexByte(line, ' ')
	sp2 := strings.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return false, bad("malformed request line")
	}
	method, target, proto := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(method) {
		return false, bad("malformed method")
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		if strings.HasPrefix(proto, "HTTP/") {
			return false, &statusError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
		}
		return false, bad("malformed request line")
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return false, bad("malformed request target")
		}
	}

	r := &cn.req
	h := cn.hdr
	clear(h)
	*r = *cn.tmpl // copies the context, which WithContext would allocate for
	r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor = method, proto, 1, minor
	r.Header, r.RemoteAddr, r.RequestURI = h, cn.remote, target
	if err := cn.parseTarget(r, target); err != nil {
		return false, err
	}

	cn.vals = cn.vals[:0]
	var cl, te, host, conns int
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(l, ':')
		if colon <= 0 {
			return false, bad("malformed header field")
		}
		name := l[:colon]
		if !isToken(name) {
			// Also catches "Name :" and obsolete folding (a line that
			// starts with whitespace).
			return false, bad("malformed header field name")
		}
		v := trimOWS(l[colon+1:])
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return false, bad("control character in a header field")
			}
		}
		k := hkey.Canonical(name)
		switch k {
		case "Content-Length":
			cl++
		case "Transfer-Encoding":
			te++
		case "Host":
			host++
		case "Connection":
			conns++
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		cn.vals = append(cn.vals, v)
		n := len(cn.vals)
		h[k] = cn.vals[n-1 : n : n]
	}
	if minor == 1 && host != 1 || host > 1 {
		return false, bad("a request needs exactly one Host")
	}
	if host == 1 {
		r.Host = h["Host"][0]
		delete(h, "Host")
		if !validHost(r.Host) {
			return false, bad("malformed Host")
		}
	}
	if r.URL.Host != "" {
		// absolute-form: the target's authority wins (RFC 9112 §3.2.2).
		r.Host = r.URL.Host
	}
	keep = minor == 1
	if conns > 0 {
		for _, v := range h["Connection"] {
			for _, t := range strings.Split(v, ",") {
				switch t = strings.TrimSpace(t); {
				case strings.EqualFold(t, "close"):
					keep = false
					r.Close = true
				case strings.EqualFold(t, "keep-alive") && minor == 0:
					keep = true
				}
			}
		}
	}
	if minor == 0 && !keep {
		r.Close = true
	}
	cn.body = body{cn: cn}
	switch {
	case te > 0:
		if cl > 0 {
			return false, bad("Content-Length with Transfer-Encoding")
		}
		if minor == 0 {
			return false, bad("Transfer-Encoding in HTTP/1.0")
		}
		if te > 1 || len(h["Transfer-Encoding"]) != 1 || !strings.EqualFold(h["Transfer-Encoding"][0], "chunked") {
			return false, &statusError{http.StatusNotImplemented, "unsupported transfer coding"}
		}
		delete(h, "Transfer-Encoding")
		r.TransferEncoding = chunkedTE
		r.ContentLength = -1
		cn.body.chunked = true
		r.Body = &cn.body
	case cl > 0:
		if cl > 1 || len(h["Content-Length"]) != 1 {
			return false, bad("several Content-Length fields")
		}
		n, ok := parseLength(h["Content-Length"][0])
		if !ok {
			return false, bad("malformed Content-Length")
		}
		r.ContentLength = n
		cn.body.left = n
		if n == 0 {
			cn.body.done = true
			r.Body = http.NoBody
		} else {
			r.Body = &cn.body
		}
	default:
		cn.body.done = true
		r.Body = http.NoBody
	}
	if e := h["Expect"]; len(e) > 0 {
		if len(e) != 1 || !strings.EqualFold(e[0], "100-continue") {
			return false, &statusError{http.StatusExpectationFailed, "unsupported expectation"}
		}
		cn.body.continue100 = !cn.body.done
	}
	return keep, nil
}

var chunkedTE = []string{"chunked"}

// growReader replaces the pooled reader by one that holds a head of max
// bytes, for the rare head larger than the pooled buffer (max_header_bytes
// above 16 KiB). It is dropped with the connection's buffers.
func (cn *conn) growReader(max int) {
	old := cn.br
	b, _ := old.Peek(old.Buffered())
	cn.br = bufio.NewReaderSize(&replayReader{b: bytes.Clone(b), r: &cn.pc}, max)
	old.Reset(nil)
	readerPool.Put(old)
}

// replayReader returns b, then reads r.
type replayReader struct {
	b []byte
	r io.Reader
}

func (p *replayReader) Read(b []byte) (int, error) {
	if len(p.b) > 0 {
		n := copy(b, p.b)
		p.b = p.b[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// parseTarget fills r.URL without allocating for origin-form targets
// without percent-escapes (the common case); others go through net/url.
func (cn *conn) parseTarget(r *http.Request, target string) error {
	switch {
	case target[0] == '/' && strings.IndexByte(target, '%') < 0 && !strings.Contains(target, "#"):
		cn.url = url.URL{}
		path, query, _ := strings.Cut(target, "?")
		cn.url.Path, cn.url.RawQuery = path, query
		cn.url.ForceQuery = query == "" && strings.HasSuffix(target, "?")
		r.URL = &cn.url
		return nil
	case target == "*":
		if r.Method != http.MethodOptions {
			return bad("* is only for OPTIONS")
		}
		cn.url = url.URL{Path: "*"}
		r.URL = &cn.url
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || (u.Scheme == "" && target[0] != '/') {
		return bad("malformed request target")
	}
	r.URL = u
	return nil
}

func indexHeadEnd(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i + 4
		}
		if b[i] == '\n' && i > 0 && b[i-1] != '\r' {
			return -2 // bare LF: reported by the caller's parse as malformed
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken is RFC 9110 §5.6.2.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && tchar[c] {
			continue
		}
		return false
	}
	return true
}

var tchar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-32] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' {
			return false
		}
	}
	return true
}

func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (cn *conn) writeError(code int, msg string) {
	b := cn.bw
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(code))
	b.WriteByte(' ')
	b.WriteString(http.StatusText(code))
	body := `{"status":` + strconv.Itoa(code) + `,"error":` + strconv.Quote(msg) + "}\n"
	b.WriteString("\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\n\r\n")
	b.WriteString(body)
	b.Flush()
}

var timeZero time.Time
