package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestLimitsThroughTheDaemon: max_uri_bytes, max_body_bytes (a
// listener default and a route's own) and max_conns_per_ip, configured in
// the file of the real `portcullis run`, over cleartext HTTP/1.1.
func TestRequestLimitsThroughTheDaemon(t *testing.T) {
	var seen atomic.Int64
	up := serve(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(b))
	})
	port := freePort(t)
	d := startDaemon(t, t.TempDir(), fmt.Sprintf(`l7:
  listeners:
    - {name: web, address: "127.0.0.1:%d", max_uri_bytes: 512, max_body_bytes: 2048, max_conns_per_ip: 3}
  pools:
    - {name: app, endpoints: [{address: "%s"}]}
  routes:
    - {name: uploads, pool: app, match: {path_prefix: /uploads}, max_body_bytes: 65536}
    - {name: api, pool: app}
`, port, up))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	post := func(path string, n int) int {
		t.Helper()
		res, err := d.Client.Post(base+path, "application/octet-stream", strings.NewReader(strings.Repeat("x", n)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, tt := range []struct {
		name   string
		path   string
		size   int
		status int
	}{
		{"a body within the listener's default passes", "/api", 2048, 200},
		{"a body over the listener's default is 413", "/api", 2049, 413},
		{"a route's own limit overrides the listener's", "/uploads/a", 60000, 200},
		{"a target over max_uri_bytes is 414", "/api?" + strings.Repeat("q", 600), 0, 414},
	} {
		before := seen.Load()
		if got := post(tt.path, tt.size); got != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.name, got, tt.status)
		}
		if tt.status != 200 && seen.Load() != before {
			t.Fatalf("%s: the upstream saw the refused request", tt.name)
		}
	}

	// Three connections from 127.0.0.1 are served; the fourth is closed at
	// accept and counted.
	for i := range 4 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if i == 3 {
				break // reset before connect returned: refused
			}
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case i < 3 && (err != nil || res.StatusCode != 200):
			t.Fatalf("connection %d under the limit: %v", i+1, err)
		case i == 3 && err == nil:
			t.Fatalf("the fourth connection was answered %d", res.StatusCode)
		}
	}
	if n := d.metric(t, `portcullis_http_connections_refused_total{listener="web",reason="per_ip_limit"}`); n != 1 {
		t.Fatalf("refused connections counted %v, want 1", n)
	}
}
