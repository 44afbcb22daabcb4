package l7

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzUpstreamResponse feeds arbitrary bytes as an upstream's answer. The
// parser must not panic, and a response it accepts must reach the client
// with one framing: never a Content-Length beside chunking.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n3\r\nabc\r\n0\r\nX: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		h := http.Header{}
		var rh respHead
		if err := readResponseHead(br, h, method, &rh); err != nil {
			return
		}
		if rh.body.kind == bodyChunked && len(h["Content-Length"]) > 0 {
			t.Fatalf("chunked with a Content-Length: %q", in)
		}
		if len(h["Transfer-Encoding"]) > 0 || len(h["Connection"]) > 0 {
			t.Fatalf("hop-by-hop field passed: %v", h)
		}
		copyBody(io.Discard, br, rh.body, nil, h)
	})
}
