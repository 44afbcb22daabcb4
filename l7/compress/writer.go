package compress

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// Writer compresses one response. It decides at WriteHeader from the
// response's fields whether to compress at all; then, while the body is
// small, it holds it back: a body that ends within holdMax bytes is
// compressed in one go and sent with its compressed Content-Length (or as
// it came when it is shorter than min_size); a longer one, or one that is
// flushed (an event stream, a slow chunked body), is compressed as it
// goes, each Flush flushing the encoder so that what was written reaches
// the client.
type Writer struct {
	w      http.ResponseWriter
	p      *Policy
	enc    Encoding
	state  state
	status int
	hold   []byte
	out    outBuf
	e      encoder
}

type state uint8

const (
	stUndecided state = iota // before WriteHeader
	stPass                   // sent as the upstream sent it
	stHold                   // compressing; the body is held back
	stStream                 // compressing as it goes
	stDone
)

// holdMax is the most of a body held back to be compressed in one go:
// past it the response streams.
const holdMax = 64 << 10

// errClosed is a write after Close.
var errClosed = errors.New("compress: write after close")

var writers = sync.Pool{New: func() any { return new(Writer) }}

// Wrap returns the wrapper of a response to r, or nil for HEAD (no body
// to compress; its fields stay those of the identity representation).
// A request that accepts no offered coding is wrapped too: an eligible
// answer to it still gets Vary: Accept-Encoding, so a downstream cache does
// not hand it to clients that could have had it compressed.
func (p *Policy) Wrap(w http.ResponseWriter, r *http.Request) *Writer {
	if r.Method == http.MethodHead {
		return nil
	}
	cw := writers.Get().(*Writer)
	cw.w, cw.p, cw.state = w, p, stUndecided
	cw.enc = p.Negotiate(r.Header["Accept-Encoding"])
	return cw
}

// Encoding is the coding negotiated for the response (Identity when none).
func (cw *Writer) Encoding() Encoding { return cw.enc }

// Header is the response's header map.
func (cw *Writer) Header() http.Header { return cw.w.Header() }

// Unwrap is for http.ResponseController.
func (cw *Writer) Unwrap() http.ResponseWriter { return cw.w }

// WriteHeader decides whether the response is compressed.
func (cw *Writer) WriteHeader(code int) {
	if cw.state != stUndecided {
		return
	}
	if code < 200 {
		cw.w.WriteHeader(code) // 103 Early Hints: interim, passes
		return
	}
	cw.status = code
	h := cw.w.Header()
	if !cw.p.eligible(code, h) {
		cw.pass(code)
		return
	}
	addVary(h)
	cl := contentLength(h)
	if cw.enc == Identity || (cl >= 0 && cl < cw.p.minSize) {
		cw.pass(code)
		return
	}
	cw.state = stHold
	if cl > holdMax {
		cw.stream()
	}
}

func (cw *Writer) pass(code int) {
	cw.state = stPass
	cw.w.WriteHeader(code)
}

// eligible holds the rules that keep a response as it is, whatever the
// client accepts.
func (p *Policy) eligible(code int, h http.Header) bool {
	switch code {
	case http.StatusNoContent, http.StatusNotModified, http.StatusPartialContent:
		return false
	}
	if len(h["Content-Encoding"]) > 0 || len(h["Content-Range"]) > 0 {
		return false
	}
	// RFC 9111 §5.2.2.6 (and §5.2.1.6 for requests): no-transform forbids
	// changing the content, its coding included.
	for _, v := range h["Cache-Control"] {
		if containsToken(v, "no-transform") {
			return false
		}
	}
	ct := h["Content-Type"]
	return len(ct) > 0 && p.Compressible(ct[0])
}

// stream starts compressing as the body comes: the fields go out now.
func (cw *Writer) stream() error {
	h := cw.w.Header()
	delete(h, "Content-Length")
	codingHeaders(h, cw.enc)
	cw.w.WriteHeader(cw.status)
	cw.e = getEncoder(cw.enc, cw.w)
	cw.state = stStream
	if len(cw.hold) > 0 {
		_, err := cw.e.Write(cw.hold)
		cw.hold = cw.hold[:0]
		return err
	}
	return nil
}

// Write compresses, holds or passes b.
func (cw *Writer) Write(b []byte) (int, error) {
	switch cw.state {
	case stPass:
		return cw.w.Write(b)
	case stStream:
		return cw.e.Write(b)
	case stHold:
		if len(cw.hold)+len(b) <= holdMax {
			cw.hold = append(cw.hold, b...)
			return len(b), nil
		}
		if err := cw.stream(); err != nil {
			return 0, err
		}
		return cw.e.Write(b)
	case stUndecided:
		cw.WriteHeader(http.StatusOK)
		return cw.Write(b)
	}
	return 0, errClosed
}

// Flush sends what was written so far: a held body starts streaming (a
// response that flushes is a stream), the encoder flushes its block, the
// server its buffer.
func (cw *Writer) Flush() {
	switch cw.state {
	case stHold:
		if cw.stream() != nil {
			return
		}
		fallthrough
	case stStream:
		if cw.e.Flush() != nil {
			return
		}
	}
	if f, ok := cw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Close ends the response: a held body is sent (compressed in one go, or
// as it came when shorter than min_size), a stream gets its last block.
// The Writer then goes back to its pool: the caller must drop it.
func (cw *Writer) Close() error {
	var err error
	switch cw.state {
	case stHold:
		err = cw.sendHeld()
	case stStream:
		err = cw.e.Close()
	}
	cw.release()
	return err
}

// Discard returns the Writer to its pool without finishing the response
// (the response was cut and its stream is aborted).
func (cw *Writer) Discard() { cw.release() }

func (cw *Writer) sendHeld() error {
	h := cw.w.Header()
	body := cw.hold
	_, trailers := h["Trailer"]
	if int64(len(body)) >= cw.p.minSize {
		if cw.enc == Zstd {
			e := encoders[Zstd].Get().(*zstd.Encoder)
			cw.out.b = e.EncodeAll(body, cw.out.b[:0])
			encoders[Zstd].Put(e)
		} else {
			e := getEncoder(cw.enc, &cw.out)
			_, err := e.Write(body)
			if err == nil {
				err = e.Close()
			}
			putEncoder(cw.enc, e)
			if err != nil {
				return err
			}
		}
		body = cw.out.b
		codingHeaders(h, cw.enc)
	}
	if trailers {
		delete(h, "Content-Length")
	} else {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	cw.w.WriteHeader(cw.status)
	_, err := cw.w.Write(body)
	return err
}

func (cw *Writer) release() {
	if cw.e != nil {
		putEncoder(cw.enc, cw.e)
	}
	hold, out := cw.hold[:0], cw.out.b[:0]
	if cap(out) > 2*holdMax {
		out = nil
	}
	*cw = Writer{hold: hold, out: outBuf{b: out}, state: stDone}
	writers.Put(cw)
}

// outBuf collects a body compressed in one go.
type outBuf struct{ b []byte }

func (o *outBuf) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	return len(p), nil
}

// codingHeaders marks a compressed response: Content-Encoding; a strong
// validator becomes weak (RFC 9110 §8.8.1: the bytes differ from the
// identity representation's, and from another coding's); Accept-Ranges
// goes, ranges of the compressed bytes are not offered.
func codingHeaders(h http.Header, e Encoding) {
	h["Content-Encoding"] = contentEncoding[e]
	if et := h["Etag"]; len(et) > 0 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
	delete(h, "Accept-Ranges")
}

var varyAE = []string{"Accept-Encoding"}

// addVary adds Accept-Encoding to Vary unless it is there already (or
// Vary is *).
func addVary(h http.Header) { hkey.AddVary(h, varyAE) }

// containsToken reports whether a comma-separated field value lists tok
// (ASCII case-insensitively; tok is lower case). Directive arguments
// (max-age=5) are not tokens.
func containsToken(v, tok string) bool {
	for item := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(item), tok) {
			return true
		}
	}
	return false
}

// contentLength is the response's declared length, -1 when there is none.
func contentLength(h http.Header) int64 {
	v := h["Content-Length"]
	if len(v) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
