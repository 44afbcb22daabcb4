package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// The HTTP/1.1 wire format toward upstreams, written by hand: the request is
// re-serialized canonically from what net/http parsed (one Host, one framing
// header chosen by us), so no ambiguity a client sent can reach an upstream
// (RFC 9112 §6.1, §11.2); and the response head is parsed with one string
// allocation for the whole block.

var (
	errHeadTooLarge  = errors.New("upstream response head too large")
	errBadResponse   = errors.New("malformed upstream response")
	errBadChunk      = errors.New("malformed chunked body from upstream")
	errClientBody    = errors.New("reading the client's request body")
	crlf             = []byte("\r\n")
	headerSep        = []byte("\r\n\r\n")
	lastChunk        = []byte("0\r\n\r\n")
	errUpstreamWrite = errors.New("writing the request upstream")
)

// isHopHeader lists the hop-by-hop fields of RFC 9110 §7.6.1 plus the ones
// the proxy writes itself (framing, forwarding, request id), so the
// client's copies never pass.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Expect":
		return true
	}
	return false
}

// connTokens holds the field names listed in a Connection header (those are
// hop-by-hop too). Fixed size: more than 8 names are treated as one more
// reason to drop them all... no: extra names simply stop being remembered,
// which could let one through, so overflow is flagged and checked slowly.
type connTokens struct {
	n        int
	t        [8]string
	overflow []string
	upgrade  bool
	close    bool
}

func (ct *connTokens) parse(vals []string) {
	for _, v := range vals {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			switch {
			case strings.EqualFold(tok, "close"):
				ct.close = true
				continue
			case strings.EqualFold(tok, "keep-alive"):
				continue
			case strings.EqualFold(tok, "upgrade"):
				ct.upgrade = true
			}
			if ct.n < len(ct.t) {
				ct.t[ct.n] = tok
				ct.n++
			} else {
				ct.overflow = append(ct.overflow, tok)
			}
		}
	}
}

func (ct *connTokens) has(k string) bool {
	for i := 0; i < ct.n; i++ {
		if strings.EqualFold(ct.t[i], k) {
			return true
		}
	}
	for _, t := range ct.overflow {
		if strings.EqualFold(t, k) {
			return true
		}
	}
	return false
}

// writeRequestHead writes the request line and headers for upstream. The
// head is appended into the writer's free space and written with one call
// (a WriteString per piece cost more than the appending).
func writeRequestHead(bw *bufio.Writer, r *http.Request, st *reqState, body bodyMode) {
	b := bw.AvailableBuffer()
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, st.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, st.outHost...)
	b = append(b, "\r\n"...)
	for k, vv := range r.Header {
		if isHopHeader(k) || st.skipHeader(k) {
			if k == "Te" && r.ProtoMajor >= 2 {
				// gRPC needs "te: trailers"; it is the only TE value an
				// h2 or h3 client may send (RFC 9113 §8.2.2, RFC 9114 §4.2).
				for _, v := range vv {
					if strings.EqualFold(v, "trailers") {
						b = append(b, "Te: trailers\r\n"...)
					}
				}
			}
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = st.fwd.appendTo(b)
	if st.upgrade != "" {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, st.upgrade...)
		b = append(b, "\r\n"...)
	}
	switch body.kind {
	case bodyLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, body.n, 10)
		b = append(b, "\r\n"...)
	case bodyChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case bodyNone:
		if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
			b = append(b, "Content-Length: 0\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	bw.Write(b)
}

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyUntilClose // responses only
)

type bodyMode struct {
	kind bodyKind
	n    int64
}

// copyRequestBody streams the client's body upstream in the chosen framing.
// A read error means the client's body was bad or cut: the caller drops the
// upstream connection so the upstream never sees a complete request.
func copyRequestBody(bw *bufio.Writer, body io.Reader, m bodyMode, buf []byte) (total int64, _ error) {
	switch m.kind {
	case bodyLength:
		// Read and write separately: a read error is the client's fault
		// (400), a write error the upstream's (502).
		for total < m.n {
			n, err := body.Read(buf[:min(int64(len(buf)), m.n-total)])
			if n > 0 {
				total += int64(n)
				if _, werr := bw.Write(buf[:n]); werr != nil {
					return total, errUpstreamWrite
				}
			}
			if err != nil {
				if err == io.EOF && total == m.n {
					break
				}
				return total, errClientBody
			}
		}
	case bodyChunked:
		for {
			n, err := body.Read(buf)
			if n > 0 {
				total += int64(n)
				var hex [20]byte
				bw.Write(strconv.AppendInt(hex[:0], int64(n), 16))
				bw.Write(crlf)
				bw.Write(buf[:n])
				if _, werr := bw.Write(crlf); werr != nil {
					return total, errUpstreamWrite
				}
			}
			if err == io.EOF {
				if _, werr := bw.Write(lastChunk); werr != nil {
					return total, errUpstreamWrite
				}
				break
			}
			if err != nil {
				return total, errClientBody
			}
		}
	}
	return total, nil
}

// respHead is what the proxy needs from an upstream response head.
type respHead struct {
	status    int
	body      bodyMode
	close     bool
	streaming bool // no length or an event stream: flush as data arrives
	upgrade   string
}

// readResponseHead parses the status line and header block into h
// (the client ResponseWriter's header map), dropping hop-by-hop fields.
// The whole block becomes one string; keys and values are slices of it.
func readResponseHead(br *bufio.Reader, h http.Header, method string, head *respHead) error {
	// Make the whole head visible in the buffer.
	var end int
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf, headerSep); i >= 0 {
			end = i + 4
			break
		}
		if br.Buffered() >= br.Size() {
			return errHeadTooLarge
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if err == bufio.ErrBufferFull {
				return errHeadTooLarge
			}
			return err
		}
	}
	raw, _ := br.Peek(end)
	s := string(raw[:end-4])
	br.Discard(end)

	line, rest, _ := strings.Cut(s, "\r\n")
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
		return errBadResponse
	}
	http10 := line[7] == '0'
	code, err := strconv.Atoi(line[9:12])
	if err != nil || code < 100 || code > 999 || (len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	head.status = code
	head.close = http10
	head.body = bodyMode{kind: bodyUntilClose}
	var ct connTokens
	var clSeen, chunked bool
	var cl int64
	nLines := strings.Count(rest, "\n") + 1
	vals := make([]string, 0, nLines)
	// First pass for Connection, so fields it names can be dropped.
	for r := rest; r != ""; {
		var l string
		l, r, _ = strings.Cut(r, "\r\n")
		if len(l) > 11 && l[10] == ':' && strings.EqualFold(l[:10], "connection") {
			ct.parse([]string{strings.TrimSpace(l[11:])})
		}
	}
	if ct.close {
		head.close = true
	}
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || l[0] == ' ' || l[0] == '\t' || strings.ContainsAny(l[:colon], " \t") {
			// Obsolete line folding and names with spaces are rejected
			// (RFC 9112 §5.1–5.2).
			return errBadResponse
		}
		k := hkey.Canonical(l[:colon])
		v := strings.TrimSpace(l[colon+1:])
		switch k {
		case "Content-Length":
			n, ok := hkey.ParseLength(v)
			if !ok || (clSeen && n != cl) {
				return errBadResponse
			}
			clSeen, cl = true, n
		case "Transfer-Encoding":
			if !strings.EqualFold(v, "chunked") || chunked {
				return errBadResponse // only plain chunked, once (as net/http)
			}
			chunked = true
			continue
		case "Upgrade":
			if code == http.StatusSwitchingProtocols {
				head.upgrade = v
			}
			continue
		case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Proxy-Authenticate":
			// Trailer stays: it tells net/http to chunk the client's
			// response so the trailers can follow.
			continue
		}
		if ct.n > 0 && ct.has(k) {
			continue
		}
		if k == "Content-Length" && len(h[k]) > 0 {
			continue
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	switch {
	case method == "HEAD" || code == 204 || code == 304 || (code >= 100 && code < 200):
		head.body = bodyMode{kind: bodyNone}
		if code == 204 || code == 304 || code < 200 {
			delete(h, "Content-Length")
		}
	case chunked:
		// Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); the
		// length is dropped so the client sees one framing only.
		head.body = bodyMode{kind: bodyChunked}
		delete(h, "Content-Length")
		head.streaming = true
	case clSeen:
		head.body = bodyMode{kind: bodyLength, n: cl}
	default:
		head.close = true
		head.streaming = true
	}
	if !head.streaming {
		if ctv := h["Content-Type"]; len(ctv) > 0 && strings.HasPrefix(ctv[0], "text/event-stream") {
			head.streaming = true
		}
	}
	return nil
}

// respWriter is where a response body goes: the client's ResponseWriter.
type respWriter interface {
	Write([]byte) (int, error)
}

// copyBody forwards a response body straight out of the upstream
// connection's read buffer (no intermediate copy). flush is called when the
// buffer has run dry and the body streams, so event streams and slow
// chunked bodies reach the client as they arrive.
func copyBody(dst respWriter, br *bufio.Reader, m bodyMode, flush func(), h http.Header) (n int64, err error, clientErr bool) {
	switch m.kind {
	case bodyNone:
		return 0, nil, false
	case bodyLength:
		return copyN(dst, br, m.n, flush)
	case bodyUntilClose:
		for {
			if br.Buffered() == 0 {
				if flush != nil {
					flush()
				}
				if _, err := br.Peek(1); err != nil {
					if err == io.EOF {
						return n, nil, false
					}
					return n, err, false
				}
			}
			b, _ := br.Peek(br.Buffered())
			w, werr := dst.Write(b)
			n += int64(w)
			br.Discard(len(b))
			if werr != nil {
				return n, werr, true
			}
		}
	case bodyChunked:
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				if err == bufio.ErrBufferFull {
					err = errBadChunk
				}
				return n, err, false
			}
			size, ok := parseChunkSize(line)
			if !ok {
				return n, errBadChunk, false
			}
			if size == 0 {
				return n, readTrailers(br, h), false
			}
			c, err, cerr := copyN(dst, br, size, nil)
			n += c
			if err != nil {
				return n, err, cerr
			}
			if line, err := br.ReadSlice('\n'); err != nil || len(line) != 2 || line[0] != '\r' {
				return n, errBadChunk, false
			}
			if br.Buffered() == 0 && flush != nil {
				flush()
			}
		}
	}
	return 0, nil, false
}

func copyN(dst respWriter, br *bufio.Reader, left int64, flush func()) (n int64, err error, clientErr bool) {
	for left > 0 {
		if br.Buffered() == 0 {
			if flush != nil {
				flush()
			}
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err, false
			}
		}
		b, _ := br.Peek(int(min(left, int64(br.Buffered()))))
		w, werr := dst.Write(b)
		n += int64(w)
		left -= int64(len(b))
		br.Discard(len(b))
		if werr != nil {
			return n, werr, true
		}
	}
	return n, nil, false
}

// parseChunkSize reads "1a;ext=x\r\n": hex digits, optional extensions.
func parseChunkSize(line []byte) (int64, bool) {
	line = bytes.TrimSuffix(line, crlf)
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// readTrailers reads the trailer section after the last chunk and hands the
// fields to the client through net/http's TrailerPrefix convention.
func readTrailers(br *bufio.Reader, h http.Header) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return errBadChunk
		}
		if len(line) == 2 && line[0] == '\r' {
			return nil
		}
		k, v, ok := bytes.Cut(bytes.TrimSuffix(line, crlf), []byte(":"))
		if !ok || len(k) == 0 {
			return errBadChunk
		}
		key := http.CanonicalHeaderKey(string(k))
		if isHopHeader(key) {
			continue
		}
		h[http.TrailerPrefix+key] = append(h[http.TrailerPrefix+key], string(bytes.TrimSpace(v)))
	}
}

// unsafeString views b as a string; only for transient comparisons.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
