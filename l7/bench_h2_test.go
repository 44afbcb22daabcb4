package l7

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
)

// h2Client is one HTTP/2 connection over TLS to a proxy started with a TLS
// listener (the lean HTTP/2 server, l7/internal/h2).
func h2Client(tb testing.TB) (*http.Client, string) {
	tb.Helper()
	up := benchUpstream(tb)
	cert, key := selfSigned(tb)
	lis := ", tls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}"
	_, addr := startProxy(tb, []string{up}, proxyOpts{lis: lis})
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Protocols: &protos}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, "https://" + addr + "/"
}

func h2Get(tb testing.TB, c *http.Client, url string) {
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	res, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		tb.Fatalf("status %d", res.StatusCode)
	}
}

// BenchmarkProxyH2OverTLS: one stream at a time on one connection. The
// allocations include the client's (x/net's HTTP/2 transport).
func BenchmarkProxyH2OverTLS(b *testing.B) {
	c, url := h2Client(b)
	h2Get(b, c, url)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h2Get(b, c, url)
	}
}

// BenchmarkProxyH2OverTLSParallel: many streams in flight on one
// connection, where the lean server gathers responses into shared writes.
func BenchmarkProxyH2OverTLSParallel(b *testing.B) {
	c, url := h2Client(b)
	h2Get(b, c, url)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h2Get(b, c, url)
		}
	})
}
