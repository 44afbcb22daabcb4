package h2

import (
	"encoding/binary"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
	"github.com/portcullis-lb/portcullis/l7/internal/httpdate"
)

// writeTimeout bounds one write to the client: a client that stops
// reading loses its connection, not the server's goroutines.
const writeTimeout = 30 * time.Second

// writeLoop runs while the connection has output: kick starts it (or the
// goroutine of a stream that ended the output runs it: wake), it sends
// everything queued at once, and it ends when the queue is empty, so an
// idle connection has no writer goroutine (its stack is a third of an idle
// connection's memory). Under load it lives on from write to write. The
// writer that finds the connection dead and its queue empty closes it
// (unless it lingers) and signals wdone.
func (cn *conn) writeLoop() {
	for {
		cn.gather()
		cn.mu.Lock()
		if len(cn.wbuf) == 0 {
			if !cn.dead {
				cn.writerOn = false
				cn.mu.Unlock()
				return
			}
			cn.wclosed = true
			linger := cn.linger
			cn.mu.Unlock()
			if !linger {
				// The reader may be blocked in a read: closing wakes it.
				cn.c.Close()
			}
			cn.cancel()
			close(cn.wdone)
			return
		}
		buf := cn.wbuf
		cn.wbuf, cn.spare = cn.spare[:0], nil
		dead := cn.dead
		cn.wcond.Broadcast() // the queue is empty again
		cn.mu.Unlock()
		now := time.Now()
		if dead {
			cn.wdeadline = now.Add(time.Second)
			cn.c.SetWriteDeadline(cn.wdeadline)
		} else if cn.wdeadline.Sub(now) < writeTimeout*7/8 {
			// Moved only when an eighth of it has passed: a timer update
			// per write would cost more than it is worth.
			cn.wdeadline = now.Add(writeTimeout)
			cn.c.SetWriteDeadline(cn.wdeadline)
		}
		_, err := cn.c.Write(buf)
		cn.mu.Lock()
		if len(cn.streams) > 0 && cap(buf) <= maxQueued {
			cn.spare = buf[:0]
		} else {
			cn.putBuf(buf)
			if len(cn.wbuf) == 0 {
				// Idle: an idle connection holds no write buffer.
				cn.putBuf(cn.wbuf)
				cn.wbuf = nil
			}
		}
		if err != nil {
			cn.werr = err
			cn.dead = true
			cn.wbuf = cn.wbuf[:0]
			cn.wcond.Broadcast()
		}
		cn.mu.Unlock()
	}
}

// outPool holds write queues that connections gave up when they went idle,
// so that the next response of a connection, idle between requests, does
// not grow a queue from nothing. Boxed: the connections keep the boxes
// (outBox), so a buffer goes in and out without an allocation.
var outPool sync.Pool

const maxPooledOut = 64 << 10

// takeBuf gives an empty queue, from the pool when it has one.
func (cn *conn) takeBuf() []byte {
	p, _ := outPool.Get().(*[]byte)
	if p == nil {
		return make([]byte, 0, 4<<10)
	}
	b := *p
	*p = nil
	cn.outBox = p
	return b
}

// putBuf gives a queue the connection no longer uses to the pool.
func (cn *conn) putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledOut {
		return
	}
	p := cn.outBox
	if p == nil {
		p = new([]byte)
	}
	cn.outBox = nil
	*p = b[:0]
	outPool.Put(p)
}

// gather lets the handlers that are ready to run add their frames before
// the writer takes the queue: it yields while the queue keeps growing, a
// few times at most. Without it the writer, woken by the first response,
// sends about one TLS record and one system call per response; with it,
// about one per three or four under load. A yield costs far less than a
// write, and nothing waits on a timer.
func (cn *conn) gather() {
	runtime.Gosched()
	for range maxYields - 1 {
		cn.mu.Lock()
		n := len(cn.wbuf)
		cn.mu.Unlock()
		runtime.Gosched()
		cn.mu.Lock()
		grew := len(cn.wbuf) > n
		cn.mu.Unlock()
		if !grew {
			return
		}
	}
}

const maxYields = 4

// kick makes sure a writer runs. Called with mu held.
func (cn *conn) kick() {
	if cn.writerOn || cn.wclosed {
		return
	}
	cn.writerOn = true
	go cn.writeLoop()
}

// kickChecked wakes the writer and fails the connection when control
// frames pile up because the client does not read (PING or SETTINGS
// floods).
func (cn *conn) kickChecked() error {
	cn.kick()
	if len(cn.wbuf) > queueKill {
		return connError{http2.ErrCodeEnhanceYourCalm, "client does not read its responses"}
	}
	return nil
}

func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

func appendSettings(b []byte, ss ...http2.Setting) []byte {
	b = appendFrameHeader(b, 6*len(ss), http2.FrameSettings, 0, 0)
	for _, s := range ss {
		b = binary.BigEndian.AppendUint16(b, uint16(s.ID))
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	return b
}

func appendWindowUpdate(b []byte, id, inc uint32) []byte {
	b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id)
	return binary.BigEndian.AppendUint32(b, inc&0x7fffffff)
}

func appendPing(b []byte, data [8]byte) []byte {
	b = appendFrameHeader(b, 8, http2.FramePing, http2.FlagPingAck, 0)
	return append(b, data[:]...)
}

func appendRST(b []byte, id uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 4, http2.FrameRSTStream, 0, id)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func appendGoAway(b []byte, last uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 8, http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, last&0x7fffffff)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

// pendingPool holds the buffers of held-back bodies; the response keeps
// the pool's pointer, so that returning it allocates nothing.
var pendingPool = sync.Pool{New: func() any { b := make([]byte, 0, holdBody); return &b }}

// response is the stream's http.ResponseWriter and http.Flusher.
type response struct {
	st       *stream
	hdr      http.Header
	status   int
	wrote    bool // final status chosen
	sent     bool // HEADERS sent
	head     bool // HEAD request: no body
	noBody   bool // 204 or 304
	clen     int64
	written  int64
	pending  []byte
	pbuf     *[]byte  // pending's buffer, from pendingPool
	declared []string // trailer names announced in the Trailer header
	last     bool     // the send of finish without trailers: nothing follows
	writes   bool     // the stream's goroutine is to be the writer (wake)
}

func (w *response) Header() http.Header { return w.hdr }

func (w *response) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 {
		if code != http.StatusSwitchingProtocols {
			_ = w.st.cn.sendInformational(w.st, code, w.hdr)
		}
		return
	}
	w.wrote = true
	w.status = code
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	w.clen = -1
	if cl := w.hdr["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.clen = n
		}
	}
	w.declared = hkey.AppendList(w.declared, w.hdr["Trailer"])
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.head || w.noBody {
		return len(p), nil
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.sent && len(w.pending)+len(p) <= holdBody {
		if w.pbuf == nil {
			w.pbuf = pendingPool.Get().(*[]byte)
			w.pending = (*w.pbuf)[:0]
		}
		w.pending = append(w.pending, p...)
		return len(p), nil
	}
	if err := w.st.cn.send(w, p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends the headers and what the stream holds back.
func (w *response) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.st.cn.send(w, nil, false)
}

// finish ends the response after the handler returned: whatever was held
// back, END_STREAM, and the trailers.
func (w *response) finish() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.clen >= 0 && w.written < w.clen && !w.head && !w.noBody {
		return http.ErrContentLength // a truncated body: reset, never a short 200
	}
	tr := w.trailers()
	if !w.sent && w.clen < 0 && len(tr) == 0 && !w.noBody && !w.head {
		w.hdr["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
	}
	w.last = len(tr) == 0
	err := w.st.cn.send(w, nil, len(tr) == 0)
	w.last = false
	if w.pbuf != nil {
		// send copied it into the connection's queue (or failed).
		*w.pbuf = w.pending[:0]
		pendingPool.Put(w.pbuf)
		w.pbuf, w.pending = nil, nil
	}
	if err != nil {
		return err
	}
	if len(tr) > 0 {
		return w.st.cn.sendTrailers(w.st, tr)
	}
	return nil
}

// trailers collects the trailer fields: names announced in Trailer and
// set after the header was sent, and http.TrailerPrefix names.
func (w *response) trailers() []hpack.HeaderField {
	var tr []hpack.HeaderField
	for _, k := range w.declared {
		for _, v := range w.hdr[k] {
			tr = append(tr, hpack.HeaderField{Name: hkey.Lower(k), Value: v})
		}
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				tr = append(tr, hpack.HeaderField{Name: strings.ToLower(name), Value: v})
			}
		}
	}
	return tr
}

// send queues the headers (once), the held-back body, p, and END_STREAM
// when end, within the flow-control windows.
func (cn *conn) send(w *response, p []byte, end bool) error {
	st := w.st
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if err := cn.waitQueueLocked(st); err != nil {
		return err
	}
	if !w.sent {
		w.sent = true
		headersEnd := end && len(w.pending) == 0 && len(p) == 0
		cn.appendHeadersLocked(st.id, w.status, w.hdr, w.declared, headersEnd)
		if headersEnd {
			cn.wake(w)
			return nil
		}
	}
	if len(w.pending) > 0 || len(p) == 0 {
		if err := cn.appendDataLocked(st, w.pending, end && len(p) == 0); err != nil {
			return err
		}
		w.pending = w.pending[:0]
	}
	if len(p) > 0 {
		if err := cn.appendDataLocked(st, p, end); err != nil {
			return err
		}
	}
	cn.wake(w)
	return nil
}

// wake makes sure w's output gets written. A response's last output, when
// no writer runs, is written by the stream's own goroutine once it is done
// with the stream (run): a writer goroutine started for it would cost a
// goroutine start and end and a hand-off per response. Only the last
// output: before it the handler may still be writing, or waiting for the
// writer to drain the queue. Called with mu held.
func (cn *conn) wake(w *response) {
	if w.last && !cn.writerOn && !cn.wclosed {
		cn.writerOn = true
		w.writes = true
		return
	}
	cn.kick()
}

// waitQueueLocked waits while the connection's output queue is full.
func (cn *conn) waitQueueLocked(st *stream) error {
	for {
		if cn.dead {
			return errClosed
		}
		if st.closed {
			return errClosed
		}
		if len(cn.wbuf) <= maxQueued {
			return nil
		}
		cn.kick()
		cn.wcond.Wait()
	}
}

// appendDataLocked queues d as DATA frames; an empty d with end is an
// empty DATA frame with END_STREAM.
func (cn *conn) appendDataLocked(st *stream, d []byte, end bool) error {
	if len(d) == 0 {
		if end {
			cn.wbuf = appendFrameHeader(cn.wbuf, 0, http2.FrameData, http2.FlagDataEndStream, st.id)
		}
		return nil
	}
	if cn.wbuf == nil {
		cn.wbuf = cn.takeBuf()
	}
	for len(d) > 0 {
		if err := cn.waitQueueLocked(st); err != nil {
			return err
		}
		n := int64(min(len(d), cn.peerFrame))
		n = min(n, st.sendWindow, cn.sendWindow)
		if n <= 0 {
			cn.kick()
			cn.wcond.Wait()
			continue
		}
		var flags http2.Flags
		if end && int(n) == len(d) {
			flags = http2.FlagDataEndStream
		}
		cn.wbuf = appendFrameHeader(cn.wbuf, int(n), http2.FrameData, flags, st.id)
		cn.wbuf = append(cn.wbuf, d[:n]...)
		st.sendWindow -= n
		cn.sendWindow -= n
		d = d[n:]
	}
	return nil
}

// skipResponse reports the fields never sent in an HTTP/2 response (RFC
// 9113 §8.2.2), whatever the handler set.
func skipResponse(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// appendHeadersLocked encodes a response head (final or 1xx; Date only on
// a final one) into HEADERS (and CONTINUATION) frames.
func (cn *conn) appendHeadersLocked(id uint32, status int, hdr http.Header, declared []string, end bool) {
	e := &cn.henc
	e.begin()
	e.status(status)
	for k, vv := range hdr {
		if skipResponse(k) || strings.HasPrefix(k, http.TrailerPrefix) || slices.Contains(declared, k) {
			continue
		}
		lk := hkey.Lower(k)
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				e.field(lk, v)
			}
		}
	}
	if status >= 200 {
		if _, ok := hdr["Date"]; !ok {
			e.field("date", httpdate.Value()[0])
		}
	}
	cn.appendBlockLocked(id, end)
}

// appendBlockLocked frames the encoded header block in henc.
func (cn *conn) appendBlockLocked(id uint32, end bool) {
	if cn.wbuf == nil {
		cn.wbuf = cn.takeBuf()
	}
	block := cn.henc.b
	first := true
	for first || len(block) > 0 {
		n := min(len(block), cn.peerFrame)
		var flags http2.Flags
		if n == len(block) {
			flags |= http2.FlagHeadersEndHeaders
		}
		t := http2.FrameContinuation
		if first {
			t = http2.FrameHeaders
			if end {
				flags |= http2.FlagHeadersEndStream
			}
		}
		cn.wbuf = appendFrameHeader(cn.wbuf, n, t, flags, id)
		cn.wbuf = append(cn.wbuf, block[:n]...)
		block = block[n:]
		first = false
	}
}

// sendInformational sends a 1xx head (103 Early Hints, 100 Continue).
func (cn *conn) sendInformational(st *stream, code int, hdr http.Header) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if err := cn.waitQueueLocked(st); err != nil {
		return err
	}
	cn.informationalLocked(st.id, code, hdr)
	return nil
}

func (cn *conn) informationalLocked(id uint32, code int, hdr http.Header) {
	if code == http.StatusContinue {
		hdr = nil // a bare 100: the handler's fields belong to the final answer
	}
	cn.appendHeadersLocked(id, code, hdr, nil, false)
	cn.kick()
}

// sendTrailers ends the stream with a trailer block.
func (cn *conn) sendTrailers(st *stream, tr []hpack.HeaderField) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if err := cn.waitQueueLocked(st); err != nil {
		return err
	}
	cn.henc.begin()
	for _, f := range tr {
		if httpguts.ValidHeaderFieldValue(f.Value) {
			cn.henc.field(f.Name, f.Value)
		}
	}
	cn.appendBlockLocked(st.id, true)
	cn.kick()
	return nil
}
