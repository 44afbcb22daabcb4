package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestAClientThatGoesAwayReleasesTheUpstreamAtOnce: an HTTP/2 client that
// resets its stream must not leave the proxy waiting for a slow upstream's
// answer: the upstream connection is closed right away, not when the
// upstream answers.
func TestAClientThatGoesAwayReleasesTheUpstreamAtOnce(t *testing.T) {
	closed := make(chan time.Time, 8)
	up := serveConns(t, func(c net.Conn, _ *bufio.Reader) {
		// Read the request, never answer, report when the proxy closes
		// its side.
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				closed <- time.Now()
				return
			}
		}
	})
	cert, key := selfSigned(t)
	lis := ", tls: {certificates: [{cert_file: " + cert + ", key_file: " + key + "}]}"
	_, addr := startProxy(t, []string{up}, proxyOpts{lis: lis, pool: "      timeouts: {response_header: 30s}\n"})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/", nil)
	start := time.Now()
	if res, err := client.Do(req); err == nil {
		res.Body.Close()
		t.Fatal("a never-answering upstream answered")
	}
	select {
	case at := <-closed:
		if d := at.Sub(start); d > 5*time.Second {
			t.Fatalf("upstream released after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open after the client went away")
	}
}
