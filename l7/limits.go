package l7

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Request limits of issue #7 that the core enforces: the target's length
// (listener max_uri_bytes → 414) and the body's size (route or listener
// max_body_bytes → 413). Connections per client address are counted where
// they are accepted, in l7/listen.

// errBodyTooLarge is what a body read returns once the body has grown past
// the route's limit. The transports report it as they report any body
// error (HTTP/1.1 as the client's, HTTP/2 wrapped); serveRequest turns an
// attempt whose st.limBody went over into a 413, whatever the transport.
var errBodyTooLarge = errors.New("request body larger than max_body_bytes")

// limitedBody is the request body of a route with a body limit whose length
// was not announced (chunked HTTP/1.1, HTTP/2 or HTTP/3 without
// content-length). It lives in reqState: no allocation.
type limitedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, errBodyTooLarge
	}
	// One byte more than allowed tells a body of exactly the limit from a
	// larger one (rest overflows only for a limit of MaxInt64).
	if rest := b.left + 1; rest > 0 && int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.over = true
		return 0, errBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// uriTooLong answers 414 (RFC 9110 §15.5.15) when the request target is
// longer than the listener allows. It runs before routing: a long target
// costs no route match.
func (p *Proxy) uriTooLong(lc *listenerConf, w http.ResponseWriter, r *http.Request, st *reqState, start time.Time) bool {
	n := len(r.RequestURI)
	if n == 0 {
		n = len(st.uri)
	}
	if n <= lc.maxURI {
		return false
	}
	p.refuseHead(w, r, st, http.StatusRequestURITooLong, "request target too long", start)
	return true
}

// tooManyHeaders answers 431 (RFC 6585 §5) when the request carries more
// header fields than the listener allows; like uriTooLong it runs before
// routing. Counting costs a pass over the header map: one length per key.
func (p *Proxy) tooManyHeaders(lc *listenerConf, w http.ResponseWriter, r *http.Request, st *reqState, start time.Time) bool {
	n := 0
	for _, vv := range r.Header {
		n += len(vv)
	}
	if n <= lc.maxHeaders {
		return false
	}
	p.refuseHead(w, r, st, http.StatusRequestHeaderFieldsTooLarge, "too many header fields", start)
	return true
}

// refuseHead answers a request refused for its head, before routing. A
// body, if any, is not read: an HTTP/1.x connection is ended rather than
// read on to the next request.
func (p *Proxy) refuseHead(w http.ResponseWriter, r *http.Request, st *reqState, status int, msg string, start time.Time) {
	closeHTTP1(w, r)
	writeError(w, status, msg, st.fwd.id)
	p.finish(r, st, nil, "", "", status, 0, start, 0)
}

// limitBody applies the route's body limit: a Content-Length above it is
// refused at once (nothing read, no upstream contacted); a body of unknown
// length is read through st.limBody, which fails the upstream exchange when
// the body grows past the limit. It returns false when it has answered.
func (p *Proxy) limitBody(g *Generation, lc *listenerConf, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, bm bodyMode, start time.Time) bool {
	limit := lc.maxBody
	if len(g.bodyLimits) > 0 {
		if l, ok := g.bodyLimits[st.match.Route]; ok {
			limit = l
		}
	}
	if limit <= 0 || bm.kind == bodyNone {
		return true
	}
	if bm.kind == bodyLength && bm.n > limit {
		writeTooLarge(w, r, st)
		p.finish(r, st, rs, "", "", http.StatusRequestEntityTooLarge, 0, start, 0)
		return false
	}
	// Also with a Content-Length: the HTTP/3 server is not relied upon to
	// hold the body to it.
	st.limBody = limitedBody{rc: r.Body, left: limit}
	r.Body = &st.limBody
	return true
}

// writeTooLarge answers 413 (RFC 9110 §15.5.14) and, for HTTP/1.x, ends
// the connection: the rest of the body is not worth reading.
func writeTooLarge(w http.ResponseWriter, r *http.Request, st *reqState) {
	closeHTTP1(w, r)
	writeFail(w, st, http.StatusRequestEntityTooLarge, "request body too large")
}

// closeHTTP1 ends an HTTP/1.x connection after the answer.
func closeHTTP1(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = connCloseVal
	}
}

var connCloseVal = []string{"close"}
