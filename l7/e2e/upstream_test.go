package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is what an upstream saw of one request.
type seen struct {
	Method, Path, Proto, Host string
	XFF, XFProto              string
	TLS                       bool
	ContentType, TE           string
	Body                      string
}

// upstream is an HTTP server in the test, speaking one protocol (http1,
// h2c or h2 over TLS). It answers "<name> <path>" and records what it saw
// by path. Paths with /grpc/ get a gRPC-style answer with trailers, /ws
// a WebSocket echo.
type upstream struct {
	name, protocol string
	addr           string
	srv            *http.Server

	mu   sync.Mutex
	seen map[string]seen
}

// newUpstream starts an upstream; protocol is http1, h2c or h2 (then cert
// is its TLS certificate).
func newUpstream(t *testing.T, name, protocol string, cert *tls.Certificate) *upstream {
	t.Helper()
	u := &upstream{name: name, protocol: protocol, seen: map[string]seen{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	var p http.Protocols
	switch protocol {
	case "http1":
		p.SetHTTP1(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true) // HTTP/2 prior knowledge only: no HTTP/1.1
	case "h2":
		p.SetHTTP2(true) // HTTP/2 over TLS only
		u.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2"}}
		ln = tls.NewListener(ln, u.srv.TLSConfig)
	}
	u.srv.Protocols = &p
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" || strings.HasPrefix(r.URL.Path, "/ws/") {
		wsEcho(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s := seen{
		Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Host: r.Host,
		XFF: r.Header.Get("X-Forwarded-For"), XFProto: r.Header.Get("X-Forwarded-Proto"),
		TLS: r.TLS != nil, ContentType: r.Header.Get("Content-Type"), TE: r.Header.Get("Te"),
		Body: string(body),
	}
	u.mu.Lock()
	u.seen[r.URL.Path] = s
	u.mu.Unlock()
	if strings.Contains(r.URL.Path, "/grpc/") {
		grpcEcho(w, body)
		return
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && n > 0 {
		// A large answer: the name and path, then n-len bytes of a pattern
		// that the client can check.
		fmt.Fprintf(w, "%s %s\n", u.name, r.URL.Path)
		w.Write(pattern(n))
		return
	}
	fmt.Fprintf(w, "%s %s", u.name, r.URL.Path)
}

// pattern is n bytes that show truncation, duplication and reordering.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i/7)%26)
	}
	return b
}

func (u *upstream) saw(path string) (seen, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.seen[path]
	return s, ok
}

// grpcEcho answers like a gRPC server: content-type application/grpc, the
// request's length-prefixed message echoed back, and the status in
// trailers — Grpc-Status undeclared (http.TrailerPrefix, as gRPC servers
// on net/http do it) and Grpc-Message declared before the body.
func grpcEcho(w http.ResponseWriter, msg []byte) {
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Message")
	w.WriteHeader(http.StatusOK)
	w.Write(msg)
	w.(http.Flusher).Flush()
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	w.Header().Set("Grpc-Message", "all good")
}

// grpcFrame is a gRPC length-prefixed message (uncompressed).
func grpcFrame(msg string) []byte {
	n := len(msg)
	return append([]byte{0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, msg...)
}
