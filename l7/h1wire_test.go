package l7

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// An upstream's response head is parsed as strictly as a client's request:
// a length another hop could read differently is a 502, never a guess.
func TestUpstreamResponseHeadFraming(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		ok         bool
		length     int64
	}{
		{"plain length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 5},
		{"zero", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, 0},
		{"repeated, equal", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", true, 5},
		{"signed", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", false, 0},
		{"negative", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0},
		{"empty", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", false, 0},
		{"list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", false, 0},
		{"hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n", false, 0},
		{"repeated, different", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, 0},
		{"overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, 0},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 0},
		{"folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\n\r\n", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rh respHead
			err := readResponseHead(bufio.NewReader(strings.NewReader(tc.head)), http.Header{}, http.MethodGet, &rh)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (rh.body.kind != bodyLength || rh.body.n != tc.length) {
				t.Errorf("body = %+v, want a length of %d", rh.body, tc.length)
			}
		})
	}
}
