package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// fakeConn reads from r and discards writes.
type fakeConn struct{ r *bytes.Reader }

func (c *fakeConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds arbitrary bytes to one connection. The server must not
// panic, and whatever it hands the handler must have one framing: a body
// that is either absent, of a declared length, or chunked — never both.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET http://a/b?c HTTP/1.1\r\nHost: y\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength >= 0 && len(r.TransferEncoding) > 0 {
				t.Errorf("both a length and a transfer coding: %q", in)
			}
			if r.Header.Get("Content-Length") != "" && len(r.TransferEncoding) > 0 {
				t.Errorf("Content-Length kept with chunked: %q", in)
			}
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "0")
		})}
		// The whole input, then EOF: ServeConn returns by itself.
		s.ServeConn(context.Background(), &fakeConn{r: bytes.NewReader(in)})
	})
}

// FuzzFramingAgreesWithNetHTTP is the smuggling property: every request
// the lean server hands its handler (method, target, Host, body) must be
// what Go's own parser reads at the same place in the same byte stream.
// The lean server may refuse more (it is stricter) and stop earlier, but
// it must never see a message boundary where another HTTP/1.1 parser
// sees none: that disagreement is what request smuggling exploits.
func FuzzFramingAgreesWithNetHTTP(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
		"GET http://a/b?c HTTP/1.1\r\nHost: y\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX: a\r\n b\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		type msg struct{ method, uri, host, body string }
		var got []msg
		s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				panic(http.ErrAbortHandler) // as the proxy: a bad body ends the connection
			}
			got = append(got, msg{r.Method, r.RequestURI, r.Host, string(b)})
			w.Header().Set("Content-Length", "0")
		})}
		s.ServeConn(context.Background(), &fakeConn{r: bytes.NewReader(in)})
		if len(got) == 0 {
			return
		}
		br := bufio.NewReader(bytes.NewReader(in))
		for i, g := range got {
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Fatalf("request %d %+v accepted, Go's parser fails there: %v\ninput %q", i, g, err, in)
			}
			b, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatalf("request %d %+v accepted, Go's parser fails on its body: %v\ninput %q", i, g, err, in)
			}
			want := msg{req.Method, req.RequestURI, req.Host, string(b)}
			if g != want {
				t.Fatalf("request %d: lean %+v, Go %+v\ninput %q", i, g, want, in)
			}
		}
	})
}
