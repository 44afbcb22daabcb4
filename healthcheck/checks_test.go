package healthcheck

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// flipServer answers with status and body that a test switches.
type flipServer struct {
	status atomic.Int32
	body   atomic.Value
	host   atomic.Value
	*httptest.Server
}

func newFlip(t *testing.T, tlsOn bool) *flipServer {
	f := &flipServer{}
	f.status.Store(200)
	f.body.Store("ok ready")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.host.Store(r.Host)
		w.WriteHeader(int(f.status.Load()))
		w.Write([]byte(f.body.Load().(string)))
	})
	if tlsOn {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

func (f *flipServer) addr() string { return f.Listener.Addr().String() }

func check(t *testing.T, c Checker) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Check(ctx)
	return err
}

func hc(typ string, mod func(*config.HealthCheck)) *config.HealthCheck {
	j := 10
	h := &config.HealthCheck{Name: "h", Type: typ, Path: "/healthz", Method: "GET", ExpectStatus: "200-399", Jitter: &j}
	if mod != nil {
		mod(h)
	}
	return h
}

func TestHTTPCheckJudgesStatusBodyAndHost(t *testing.T) {
	f := newFlip(t, false)
	c, err := NewHTTPChecker(hc("http", func(h *config.HealthCheck) {
		h.ExpectStatus = "200-299,302"
		h.ExpectBody = "ready"
		h.Host = "api.internal"
	}), f.addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, c); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if got := f.host.Load(); got != "api.internal" {
		t.Errorf("Host header %v", got)
	}
	f.status.Store(302)
	if err := check(t, c); err != nil {
		t.Errorf("302 is listed: %v", err)
	}
	f.status.Store(301)
	if err := check(t, c); err == nil || !strings.Contains(err.Error(), "301") {
		t.Errorf("301 is not listed: %v", err)
	}
	f.status.Store(200)
	f.body.Store("starting")
	if err := check(t, c); err == nil || !strings.Contains(err.Error(), "ready") {
		t.Errorf("body without the text: %v", err)
	}
	re, _ := NewHTTPChecker(hc("http", func(h *config.HealthCheck) { h.ExpectBodyRegex = `^ok\b` }), f.addr())
	if err := check(t, re); err == nil {
		t.Error("regex should not match 'starting'")
	}
	f.body.Store("ok ready")
	if err := check(t, re); err != nil {
		t.Errorf("regex: %v", err)
	}
	f.Close()
	if err := check(t, c); err == nil {
		t.Error("a closed server passed")
	}
}

func TestHTTPSCheckVerifiesUnlessTold(t *testing.T) {
	f := newFlip(t, true)
	strict, err := NewHTTPChecker(hc("https", nil), f.addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, strict); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("self-signed certificate accepted: %v", err)
	}
	loose, _ := NewHTTPChecker(hc("https", func(h *config.HealthCheck) { h.TLS = &config.CheckTLS{InsecureSkipVerify: true} }), f.addr())
	if err := check(t, loose); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
}

// acceptAndClose completes every handshake on ln and closes the connection
// at once, until ln is closed.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func TestTCPCheckFollowsTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptAndClose(ln)
	c := &TCPChecker{Address: ln.Addr().String()}
	if err := check(t, c); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := check(t, c); err == nil {
		t.Error("closed port passed")
	}
}

// grpcHealthServer is grpc.health.v1 over h2c written with net/http, so the
// test needs no gRPC library either.
func grpcHealthServer(t *testing.T, serving *atomic.Int32) string {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	var lastService atomic.Value
	lastService.Store("")
	srv := &http.Server{Protocols: &p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/grpc.health.v1.Health/Check" || r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" {
			http.Error(w, "not grpc", 400)
			return
		}
		body := make([]byte, 256)
		n, _ := r.Body.Read(body)
		_ = n
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		st := uint64(serving.Load())
		msg := binary.AppendUvarint([]byte{0x08}, st)
		frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		w.Write(append(frame, msg...))
		w.Header().Set("Grpc-Status", "0")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestGRPCHealthCheckWithoutTheGRPCLibrary(t *testing.T) {
	var serving atomic.Int32
	serving.Store(1)
	c := NewGRPCChecker(grpcHealthServer(t, &serving), "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if d, err := c.Check(ctx); err != nil || d != "SERVING" {
		t.Fatalf("serving: %q %v", d, err)
	}
	serving.Store(2)
	if d, err := c.Check(ctx); err == nil || d != "NOT_SERVING" {
		t.Errorf("not serving: %q %v", d, err)
	}
}

func TestGRPCFramingRoundTrips(t *testing.T) {
	b := grpcRequest("pkg.Svc")
	if b[0] != 0 || binary.BigEndian.Uint32(b[1:5]) != 9 || b[5] != 0x0a || b[6] != 7 || string(b[7:]) != "pkg.Svc" {
		t.Errorf("request % x", b)
	}
	if e := grpcRequest(""); len(e) != 5 {
		t.Errorf("empty request % x", e)
	}
	// Unknown fields before the status are skipped.
	msg := []byte{0x12, 0x02, 'h', 'i', 0x08, 0x01}
	fr := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	if st, err := grpcStatus(fr); err != nil || st != 1 {
		t.Errorf("status %d %v", st, err)
	}
	for _, bad := range [][]byte{{0, 0, 0}, {1, 0, 0, 0, 0}, {0, 0, 0, 0, 9, 8}} {
		if _, err := grpcStatus(bad); err == nil {
			t.Errorf("% x parsed", bad)
		}
	}
}
