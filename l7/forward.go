//lint:file-ignore SA1019 the h2 upstream path uses x/net/http2's Transport (see upstream.go).

package l7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/l7/compress"
	"github.com/portcullis-lb/portcullis/l7/route"
	"github.com/portcullis-lb/portcullis/l7/transform"
)

// maxBufferedBody is the largest request body read whole before forwarding
// so that it can be sent again on another endpoint (only when the pool
// retries at all).
const maxBufferedBody = 64 << 10

// reqState is the per-request scratch space, pooled so that a request
// through the proxy allocates almost nothing of its own.
type reqState struct {
	uri     string
	outHost string
	upgrade string
	conn    connTokens
	fwd     fwdHeaders
	match   route.Result
	in      *http.Request
	out     http.Request // the upstream request for route rewrites
	idBuf   [48]byte
	tried   [4]endpointRef
	bytesIn int64
	ntried  int
	echoID  bool
	body    []byte // buffered request body, when retries need it
	bodyRd  bytes.Reader
	copyBuf []byte
	sec     secState
	limBody limitedBody // the request body behind max_body_bytes
	// The route's response wrappers (transforms.go), closed after the
	// exchange; bodyKept: body holds a transformed request body.
	cw       *compress.Writer
	xres     *transform.ResponseWriter
	bodyKept bool
	cache    cacheState // the route's shared cache (cachepath.go)
}

var statePool = sync.Pool{New: func() any { return &reqState{copyBuf: make([]byte, 32<<10)} }}

func (st *reqState) reset() {
	buf, body := st.copyBuf, st.body[:0]
	if cap(body) > maxBufferedBody {
		body = nil // a transformed body (up to 1 MiB) is not kept for later requests
	}
	*st = reqState{}
	st.copyBuf, st.body = buf, body
}

// skipHeader drops fields the client named in Connection and the
// forwarding fields the proxy writes itself.
func (st *reqState) skipHeader(k string) bool {
	switch k {
	case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded":
		return true
	}
	if k == st.fwd.idHeader {
		return true
	}
	return st.conn.n > 0 && st.conn.has(k)
}

// fwdHeaders are the fields this hop adds: X-Forwarded-*, Forwarded
// (RFC 7239), the request id and Via. For HTTP/1.1 upstreams they are
// written straight to the wire, never stored in a map.
type fwdHeaders struct {
	clientIP  string
	client    netip.Addr
	priorXFF  []string // kept only from trusted proxies
	priorFwd  []string
	proto     string
	host      string
	idHeader  string
	id        []byte
	via       string
	viaProto  string
	keepProto string // from a trusted proxy
	keepHost  string
}

// appendTo appends the fields to an HTTP/1.1 request head.
func (f *fwdHeaders) appendTo(b []byte) []byte {
	b = append(b, "X-Forwarded-For: "...)
	for _, v := range f.priorXFF {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = append(b, f.clientIP...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, f.xfProto()...)
	if xh := f.xfHost(); xh != "" {
		b = append(b, "\r\nX-Forwarded-Host: "...)
		b = append(b, xh...)
	}
	b = append(b, "\r\nForwarded: "...)
	for _, v := range f.priorFwd {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = f.appendForwarded(b)
	b = append(b, "\r\n"...)
	b = append(b, f.idHeader...)
	b = append(b, ": "...)
	b = append(b, f.id...)
	b = append(b, "\r\n"...)
	if f.via != "" {
		b = append(b, "Via: "...)
		b = append(b, f.viaProto...)
		b = append(b, ' ')
		b = append(b, f.via...)
		b = append(b, "\r\n"...)
	}
	return b
}

func (f *fwdHeaders) xfProto() string {
	if f.keepProto != "" {
		return f.keepProto
	}
	return f.proto
}

func (f *fwdHeaders) xfHost() string {
	if f.keepHost != "" {
		return f.keepHost
	}
	return f.host
}

// appendForwarded appends this hop's element: for=, host=, proto= (RFC
// 7239 §4). IPv6 addresses are bracketed and quoted (§6); the host is
// always quoted because a port's ':' is not a token character.
func (f *fwdHeaders) appendForwarded(b []byte) []byte {
	b = append(b, "for="...)
	if f.client.Is6() && !f.client.Is4In6() {
		b = append(b, `"[`...)
		b = append(b, f.clientIP...)
		b = append(b, `]"`...)
	} else {
		b = append(b, f.clientIP...)
	}
	b = append(b, `;host="`...)
	for i := 0; i < len(f.host); i++ {
		if c := f.host[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, f.host[i])
	}
	b = append(b, `";proto=`...)
	return append(b, f.proto...)
}

func (f *fwdHeaders) forwardedString() string {
	var buf [128]byte
	return string(f.appendForwarded(buf[:0]))
}

// isIdempotent is RFC 9110 §9.2.2.
func isIdempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// prepare fills the per-request state from the incoming request: the
// client's address, forwarding fields, request id, framing of the body.
func (p *Proxy) prepare(g *Generation, r *http.Request, st *reqState) {
	host, _ := splitHostPort(r.RemoteAddr)
	st.fwd.clientIP = host
	st.fwd.client, _ = netip.ParseAddr(host)
	st.fwd.host = r.Host
	st.fwd.proto = "http"
	if r.TLS != nil {
		st.fwd.proto = "https"
	}
	st.fwd.via, st.fwd.viaProto = g.via, "1.1"
	if r.ProtoMajor == 2 {
		st.fwd.viaProto = "2"
	}
	if g.trusts(st.fwd.client) {
		st.fwd.priorXFF = r.Header["X-Forwarded-For"]
		st.fwd.priorFwd = r.Header["Forwarded"]
		if v := r.Header["X-Forwarded-Proto"]; len(v) == 1 && (v[0] == "http" || v[0] == "https") {
			st.fwd.keepProto = v[0]
		}
		if v := r.Header["X-Forwarded-Host"]; len(v) == 1 {
			st.fwd.keepHost = v[0]
		}
	}
	st.fwd.idHeader = g.idHeader
	st.echoID = g.echoID
	if v := r.Header[g.idHeader]; len(v) == 1 && validRequestID(v[0]) {
		st.fwd.id = append(st.idBuf[:0], v[0]...)
	} else {
		st.fwd.id = p.ids.next(st.idBuf[:0])
	}
	if c := r.Header["Connection"]; len(c) > 0 {
		st.conn.parse(c)
		if st.conn.upgrade && r.ProtoMajor == 1 {
			if u := r.Header["Upgrade"]; len(u) == 1 {
				st.upgrade = u[0]
			}
		}
	}
	st.uri = r.RequestURI
	if st.uri == "" || st.uri[0] != '/' {
		// absolute-form (RFC 9112 §3.2.2) or an h2 request without a raw
		// target: forward the origin-form.
		st.uri = r.URL.RequestURI()
	}
	st.outHost = r.Host
}

// validRequestID accepts an incoming id that is short and printable, so a
// client cannot inject junk into every log line.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\' {
			return false
		}
	}
	return true
}

// splitHostPort takes "1.2.3.4:5" or "[::1]:5" apart without allocating.
func splitHostPort(a string) (host, port string) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return a, ""
	}
	host, port = a[:i], a[i+1:]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port
}

// attempt is the result of one try on one endpoint.
type attempt struct {
	status      int
	sent        bool // the client's response has started: no retry possible
	err         error
	connectErr  bool
	timeout     bool
	retryStatus bool // the upstream answered with a status the pool retries
	bytesOut    int64
	upstreamDur time.Duration
	abort       bool // the response was cut: abort the client's stream
	clientGone  bool
	badRequest  bool // the client's body was malformed or cut short
	tooLarge    bool // the client's body grew past the route's limit (set by serveRequest)
}

// bodyModeOf chooses how the request body is framed upstream.
func bodyModeOf(r *http.Request) bodyMode {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return bodyMode{kind: bodyNone}
	case r.ContentLength > 0:
		return bodyMode{kind: bodyLength, n: r.ContentLength}
	}
	return bodyMode{kind: bodyChunked}
}

// forwardH1 sends the request to one endpoint over HTTP/1.1 and, unless the
// answer is one to retry, relays the response.
func (p *Proxy) forwardH1(w http.ResponseWriter, r *http.Request, st *reqState, prt *poolRT, addr string, bm bodyMode, replayable, mayRetry bool) (a attempt) {
	up := prt.up
	hp := up.host(addr)
	conf := &prt.conf
	start := time.Now()
	var deadline time.Time
	if conf.TotalTimeout > 0 {
		deadline = start.Add(conf.TotalTimeout)
	}
	for try := 0; ; try++ {
		c, reused, err := hp.get(r.Context())
		if err != nil {
			a.err, a.connectErr, a.timeout = err, true, isTimeout(err)
			return a
		}
		a = p.exchangeH1(w, r, st, prt, c, bm, deadline, mayRetry)
		a.upstreamDur = time.Since(start)
		// A kept-alive connection the upstream closed while it sat idle
		// fails before any byte of an answer: send it again on a fresh
		// connection, once, when the body can be sent again and the
		// method is idempotent (the upstream might have acted on it before
		// closing; net/http's Transport draws the same line).
		if a.err != nil && reused && !a.sent && a.status == 0 && !a.timeout && replayable && isIdempotent(r.Method) &&
			try == 0 && !a.clientGone && !a.badRequest {
			if st.body != nil {
				st.bodyRd.Reset(st.body)
			}
			continue
		}
		return a
	}
}

func (p *Proxy) exchangeH1(w http.ResponseWriter, r *http.Request, st *reqState, prt *poolRT, c *h1conn, bm bodyMode, deadline time.Time, mayRetry bool) (a attempt) {
	conf := &prt.conf
	ok := false
	defer func() {
		if !ok {
			c.conn.Close()
		}
	}()
	if !deadline.IsZero() {
		c.conn.SetDeadline(deadline)
		c.hasDeadline = true
		c.rd = time.Time{}
	}
	writeRequestHead(c.bw, r, st, bm)
	if bm.kind != bodyNone {
		var body io.Reader = r.Body
		if st.body != nil {
			body = &st.bodyRd
		}
		n, err := copyRequestBody(c.bw, body, bm, st.copyBuf)
		st.bytesIn = n
		if err != nil {
			a.err = err
			if err == errClientBody {
				// Or a body over its limit: serveRequest tells them apart.
				a.badRequest = true
				a.status = http.StatusBadRequest
			}
			return a
		}
	}
	if err := c.bw.Flush(); err != nil {
		a.err = err
		return a
	}
	// An HTTP/2 or HTTP/3 client that resets its stream ends the wait on
	// the upstream at once instead of when the upstream answers (a stream
	// reset is cheap to send: rapid reset): the connection is then
	// dropped, never pooled. An HTTP/1.1 client that hangs up does not
	// abort the exchange, as HAProxy's default (no abortonclose): the
	// registration would cost three allocations on every request.
	stop := noStop
	if r.ProtoMajor >= 2 {
		stop = afterFunc(r.Context(), c.abort)
		defer stop()
	}
	if conf.ResponseHeaderTimeout > 0 {
		c.armHeaderTimeout(conf.ResponseHeaderTimeout, deadline)
	}
	h := w.Header()
	var head respHead
	for {
		if err := readResponseHead(c.br, h, r.Method, &head); err != nil {
			a.err, a.timeout = err, isTimeout(err)
			if r.Context().Err() != nil {
				// Not the upstream's fault: no 504, no outlier count.
				a.timeout, a.clientGone = false, true
			}
			clear(h)
			return a
		}
		if head.status >= 200 || head.status == http.StatusSwitchingProtocols {
			break
		}
		// Interim answers: 100 Continue is ours to absorb (the client got
		// its own from net/http when the body was read); 103 Early Hints
		// passes through.
		if head.status == http.StatusEarlyHints {
			w.WriteHeader(http.StatusEarlyHints)
		}
		clear(h)
	}
	a.status = head.status
	if mayRetry && retryOnStatus(conf.Retry, head.status) && prt.p.RetryAllowed() {
		a.retryStatus = true
		clear(h)
		return a
	}
	if !c.rd.IsZero() && (head.body.kind != bodyLength || head.body.n > int64(c.br.Buffered())) {
		// The body needs more reads: the header timeout must not cut it.
		c.conn.SetReadDeadline(deadline)
		c.rd = time.Time{}
	}
	if head.status == http.StatusSwitchingProtocols {
		a.sent = true
		if st.upgrade == "" || head.upgrade == "" {
			a.err, a.status = errBadResponse, http.StatusBadGateway
			a.sent = false
			clear(h)
			return a
		}
		if !stop() {
			a.err, a.clientGone = context.Canceled, true
			return a
		}
		ok = true // the tunnel owns the connection now
		a.err = p.tunnel(w, c, head.upgrade)
		return a
	}
	p.decorateResponse(h, st)
	w.WriteHeader(head.status)
	a.sent = true
	var flush func()
	if head.streaming {
		if f, isF := w.(http.Flusher); isF {
			flush = f.Flush
		}
	}
	n, err, clientErr := copyBody(w, c.br, head.body, flush, h)
	a.bytesOut = n
	if err != nil {
		a.err = err
		clientErr = clientErr || r.Context().Err() != nil
		a.abort = !clientErr
		a.clientGone = clientErr
		return a
	}
	if flush != nil && st.cw == nil {
		// (With a compressor the handler's end sends the rest: a flush
		// here would make a short body that came in one piece a stream.)
		flush()
	}
	if head.close || !stop() {
		// !stop(): the read deadline may have been cut; not reusable.
		return a
	}
	ok = true
	c.hp.put(c)
	return a
}

func noStop() bool { return true }

// afterFuncer is a context that runs functions after it ends by itself,
// as the lean HTTP/2 server's stream contexts do (context.AfterFunc uses
// the same method when a parent has it).
type afterFuncer interface {
	AfterFunc(func()) (stop func() bool)
}

// afterFunc is context.AfterFunc, calling an afterFuncer directly:
// context.AfterFunc would wrap the registration in a cancelCtx of its own
// and make the stream context's Done channel, seven allocations on every
// HTTP/2 request instead of one.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(afterFuncer); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// decorateResponse adds what this hop adds to every response: the route's
// response header changes, Via, the request id.
func (p *Proxy) decorateResponse(h http.Header, st *reqState) {
	if st.cache.wrapped {
		// The cache writer decorates once it has kept the upstream's
		// own head (cachepath.go).
		st.cache.w.upstream = true
		return
	}
	p.decorate(h, st)
}

func (p *Proxy) decorate(h http.Header, st *reqState) {
	if rt := st.match.Route; rt != nil {
		rt.RewriteResponse(h, st.in, &st.match, st.fwd.client)
	}
	if st.xres != nil {
		st.xres.Arm() // an upstream's (or a cached) answer: its JSON body may be transformed
	}
	st.sec.headers(h)
	if st.fwd.via != "" {
		h["Via"] = append(h["Via"], st.fwd.viaProto+" "+st.fwd.via)
	}
	if st.echoID {
		h[st.fwd.idHeader] = []string{string(st.fwd.id)}
	}
}

// tunnel hands a 101 answer to the client and splices the two connections
// both ways until either side closes (WebSocket and any other Upgrade).
func (p *Proxy) tunnel(w http.ResponseWriter, c *h1conn, proto string) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		c.conn.Close()
		return errors.New("client connection cannot be hijacked")
	}
	h := w.Header()
	cc, crw, err := hj.Hijack()
	if err != nil {
		c.conn.Close()
		return err
	}
	c.conn.SetDeadline(time.Time{})
	bw := crw.Writer
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ")
	bw.WriteString(proto)
	bw.WriteString("\r\n")
	h.Write(bw)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		cc.Close()
		c.conn.Close()
		return err
	}
	t := p.tunnels.add(cc, c.conn)
	go func() {
		defer p.tunnels.remove(t)
		var wg sync.WaitGroup
		wg.Go(func() { splice(c.conn, cc, crw.Reader) })
		splice(cc, c.conn, c.br)
		wg.Wait()
		cc.Close()
		c.conn.Close()
	}()
	return nil
}

// splice copies src to dst, first what src's reader had buffered, then the
// rest through io.Copy (splice(2) between TCP sockets on Linux), and
// half-closes dst so the other side sees the end.
func splice(dst, src net.Conn, buffered *bufio.Reader) {
	if n := buffered.Buffered(); n > 0 {
		b, _ := buffered.Peek(n)
		if _, err := dst.Write(b); err != nil {
			src.Close()
			return
		}
	}
	io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// tunnelSet tracks upgraded connections: they outlive reloads, and shutdown
// closes them when the drain time is over.
type tunnelSet struct {
	mu sync.Mutex
	m  map[*tunnelConn]struct{}
}

type tunnelConn struct{ a, b net.Conn }

func (s *tunnelSet) add(a, b net.Conn) *tunnelConn {
	t := &tunnelConn{a, b}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*tunnelConn]struct{}{}
	}
	s.m[t] = struct{}{}
	s.mu.Unlock()
	return t
}

func (s *tunnelSet) remove(t *tunnelConn) {
	s.mu.Lock()
	delete(s.m, t)
	s.mu.Unlock()
}

func (s *tunnelSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.m {
		t.a.Close()
		t.b.Close()
	}
}

// forwardH2 sends the request over HTTP/2 (TLS or h2c) with the
// x/net/http2 transport, which multiplexes and keeps trailers (gRPC).
func (p *Proxy) forwardH2(w http.ResponseWriter, r *http.Request, st *reqState, prt *poolRT, addr string, bm bodyMode, mayRetry bool) (a attempt) {
	up := prt.up
	conf := &prt.conf
	start := time.Now()
	ctx := r.Context()
	var cancel context.CancelFunc
	if conf.TotalTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, conf.TotalTimeout)
		defer cancel()
	}
	hctx, hcancel := context.WithCancelCause(ctx)
	defer hcancel(nil)
	var timer *time.Timer
	errHeaderTimeout := errors.New("response header timeout")
	if conf.ResponseHeaderTimeout > 0 {
		timer = time.AfterFunc(conf.ResponseHeaderTimeout, func() { hcancel(errHeaderTimeout) })
	}
	h := r.Header
	for k := range h {
		if (isHopHeader(k) && k != "Te") || st.skipHeader(k) {
			delete(h, k)
		}
	}
	if te := h["Te"]; len(te) > 0 {
		if te[0] == "trailers" || strings.EqualFold(te[0], "trailers") {
			h["Te"] = []string{"trailers"}
		} else {
			delete(h, "Te")
		}
	}
	xff := st.fwd.clientIP
	if len(st.fwd.priorXFF) > 0 {
		xff = strings.Join(st.fwd.priorXFF, ", ") + ", " + xff
	}
	h["X-Forwarded-For"] = []string{xff}
	h["X-Forwarded-Proto"] = []string{st.fwd.xfProto()}
	h["X-Forwarded-Host"] = []string{st.fwd.xfHost()}
	fwd := st.fwd.forwardedString()
	if len(st.fwd.priorFwd) > 0 {
		fwd = strings.Join(st.fwd.priorFwd, ", ") + ", " + fwd
	}
	h["Forwarded"] = []string{fwd}
	h[st.fwd.idHeader] = []string{string(st.fwd.id)}
	if st.fwd.via != "" {
		h["Via"] = append(h["Via"], st.fwd.viaProto+" "+st.fwd.via)
	}
	out := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{},
		Header:        h,
		Host:          st.outHost,
		ContentLength: r.ContentLength,
		Trailer:       r.Trailer,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
	}
	*out.URL = *r.URL
	out.URL.Scheme, out.URL.Host = up.scheme, addr
	if st.uri != r.URL.RequestURI() {
		out.URL.Opaque = st.uri
	}
	switch {
	case bm.kind == bodyNone:
		out.Body = nil
		out.ContentLength = 0
	case st.body != nil:
		out.Body = io.NopCloser(bytes.NewReader(st.body))
	default:
		out.Body = r.Body
	}
	out = out.WithContext(hctx)
	resp, err := up.h2.RoundTrip(out)
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		if cause := context.Cause(hctx); cause == errHeaderTimeout {
			err = cause
			a.timeout = true
		}
		var ce *connectError
		a.err, a.connectErr = err, errors.As(err, &ce)
		a.timeout = a.timeout || isTimeout(err)
		a.upstreamDur = time.Since(start)
		return a
	}
	defer resp.Body.Close()
	a.status = resp.StatusCode
	if mayRetry && retryOnStatus(conf.Retry, resp.StatusCode) && prt.p.RetryAllowed() {
		a.retryStatus = true
		return a
	}
	wh := w.Header()
	for k, vv := range resp.Header {
		if isHopHeader(k) && k != "Content-Length" {
			continue
		}
		wh[k] = vv
	}
	// Announce the trailers the upstream declared, so that net/http
	// chunks an HTTP/1.1 client's response and can send them.
	for k := range resp.Trailer {
		wh["Trailer"] = append(wh["Trailer"], k)
	}
	if len(resp.Trailer) > 0 {
		delete(wh, "Content-Length") // a length would stop the chunking trailers need
	}
	p.decorateResponse(wh, st)
	streaming := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	w.WriteHeader(resp.StatusCode)
	a.sent = true
	var flusher http.Flusher
	if streaming {
		flusher, _ = w.(http.Flusher)
	}
	buf := st.copyBuf
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				a.err, a.clientGone = werr, true
				break
			}
			a.bytesOut += int64(n)
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			a.err, a.abort = rerr, true
			break
		}
	}
	// gRPC status travels in trailers: pass every one on.
	for k, vv := range resp.Trailer {
		wh[http.TrailerPrefix+k] = vv
	}
	a.upstreamDur = time.Since(start)
	return a
}

// statusOf maps a failed attempt to the client's status.
func (a *attempt) failStatus() int {
	switch {
	case a.badRequest:
		return http.StatusBadRequest
	case a.timeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// writeError answers with a small JSON body, the same shape everywhere.
func writeError(w http.ResponseWriter, code int, msg string, id []byte) {
	h := w.Header()
	h["Content-Type"] = jsonCT
	h["Cache-Control"] = noStore
	var b [256]byte
	out := append(b[:0], `{"status":`...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, `,"error":`...)
	out = strconv.AppendQuote(out, msg)
	if len(id) > 0 {
		out = append(out, `,"request_id":`...)
		out = strconv.AppendQuote(out, unsafeString(id))
	}
	out = append(out, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(code)
	w.Write(out)
}

var (
	jsonCT     = []string{"application/json"}
	noStore    = []string{"no-store"}
	retryAfter = []string{"1"}
)
