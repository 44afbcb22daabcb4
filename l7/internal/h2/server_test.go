package h2

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// start serves h over TLS the way l7/listen does: net/http does the
// handshake and hands "h2" connections to the lean server.
func start(t *testing.T, s *Server) (*httptest.Server, *http.Client) {
	t.Helper()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not h2", http.StatusHTTPVersionNotSupported)
	}))
	hs.EnableHTTP2 = true
	hs.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		"h2": func(_ *http.Server, c *tls.Conn, _ http.Handler) { s.ServeConn(context.Background(), c) },
	}
	hs.StartTLS()
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	c := hs.Client()
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	c.Timeout = 10 * time.Second
	return hs, c
}

func TestServesRequestsLikeNetHTTP(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-TLS", fmt.Sprint(r.TLS != nil && r.TLS.HandshakeComplete))
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Path", r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Set("X-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Remote", fmt.Sprint(r.RemoteAddr != ""))
		w.Header().Set("Connection", "close") // never sent in HTTP/2
		io.WriteString(w, "hello")
	})}
	hs, c := start(t, s)
	req, _ := http.NewRequest("GET", hs.URL+"/a/b?x=1", nil)
	req.AddCookie(&http.Cookie{Name: "a", Value: "1"})
	req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for k, want := range map[string]string{
		"X-Proto": "HTTP/2.0", "X-Tls": "true", "X-Path": "/a/b?x=1", "X-Cookie": "a=1; b=2",
		"X-Remote": "true", "Content-Length": "5", "Connection": "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.ProtoMajor != 2 || string(body) != "hello" || resp.Header.Get("Date") == "" {
		t.Fatalf("proto %d body %q date %q", resp.ProtoMajor, body, resp.Header.Get("Date"))
	}
	if !strings.HasPrefix(resp.Header.Get("X-Host"), "127.0.0.1:") {
		t.Errorf("host %q", resp.Header.Get("X-Host"))
	}
}

// TestLargeBodiesBothWays moves bodies larger than every flow-control
// window, so both sides must wait for WINDOW_UPDATEs.
func TestLargeBodiesBothWays(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
		w.Write(b)
	})}
	hs, c := start(t, s)
	in := make([]byte, 5<<20+123)
	rand.Read(in)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			resp, err := c.Post(hs.URL, "application/octet-stream", bytes.NewReader(in))
			if err != nil {
				t.Error(err)
				return
			}
			out, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(out, append(append([]byte{}, in...), in...)) {
				t.Errorf("echo: %v, %d bytes back", err, len(out))
			}
		})
	}
	wg.Wait()
}

func TestManyConcurrentStreams(t *testing.T) {
	var inFlight, peak atomic.Int32
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(w, r.URL.Query().Get("i"))
	})}
	hs, c := start(t, s)
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			resp, err := c.Get(fmt.Sprintf("%s/?i=%d", hs.URL, i))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != fmt.Sprint(i) {
				t.Errorf("stream %d got %q", i, b)
			}
		})
	}
	wg.Wait()
	if peak.Load() < 20 {
		t.Errorf("at most %d handlers ran at once: streams are not concurrent", peak.Load())
	}
}

func TestTrailers(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		io.WriteString(w, "payload")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "ok")
	})}
	hs, c := start(t, s)
	resp, err := c.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "payload" || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "ok" {
		t.Fatalf("body %q trailer %v", b, resp.Trailer)
	}
	if resp.Header.Get("Grpc-Status") != "" {
		t.Error("a declared trailer was sent in the header")
	}
}

// TestFlushStreams checks that a flushed part reaches the client while the
// handler still runs (server-sent events).
func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: 2\n\n")
	})}
	hs, c := start(t, s)
	resp, err := c.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 9)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: 1\n\n" {
		t.Fatalf("first event: %q %v", buf, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: 2\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

func TestClientCancelCancelsHandler(t *testing.T) {
	done := make(chan error, 1)
	started := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			done <- r.Context().Err()
		case <-time.After(5 * time.Second):
			done <- errors.New("not cancelled")
		}
	})}
	hs, c := start(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL, nil)
	go func() {
		<-started
		cancel()
	}()
	c.Do(req)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestHeadAndNoBodyStatuses(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(204)
			io.WriteString(w, "dropped")
			return
		}
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})}
	hs, c := start(t, s)
	resp, err := c.Head(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 5 {
		t.Errorf("HEAD content length %d", resp.ContentLength)
	}
	resp, err = c.Get(hs.URL + "/204")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Errorf("204 with body %q", b)
	}
}

func TestAbortHandlerResetsStream(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "short")
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
	})}
	hs, c := start(t, s)
	for _, p := range []string{"/panic", "/short"} {
		resp, err := c.Get(hs.URL + p)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: a truncated response read as complete", p)
		}
	}
	// The connection survives a reset stream.
	if resp, err := c.Get(hs.URL + "/panic"); err == nil {
		resp.Body.Close()
	}
}

func TestExpectContinue(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %q", len(b), r.Header.Get("Expect"))
	})}
	hs, c := start(t, s)
	c.Transport.(*http.Transport).ExpectContinueTimeout = 5 * time.Second
	req, _ := http.NewRequest("POST", hs.URL, strings.NewReader("0123456789"))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `10 ""` {
		t.Fatalf("got %q", b)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("the client waited out its timeout: no 100 Continue")
	}
}

// rawConn is a client speaking frames directly, for what a well-behaved
// client never sends.
type rawConn struct {
	t    *testing.T
	c    *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

func dialRaw(t *testing.T, hs *httptest.Server) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", hs.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	io.WriteString(c, http2.ClientPreface)
	rc.fr.WriteSettings()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return rc
}

func (rc *rawConn) headers(id uint32, end bool, fields ...string) {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.hbuf.Bytes(), EndHeaders: true, EndStream: end}); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) get(id uint32, extra ...string) {
	rc.headers(id, true, append([]string{":method", "GET", ":scheme", "https", ":path", "/", ":authority", "x"}, extra...)...)
}

// until reads frames until match returns true; it fails on EOF.
func (rc *rawConn) until(what string, match func(http2.Frame) bool) {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return
		}
	}
}

func TestRefusesStreamsBeyondTheLimit(t *testing.T) {
	block := make(chan struct{})
	s := &Server{MaxConcurrentStreams: 2, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block })}
	hs, _ := start(t, s)
	defer close(block)
	rc := dialRaw(t, hs)
	rc.get(1)
	rc.get(3)
	rc.get(5)
	rc.until("REFUSED_STREAM on stream 5", func(f http2.Frame) bool {
		rst, ok := f.(*http2.RSTStreamFrame)
		return ok && rst.StreamID == 5 && rst.ErrCode == http2.ErrCodeRefusedStream
	})
}

func TestHeaderListTooLarge(t *testing.T) {
	s := &Server{MaxHeaderBytes: 1024, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler saw an oversized header list")
	})}
	hs, _ := start(t, s)
	rc := dialRaw(t, hs)
	rc.get(1, "x-big", strings.Repeat("a", 2000))
	rc.until("431", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.PseudoValue("status") == "431"
	})
}

func TestMalformedRequestsResetTheStream(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})}
	hs, _ := start(t, s)
	for name, fields := range map[string][]string{
		"no path":               {":method", "GET", ":scheme", "https"},
		"connection header":     {":method", "GET", ":scheme", "https", ":path", "/", "connection", "close"},
		"te other than trailer": {":method", "GET", ":scheme", "https", ":path", "/", "te", "gzip"},
		"two content-lengths":   {":method", "POST", ":scheme", "https", ":path", "/", "content-length", "1", "content-length", "2"},
		"body without data":     {":method", "POST", ":scheme", "https", ":path", "/", "content-length", "3"},
		"signed content-length": {":method", "GET", ":scheme", "https", ":path", "/", "content-length", "-0"},
		"plus content-length":   {":method", "GET", ":scheme", "https", ":path", "/", "content-length", "+0"},
		"unknown pseudo":        {":method", "GET", ":scheme", "https", ":path", "/", ":foo", "x"},
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, hs)
			rc.headers(1, true, fields...)
			rc.until("RST_STREAM PROTOCOL_ERROR", func(f http2.Frame) bool {
				rst, ok := f.(*http2.RSTStreamFrame)
				return ok && rst.StreamID == 1 && rst.ErrCode == http2.ErrCodeProtocol
			})
		})
	}
	t.Run("body shorter than content-length", func(t *testing.T) {
		rc := dialRaw(t, hs)
		rc.headers(1, false, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "10")
		rc.fr.WriteData(1, true, []byte("12345"))
		rc.until("RST_STREAM PROTOCOL_ERROR", func(f http2.Frame) bool {
			rst, ok := f.(*http2.RSTStreamFrame)
			return ok && rst.StreamID == 1 && rst.ErrCode == http2.ErrCodeProtocol
		})
	})
}

// TestRapidResetCloses is CVE-2023-44487: a client that opens streams and
// resets them at once, over and over, loses its connection.
func TestRapidResetCloses(t *testing.T) {
	var handlers atomic.Int32
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		<-r.Context().Done()
	})}
	hs, _ := start(t, s)
	rc := dialRaw(t, hs)
	go func() {
		// Write errors end the flood: the server closes the connection.
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for id := uint32(1); id < 2*rapidResets*2+10; id += 2 {
			hb.Reset()
			for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "x"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true}) != nil ||
				rc.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	rc.until("GOAWAY ENHANCE_YOUR_CALM", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		return ok && g.ErrCode == http2.ErrCodeEnhanceYourCalm
	})
}

func TestShutdownFinishesStreamsThenCloses(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})}
	hs, c := start(t, s)
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get(hs.URL)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if g := <-got; g != "done" {
		t.Fatalf("in-flight request: %q", g)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if n := s.Conns(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

func TestIdleTimeoutSendsGoAway(t *testing.T) {
	s := &Server{IdleTimeout: 100 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	hs, _ := start(t, s)
	rc := dialRaw(t, hs)
	rc.get(1)
	rc.until("GOAWAY NO_ERROR", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		return ok && g.ErrCode == http2.ErrCodeNo && g.LastStreamID == 1
	})
	if _, err := rc.fr.ReadFrame(); err == nil {
		t.Fatal("the connection stayed open after GOAWAY")
	}
}

// Request field values share one backing slice per stream (pooled with
// it): a repeated field, a handler's append to a field, and the next
// request on the same pooled stream must each see their own values.
func TestRequestFieldValuesStayApart(t *testing.T) {
	got := make(chan http.Header, 2)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header["A"] = append(r.Header["A"], "appended")
		r.Header["C"] = append(r.Header["C"], "appended")
		got <- r.Header.Clone()
	})}
	hs, _ := start(t, s)
	rc := dialRaw(t, hs)
	want := []http.Header{
		{"A": {"1", "3", "appended"}, "B": {"2"}, "C": {"4", "appended"}},
		{"A": {"5", "appended"}, "B": {"6"}, "C": {"appended"}},
	}
	rc.get(1, "a", "1", "b", "2", "a", "3", "c", "4")
	h := <-got
	rc.get(3, "a", "5", "b", "6")
	h2 := <-got
	for i, h := range []http.Header{h, h2} {
		for k, v := range want[i] {
			if !slices.Equal(h[k], v) {
				t.Errorf("request %d: %s = %q, want %q", i+1, k, h[k], v)
			}
		}
	}
}

// TestRefusalsCarryTheProxysErrorBody: 431 and 417, answered before the
// handler, have the JSON shape of the proxy's other errors.
func TestRefusalsCarryTheProxysErrorBody(t *testing.T) {
	for code, want := range map[int]string{
		431: `{"status":431,"error":"request header fields too large"}` + "\n",
		417: `{"status":417,"error":"expectation failed"}` + "\n",
	} {
		rec := httptest.NewRecorder()
		statusHandler(code).ServeHTTP(rec, nil)
		if rec.Code != code || rec.Body.String() != want || rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("%d: got %d %q (Content-Length %q)", code, rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
		}
	}
}
