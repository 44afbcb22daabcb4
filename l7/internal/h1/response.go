package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
	"github.com/portcullis-lb/portcullis/l7/internal/httpdate"
)

// body is the request body reader: a length or chunked framing on the
// connection's buffered reader.
type body struct {
	cn          *conn
	left        int64 // bytes left: of the body (length) or of the chunk
	chunked     bool
	done        bool
	err         error
	continue100 bool
}

var errBadChunk = errors.New("h1: malformed chunked body")

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.continue100 {
		// RFC 9110 §10.1.1: the client waits for this before sending.
		b.continue100 = false
		b.cn.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := b.cn.bw.Flush(); err != nil {
			b.err = err
			return 0, err
		}
	}
	br := b.cn.br
	if b.chunked && b.left == 0 {
		n, err := readChunkSize(br)
		if err != nil {
			b.err = err
			return 0, err
		}
		if n == 0 {
			if err := skipTrailers(br); err != nil {
				b.err = err
				return 0, err
			}
			b.done = true
			b.cn.startWatch()
			return 0, io.EOF
		}
		b.left = n
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := br.Read(p)
	b.left -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	if b.left == 0 {
		if b.chunked {
			// Each chunk ends with CRLF, nothing else.
			if c, err := br.ReadByte(); err != nil || c != '\r' {
				b.err = errBadChunk
				return n, nil
			}
			if c, err := br.ReadByte(); err != nil || c != '\n' {
				b.err = errBadChunk
				return n, nil
			}
		} else {
			b.done = true
			b.cn.startWatch()
		}
	}
	return n, nil
}

func (b *body) Close() error { return nil }

// readChunkSize reads "1a[;ext]\r\n": hex digits only before the optional
// extensions, no sign, no leading space; at most 15 digits.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, errBadChunk
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, errBadChunk
	}
	line = line[:len(line)-2]
	var n int64
	digits := 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		case c == ';' && digits > 0:
			for _, e := range line[i+1:] {
				if e < ' ' && e != '\t' || e == 0x7f {
					return 0, errBadChunk
				}
			}
			return n, nil
		default:
			return 0, errBadChunk
		}
		digits++
		if digits > 15 {
			return 0, errBadChunk
		}
		n = n<<4 | int64(v)
	}
	if digits == 0 {
		return 0, errBadChunk
	}
	return n, nil
}

// skipTrailers reads and drops the trailer section (a proxy must not merge
// unknown trailers into headers, RFC 9110 §6.5.1).
func skipTrailers(br *bufio.Reader) error {
	for total := 0; ; {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return errBadChunk
		}
		total += len(line)
		if total > defaultMaxHeader || len(line) < 2 || line[len(line)-2] != '\r' {
			return errBadChunk
		}
		if len(line) == 2 {
			return nil
		}
		if !validField(line[:len(line)-2]) {
			return errBadChunk
		}
	}
}

// validField reports whether l is a field line as the head requires: a
// token name, the colon right after it, no control characters in the
// value. Trailers are dropped, but a parser behind a lenient hop might
// frame a malformed one differently.
func validField(l []byte) bool {
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 || !isToken(string(l[:colon])) {
		return false
	}
	for _, c := range l[colon+1:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// response is the ResponseWriter, reused per connection.
type response struct {
	cn          *conn
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool
	chunked     bool
	noBody      bool
	closeAfter  bool
	left        int64 // declared Content-Length still to write; -1 none
	trailers    []string
}

func (w *response) Header() http.Header { return w.hdr }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Interim answers (103 Early Hints) go out now; the header map
		// stays for the final answer (as net/http).
		w.writeHead(code, true)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.writeHead(code, false)
}

var statusLines = func() (m [600]string) {
	for c := 100; c < 600; c++ {
		if t := http.StatusText(c); t != "" {
			m[c] = "HTTP/1.1 " + strconv.Itoa(c) + " " + t + "\r\n"
		}
	}
	return m
}()

func (w *response) writeHead(code int, interim bool) {
	bw := w.cn.bw
	if code >= 100 && code < 600 && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
	} else {
		bw.WriteString("HTTP/1.1 ")
		bw.WriteString(strconv.Itoa(code))
		bw.WriteString(" status\r\n")
	}
	h := w.hdr
	if interim {
		writeFields(bw, h)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.left = -1
	w.noBody = w.req.Method == http.MethodHead || code == 204 || code == 304 || code < 200
	if v := h["Trailer"]; len(v) > 0 {
		w.trailers = hkey.AppendList(w.trailers, v)
	}
	if cl := h["Content-Length"]; len(cl) == 1 && len(w.trailers) == 0 {
		if n, ok := parseLength(cl[0]); ok {
			w.left = n
		}
	} else {
		delete(h, "Content-Length")
		if !w.noBody {
			w.chunked = true
		}
	}
	if code == 204 || code == 304 || code < 200 {
		delete(h, "Content-Length")
		w.left = -1
	}
	if w.req.Close || w.cn.srv.shutdown.Load() {
		// Shutting down: this is the connection's last response.
		w.closeAfter = true
	}
	if c := h["Connection"]; len(c) == 1 && c[0] == "close" {
		// The handler ends the connection (the proxy does after a 413:
		// the rest of the body is not worth reading).
		w.closeAfter = true
	}
	if w.cn.body.continue100 {
		// A final answer before the body was asked for (RFC 9110
		// §10.1.1): the client may still send it, or wait for a 100
		// that must not come now; either way the stream is not at a
		// message boundary we can trust, so it ends here.
		w.cn.body.continue100 = false
		w.closeAfter = true
	}
	if w.closeAfter {
		h["Connection"] = connClose
	} else if w.req.ProtoMinor == 0 {
		h["Connection"] = connKeepAlive
	}
	if w.req.ProtoMinor == 0 && w.chunked {
		// An HTTP/1.0 client knows no chunking: delimit by closing.
		w.chunked = false
		w.closeAfter = true
		h["Connection"] = connClose
	}
	if w.chunked {
		h["Transfer-Encoding"] = chunkedTE
	}
	if _, ok := h["Date"]; !ok {
		// RFC 9110 §6.6.1: an origin with a clock sends Date; for proxied
		// responses the upstream's is kept.
		h["Date"] = httpdate.Value()
	}
	writeFields(bw, h)
	bw.WriteString("\r\n")
}

var (
	connClose     = []string{"close"}
	connKeepAlive = []string{"keep-alive"}
)

// writeFields writes the header map; TrailerPrefix entries are held back
// for the trailer section.
func writeFields(bw *bufio.Writer, h http.Header) {
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return len(p), nil
	}
	bw := w.cn.bw
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		bw.WriteString("\r\n")
		return n, err
	}
	if w.left >= 0 {
		if int64(len(p)) > w.left {
			// More than declared would desynchronise the client.
			w.closeAfter = true
			return 0, errors.New("h1: write beyond Content-Length")
		}
		w.left -= int64(len(p))
	}
	return bw.Write(p)
}

func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.cn.bw.Flush()
}

func (w *response) FlushError() error {
	w.Flush()
	return nil
}

// Hijack hands the connection over (WebSocket and other Upgrade).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader {
		return nil, nil, errors.New("h1: hijack after the response started")
	}
	cn := w.cn
	cn.hijacked = true
	cn.watch.Store(0) // the connection's bytes are the handler's now
	cn.c.SetDeadline(timeZero)
	return cn.c, bufio.NewReadWriter(cn.br, cn.bw), nil
}

// finish ends the response: the last chunk and trailers, or a check that
// the declared length was written.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.hdr["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusOK)
	}
	bw := w.cn.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			for _, v := range w.hdr[k] {
				bw.WriteString(k)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
		for k, vv := range w.hdr {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					bw.WriteString(name)
					bw.WriteString(": ")
					bw.WriteString(v)
					bw.WriteString("\r\n")
				}
			}
		}
		bw.WriteString("\r\n")
	} else if w.left > 0 && !w.noBody {
		// Short of the declared length: the client would wait for the
		// rest; closing tells it the response is incomplete.
		bw.Flush()
		return errors.New("h1: response shorter than its Content-Length")
	}
	return bw.Flush()
}

var zeroLength = []string{"0"}
