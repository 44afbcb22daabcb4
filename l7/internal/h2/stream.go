package h2

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// stream is one request and its response. Fields below mu's comment are
// guarded by the connection's mu.
type stream struct {
	cn      *conn
	id      uint32
	ctx     *streamCtx
	req     *http.Request
	url     url.URL
	w       response
	hasBody bool // never pooled: an upstream transport may read the body after the handler returned
	reqHdr  http.Header
	// hvals backs the request header's values: one slice for the whole
	// list rather than one per field, kept with the stream.
	hvals []string

	// guarded by cn.mu
	closed      bool  // removed from the map
	remoteDone  bool  // END_STREAM received
	handlerDone bool  // the handler returned (and the response ended)
	sendWindow  int64 // what we may still send
	recvWindow  int64 // what the client may still send
	unacked     int64 // body bytes read by the handler, not yet given back
	declared    int64 // request Content-Length, -1 when absent
	received    int64
	body        []byte // received, not yet read
	bodyOff     int
	bodyErr     error
	bodyCond    sync.Cond
	trailer     http.Header // request trailers declared in "trailer"
	continue100 bool        // Expect: 100-continue, not answered yet
}

// connSpecific reports the connection-specific fields, malformed in
// HTTP/2 (RFC 9113 §8.2.2).
func connSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

func (cn *conn) onHeaders(f *headerBlock) error {
	id := f.id
	if id%2 == 0 {
		return connError{http2.ErrCodeProtocol, "even stream id from a client"}
	}
	cn.mu.Lock()
	st := cn.streams[id]
	cn.mu.Unlock()
	if st != nil {
		return cn.onTrailers(st, f)
	}
	if id <= cn.maxClientID {
		if cn.recentlyReset(id) {
			return nil
		}
		return connError{http2.ErrCodeStreamClosed, "HEADERS on a closed stream"}
	}
	cn.maxClientID = id
	if f.hasPrio && f.prio.StreamDep == id {
		cn.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	cn.mu.Lock()
	if cn.goAway {
		cn.mu.Unlock()
		return nil // after our GOAWAY, new streams are ignored (RFC 9113 §6.8)
	}
	if uint32(len(cn.streams)) >= cn.maxStreams || cn.running >= 2*int(cn.maxStreams) {
		cn.resetLocked(id, http2.ErrCodeRefusedStream)
		cn.mu.Unlock()
		return nil
	}
	cn.mu.Unlock()

	st = newStream(cn, id)
	var rv http.Request
	req, code := st.buildRequest(f, &rv)
	if req == nil && code == 0 {
		st.recycle()
		cn.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	st.ctx = newStreamCtx(cn.ctx)
	var h http.Handler = cn.srv.Handler
	if code != 0 {
		// A header list over the limit: answered without the handler.
		req = &http.Request{Method: "GET", URL: &st.url, Header: http.Header{}, Proto: "HTTP/2.0", ProtoMajor: 2, Body: http.NoBody}
		h = statusHandler(code)
	}
	// WithContext copies the request: req stays on the stack.
	st.req = req.WithContext(st.ctx)
	st.w.head = req.Method == http.MethodHead

	cn.mu.Lock()
	st.sendWindow = cn.peerInitial
	if f.endStream {
		st.remoteDone = true
	}
	cn.streams[id] = st
	cn.running++
	cn.mu.Unlock()
	cn.handlers.Add(1)
	go cn.run(st, h)
	return nil
}

// statusHandler answers a request refused before the handler (431, 417)
// with the JSON body the rest of the proxy gives errors.
type statusHandler int

func (s statusHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	body := `{"status":` + strconv.Itoa(int(s)) + `,"error":` + strconv.Quote(strings.ToLower(http.StatusText(int(s)))) + "}\n"
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(int(s))
	_, _ = io.WriteString(w, body)
}

// buildRequest turns a HEADERS frame into the request; nil with code 0 is
// a malformed request (stream error PROTOCOL_ERROR), a code is a response
// to send without the handler.
func (st *stream) buildRequest(f *headerBlock, r *http.Request) (*http.Request, int) {
	if f.truncated || f.size > int(st.cn.maxHeader) {
		return nil, http.StatusRequestHeaderFieldsTooLarge
	}
	var method, authority, path, protocol string
	var nm, ns, na, np int
	for _, hf := range f.pseudo() {
		switch hf.Name {
		case ":method":
			method, nm = hf.Value, nm+1
		case ":scheme":
			ns++
		case ":authority":
			authority, na = hf.Value, na+1
		case ":path":
			path, np = hf.Value, np+1
		case ":protocol":
			protocol = hf.Value
		default:
			return nil, 0
		}
	}
	if nm != 1 || protocol != "" || na > 1 {
		return nil, 0
	}
	if method == http.MethodConnect {
		if ns != 0 || np != 0 || na != 1 || authority == "" {
			return nil, 0
		}
	} else if ns != 1 || np != 1 || path == "" {
		return nil, 0
	}
	regular := f.regular()
	hdr := st.reqHdr
	vals := st.hvals[:0]
	var cookies []string
	for _, hf := range regular {
		if connSpecific(hf.Name) || hf.Name == "te" && hf.Value != "trailers" {
			return nil, 0
		}
		if hf.Name == "cookie" {
			// RFC 9113 §8.2.3: crumbs are joined for HTTP/1.1.
			cookies = append(cookies, hf.Value)
			continue
		}
		k := hkey.Canonical(hf.Name)
		if old, ok := hdr[k]; ok {
			hdr[k] = append(old, hf.Value)
			continue
		}
		// Capacity 1: a repeated field appends into a copy, never over
		// the next field's value.
		vals = append(vals, hf.Value)
		hdr[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	st.hvals = vals
	if len(cookies) > 0 {
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if ex := hdr["Expect"]; len(ex) > 0 {
		// Answered here when the handler first reads the body, as
		// net/http does; not forwarded.
		if !strings.EqualFold(ex[0], "100-continue") || len(ex) > 1 {
			return nil, http.StatusExpectationFailed
		}
		delete(hdr, "Expect")
		st.continue100 = !f.endStream
	}
	if authority == "" {
		if h := hdr["Host"]; len(h) > 0 {
			authority = h[0]
		}
	}
	*r = http.Request{
		Method:     method,
		URL:        &st.url,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     hdr,
		Host:       authority,
		RemoteAddr: st.cn.remote,
		RequestURI: path,
		TLS:        st.cn.tls,
	}
	if method == http.MethodConnect {
		st.url = url.URL{Host: authority}
		r.RequestURI = authority
	} else if err := parsePath(&st.url, path, method); err != nil {
		return nil, 0
	}
	if cl := hdr["Content-Length"]; len(cl) > 0 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, 0
			}
		}
		n, ok := hkey.ParseLength(cl[0])
		if !ok {
			return nil, 0
		}
		st.declared = n
	}
	if f.endStream {
		if st.declared > 0 {
			return nil, 0
		}
		r.Body = http.NoBody
		r.ContentLength = 0
	} else {
		st.hasBody = true
		r.Body = &reqBody{st: st}
		r.ContentLength = st.declared
		if tr := hdr["Trailer"]; len(tr) > 0 {
			st.trailer = http.Header{}
			for _, k := range hkey.AppendList(nil, tr) {
				st.trailer[k] = nil
			}
			r.Trailer = st.trailer
		}
	}
	return r, 0
}

// parsePath fills u from :path without allocating in the common case.
func parsePath(u *url.URL, path, method string) error {
	if path == "*" {
		if method != http.MethodOptions {
			return errClosed
		}
		*u = url.URL{Path: "*"}
		return nil
	}
	if path[0] != '/' {
		return errClosed
	}
	if strings.IndexByte(path, '%') < 0 && strings.IndexByte(path, '#') < 0 {
		p, q, _ := strings.Cut(path, "?")
		*u = url.URL{Path: p, RawQuery: q, ForceQuery: q == "" && strings.HasSuffix(path, "?")}
		return nil
	}
	pu, err := url.ParseRequestURI(path)
	if err != nil {
		return err
	}
	*u = *pu
	return nil
}

// onTrailers takes a second HEADERS frame on an open stream: the request
// trailers, which must end the stream (RFC 9113 §8.1).
func (cn *conn) onTrailers(st *stream, f *headerBlock) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.streams[f.id] != st {
		// Closed (and maybe recycled) since the caller looked it up.
		return nil
	}
	if st.remoteDone {
		cn.resetLocked(st.id, http2.ErrCodeStreamClosed)
		return nil
	}
	if !f.endStream {
		return connError{http2.ErrCodeProtocol, "trailers without END_STREAM"}
	}
	if len(f.pseudo()) > 0 {
		cn.resetLocked(st.id, http2.ErrCodeProtocol)
		return nil
	}
	if st.declared >= 0 && st.received != st.declared {
		cn.resetLocked(st.id, http2.ErrCodeProtocol)
		return nil
	}
	for _, hf := range f.regular() {
		k := hkey.Canonical(hf.Name)
		if _, ok := st.trailer[k]; ok {
			st.trailer[k] = append(st.trailer[k], hf.Value)
		}
	}
	cn.endRemoteLocked(st)
	return nil
}

// run serves one stream on its own goroutine, which then writes the
// connection's queue when the response's end left that to it (wake).
func (cn *conn) run(st *stream, h http.Handler) {
	if cn.serveStream(st, h) {
		cn.writeLoop()
	}
}

// serveStream runs the handler and ends the stream; true when the caller
// is to run the writer.
func (cn *conn) serveStream(st *stream, h http.Handler) (writes bool) {
	defer cn.handlers.Done()
	ok := serveHandler(h, &st.w, st.req)
	if ok {
		if err := st.w.finish(); err != nil {
			ok = false
		}
	}
	cn.mu.Lock()
	cn.running--
	st.handlerDone = true
	switch {
	case !ok && !st.closed:
		cn.resetLocked(st.id, http2.ErrCodeInternal)
	case !st.remoteDone && !st.closed:
		// The response is complete before the request: tell the client to
		// stop sending (RFC 9113 §8.1).
		cn.resetLocked(st.id, http2.ErrCodeNo)
	case !st.closed:
		cn.closeStreamLocked(st, nil)
	}
	if cn.goAway && len(cn.streams) == 0 && cn.running == 0 {
		cn.finishLocked()
	}
	cn.mu.Unlock()
	st.ctx.cancel()
	writes = st.w.writes
	st.recycle()
	return writes
}

var streamPool sync.Pool

// newStream takes a stream from the pool: its header maps are kept, empty.
func newStream(cn *conn, id uint32) *stream {
	st, _ := streamPool.Get().(*stream)
	if st == nil {
		// Maps without a size hint: up to 8 fields (most requests and
		// responses through a proxy) they are one group, cheaper to fill,
		// search and clear than a sized table.
		st = &stream{reqHdr: http.Header{}, hvals: make([]string, 0, 16), w: response{hdr: http.Header{}}}
	}
	rh, hv, wh := st.reqHdr, st.hvals, st.w.hdr
	*st = stream{cn: cn, id: id, declared: -1, recvWindow: streamWindow, reqHdr: rh, hvals: hv}
	st.w = response{st: st, hdr: wh}
	st.bodyCond.L = &cn.mu
	return st
}

// recycle returns a stream whose handler has returned and which is no
// longer in the connection's map: nothing can reach it any more. Streams
// whose request had a body are not reused (their body reader may outlive
// the handler in an upstream transport), nor maps that grew large.
func (st *stream) recycle() {
	if st.hasBody || len(st.reqHdr) > 64 || len(st.w.hdr) > 64 || cap(st.hvals) > 64 {
		return
	}
	clear(st.reqHdr)
	clear(st.hvals[:cap(st.hvals)]) // a malformed request may have left values past len
	st.hvals = st.hvals[:0]
	clear(st.w.hdr)
	st.req, st.ctx, st.cn = nil, nil, nil
	streamPool.Put(st)
}

// serveHandler runs h; a panic with http.ErrAbortHandler (the proxy's way
// to abort a response) resets the stream.
func serveHandler(h http.Handler, w *response, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			ok = false
		}
	}()
	h.ServeHTTP(w, r)
	return true
}

// reqBody is the request body: bytes the reader goroutine received, handed
// to the handler, with the windows given back as it reads.
type reqBody struct{ st *stream }

func (b *reqBody) Read(p []byte) (int, error) {
	st := b.st
	cn := st.cn
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for {
		if n := len(st.body) - st.bodyOff; n > 0 {
			n = copy(p, st.body[st.bodyOff:])
			st.bodyOff += n
			st.unacked += int64(n)
			cn.giveBackLocked(int64(n))
			if !st.remoteDone && st.unacked >= streamWindow/4 {
				cn.wbuf = appendWindowUpdate(cn.wbuf, st.id, uint32(st.unacked))
				st.recvWindow += st.unacked
				st.unacked = 0
				cn.kick()
			}
			return n, nil
		}
		if st.bodyErr != nil {
			return 0, st.bodyErr
		}
		if st.remoteDone {
			return 0, io.EOF
		}
		if st.closed || cn.dead {
			return 0, io.ErrUnexpectedEOF
		}
		if st.continue100 {
			st.continue100 = false
			cn.informationalLocked(st.id, http.StatusContinue, nil)
		}
		st.bodyCond.Wait()
	}
}

func (b *reqBody) Close() error { return nil }
