package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/l7/internal/rawio"
)

// serve starts a Server on loopback whose handler records what it got.
// Its connections are rawio's, as l7/listen gives them: a response's last
// bytes go out with the wait for the next request (waitRequest).
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &Server{Handler: h, IdleTimeout: 5 * time.Second, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(context.Background(), rawio.Wrap(c))
		}
	}()
	return ln.Addr().String()
}

type seen struct {
	mu     sync.Mutex
	bodies []string
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			// What the proxy does with a bad body: 400.
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, r.Method+" "+r.URL.Path+" "+string(b))
		s.mu.Unlock()
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
}

func (s *seen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// exchange writes raw and reads every response until the server closes or
// goes quiet.
func exchange(t *testing.T, addr, raw string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var codes []int
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return codes
		}
		io.Copy(io.Discard, res.Body)
		codes = append(codes, res.StatusCode)
	}
}

// readToClose writes raw and returns all the server sends until it
// closes the connection.
func readToClose(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestRequestSmugglingAttemptsAreRejected(t *testing.T) {
	cases := []struct {
		name, raw string
		want      int
	}{
		{"CL and TE together", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"two equal Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"a Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
		{"a signed Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400},
		{"a space before the colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc", 400},
		{"obsolete line folding", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"a bare LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
		{"TE with another coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"a control character in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400},
		{"a bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"a chunk size with a sign", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", 400},
		{"a chunk longer than announced", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n", 400},
		{"HTTP/2 preface on h1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"a space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &seen{}
			addr := serve(t, s.handler())
			codes := exchange(t, addr, tc.raw)
			if len(codes) != 1 || codes[0] != tc.want {
				t.Errorf("answers %v, want exactly [%d] (the connection must close after it)", codes, tc.want)
			}
			for _, b := range s.all() {
				t.Errorf("the handler received %q", b)
			}
		})
	}
}

func TestWellFormedRequestsAreServed(t *testing.T) {
	s := &seen{}
	addr := serve(t, s.handler())
	raw := "GET /a?x=1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n" +
		"GET /d%2Fe HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" +
		"GET /never HTTP/1.1\r\nHost: x\r\n\r\n"
	codes := exchange(t, addr, raw)
	if len(codes) != 5 {
		t.Fatalf("answers %v, want 5 (the last request comes after Connection: close)", codes)
	}
	want := []string{"GET /a ", "POST /b abc", "POST /c abcde", "GET /d/e ", "GET /e "}
	got := s.all()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("handler saw %q, want %q", got, want)
	}
}

func TestStreamingResponsesAreChunkedWithTrailers(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		io.WriteString(w, "one")
		w.(http.Flusher).Flush()
		io.WriteString(w, "two")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"X-Late", "1")
	}))
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "onetwo" || res.Trailer.Get("Grpc-Status") != "0" || res.Trailer.Get("X-Late") != "1" {
		t.Fatalf("body %q trailers %v", b, res.Trailer)
	}
}

func TestExpectContinueIsAnsweredWhenTheBodyIsRead(t *testing.T) {
	s := &seen{}
	addr := serve(t, s.handler())
	req, _ := http.NewRequest("PUT", "http://"+addr+"/up", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	res, err := (&http.Client{Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := s.all(); len(got) != 1 || got[0] != "PUT /up payload" {
		t.Fatalf("%v", got)
	}
}

func TestAConnectionIdleLongEnoughToDropItsBuffersStillServes(t *testing.T) {
	s := &seen{}
	addr := serve(t, s.handler())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, pause := range []time.Duration{0, 2 * idleRelease, 0, 2 * idleRelease} {
		time.Sleep(pause)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d after %v idle: %v", i, pause, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if got := s.all(); len(got) != 4 || got[3] != "POST /x hello" {
		t.Fatalf("%q", got)
	}
}

// TestDateIsAddedUnlessTheHandlerSetOne: RFC 9110 §6.6.1 for answers made
// here; a proxied response keeps its origin's Date.
func TestDateIsAddedUnlessTheHandlerSetOne(t *testing.T) {
	const upstream = "Mon, 02 Jan 2006 15:04:05 GMT"
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/kept" {
			w.Header().Set("Date", upstream)
		}
	}))
	for path, check := range map[string]func(string) bool{
		"/kept": func(d string) bool { return d == upstream },
		"/own": func(d string) bool {
			ts, err := http.ParseTime(d)
			return err == nil && time.Since(ts).Abs() < time.Minute
		},
	} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if d := res.Header.Get("Date"); !check(d) {
			t.Errorf("%s: Date %q", path, d)
		}
	}
}

func TestAFinalAnswerBeforeAnExpectedBodyEndsTheConnectionWithout100Continue(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized) // without reading the body
	}))
	all := readToClose(t, addr, "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
	if !strings.HasPrefix(string(all), "HTTP/1.1 401 ") || strings.Contains(string(all), "100 Continue") ||
		!strings.Contains(string(all), "Connection: close\r\n") {
		t.Fatalf("answer:\n%s", all)
	}
}

func TestAHandlersConnectionCloseEndsTheConnection(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	all := readToClose(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(string(all), "HTTP/1.1 200 ") || !strings.HasSuffix(string(all), "\r\n3\r\nbye\r\n0\r\n\r\n") {
		t.Fatalf("answer:\n%s", all)
	}
}

// TestARequestPipelinedWhileTheLastOneRunsIsServedAtOnce: the second
// request reaches the socket while the first one's handler still runs
// (after the first was read): it must be answered as soon as the first
// is, not when an idle timer or the sweeper wakes the connection.
func TestARequestPipelinedWhileTheLastOneRunsIsServedAtOnce(t *testing.T) {
	sent := make(chan struct{})
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			<-sent
			time.Sleep(20 * time.Millisecond) // the second is in the socket, not in the buffer
		}
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(20 * time.Millisecond) // the first is read alone
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	close(sent)
	c.SetReadDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(c)
	for _, path := range []string{"/first", "/second"} {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to %s within a second: %v", path, err)
		}
		io.Copy(io.Discard, res.Body)
	}
}
