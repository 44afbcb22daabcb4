package l7

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/l7/internal/h1"
)

// benchUpstream is a minimal keep-alive HTTP/1.1 server (64-byte answers),
// cheaper than net/http so the benchmark's numbers are mostly the proxy's.
func benchUpstream(tb testing.TB) string {
	body := strings.Repeat("x", 64)
	return fixedUpstream(tb, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body))
}

// fixedUpstream answers every GET on a keep-alive connection with resp,
// allocating nothing per request.
func fixedUpstream(tb testing.TB, resp []byte) string {
	return serveConns(tb, func(c net.Conn, br *bufio.Reader) {
		for {
			// Read one request head (the proxy sends no bodies here).
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// serveConns listens on a loopback port until the test ends and runs
// handle for each connection in a goroutine of its own, closing the
// connection when handle returns.
func serveConns(tb testing.TB, handle func(c net.Conn, br *bufio.Reader)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// benchRequests is the benchmark loop of rc's request, after one request
// outside the timer.
func benchRequests(b *testing.B, rc *rawClient) {
	rc.do(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rc.do(b)
	}
}

// skipAllocMeasurement skips the allocation-budget tests where their
// numbers mean nothing.
func skipAllocMeasurement(t *testing.T) {
	t.Helper()
	if testing.Short() || raceEnabled {
		t.Skip("measures allocations over real sockets, without the race detector")
	}
}

// allocsPerRequest sends warm requests on rc (to fill the pools), waits
// settle, then measures the allocations of one request over runs.
func allocsPerRequest(t *testing.T, rc *rawClient, warm, runs int, settle time.Duration) float64 {
	t.Helper()
	for range warm {
		rc.do(t)
	}
	if settle > 0 {
		time.Sleep(settle)
	}
	return testing.AllocsPerRun(runs, func() { rc.do(t) })
}

// rawClient sends keep-alive GETs on one connection and reads the answers
// by hand, so the client allocates nothing per request.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func newRawClient(tb testing.TB, addr string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReaderSize(c, 8192), req: []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
}

func (rc *rawClient) do(tb testing.TB) {
	if _, err := rc.c.Write(rc.req); err != nil {
		tb.Fatal(err)
	}
	cl := -1
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if len(line) == 2 {
			break
		}
		if len(line) > 16 && (line[0] == 'C' || line[0] == 'c') && string(line[:16]) == "Content-Length: " {
			cl, _ = strconv.Atoi(string(line[16 : len(line)-2]))
		}
	}
	if cl < 0 {
		tb.Fatal("no Content-Length")
	}
	if _, err := rc.br.Discard(cl); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkProxyH1KeepAlive is one full request through the proxy over
// loopback: client → proxy (net/http server) → pooled upstream connection.
// allocs/op counts the whole process (client, proxy, upstream), and the
// client and upstream here allocate nothing per request.
func BenchmarkProxyH1KeepAlive(b *testing.B) {
	up := benchUpstream(b)
	_, addr := startProxy(b, []string{up}, proxyOpts{})
	rc := newRawClient(b, addr)
	benchRequests(b, rc)
}

// maxAllocsPerRequest is the allocation budget of one proxied HTTP/1.1
// keep-alive request, net/http's server side included. Raise it only with
// a reason written here. Measured with Go 1.26: 22, of which net/http's
// server takes 17 (request, URL, header map and values, context, background
// read, the header clone at WriteHeader) and the engine 5 (the request id as a string for route templates, the upstream
// head as one string, its values slice, map growth).
const maxAllocsPerRequest = 22

func TestAllocationBudgetOfAProxiedRequest(t *testing.T) {
	skipAllocMeasurement(t)
	up := benchUpstream(t)
	_, addr := startProxy(t, []string{up}, proxyOpts{})
	rc := newRawClient(t, addr)
	n := allocsPerRequest(t, rc, 100, 2000, 10*time.Millisecond)
	t.Logf("%.1f allocations per proxied request", n)
	if n > maxAllocsPerRequest {
		t.Errorf("%.1f allocations per request, budget %d", n, maxAllocsPerRequest)
	}
}

// startLean serves the proxy's "web" listener with the lean HTTP/1.1
// server (l7/internal/h1) on a socket of its own.
func startLean(tb testing.TB, p *Proxy) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	s := &h1.Server{Handler: p.ListenerHandler("web"), IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(context.Background(), c)
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxyH1LeanServer is BenchmarkProxyH1KeepAlive with the lean
// HTTP/1.1 server in front instead of net/http's.
func BenchmarkProxyH1LeanServer(b *testing.B) {
	up := benchUpstream(b)
	p, _ := startProxy(b, []string{up}, proxyOpts{})
	rc := newRawClient(b, startLean(b, p))
	benchRequests(b, rc)
}

// maxAllocsLean is the budget with the lean server: the request head as one
// string, the request id string, the upstream head string and values.
const maxAllocsLean = 4

func TestAllocationBudgetWithTheLeanServer(t *testing.T) {
	skipAllocMeasurement(t)
	up := benchUpstream(t)
	p, _ := startProxy(t, []string{up}, proxyOpts{})
	rc := newRawClient(t, startLean(t, p))
	n := allocsPerRequest(t, rc, 100, 2000, 0)
	t.Logf("%.1f allocations per proxied request (lean server)", n)
	if n > maxAllocsLean {
		t.Errorf("%.1f allocations per request, budget %d", n, maxAllocsLean)
	}
}

// BenchmarkProxyH1LeanServerAccessLog is the lean benchmark with the access
// log on (to a file): the difference is the log's cost per request.
func BenchmarkProxyH1LeanServerAccessLog(b *testing.B) {
	up := benchUpstream(b)
	logFile := b.TempDir() + "/access.log"
	p, _ := startProxy(b, []string{up}, proxyOpts{l7: "  access_log: {enabled: true, path: " + logFile + "}\n"})
	rc := newRawClient(b, startLean(b, p))
	benchRequests(b, rc)
}
