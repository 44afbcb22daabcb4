package l7

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A minimal RFC 6455 server and client: enough for text frames up to 125
// bytes, which is all the echo test needs.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho upgrades and echoes every text frame back.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "not a websocket", http.StatusBadRequest)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
	brw.Flush()
	for {
		msg, err := wsRead(brw.Reader)
		if err != nil {
			return
		}
		if err := wsWrite(c, msg, false); err != nil {
			return
		}
	}
}

func wsWrite(w io.Writer, msg []byte, mask bool) error {
	hdr := []byte{0x81, byte(len(msg))}
	payload := append([]byte(nil), msg...)
	if mask {
		hdr[1] |= 0x80
		key := []byte{1, 2, 3, 4}
		hdr = append(hdr, key...)
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	_, err := w.Write(append(hdr, payload...))
	return err
}

func wsRead(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n > 125 {
		return nil, io.ErrUnexpectedEOF
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	_ = binary.BigEndian
	return p, nil
}

func wsDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+key+"\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 || res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake: %d %v", res.StatusCode, res.Header)
	}
	return c, br
}

func wsEchoOnce(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := wsWrite(c, []byte(msg), true); err != nil {
		t.Fatal(err)
	}
	got, err := wsRead(br)
	if err != nil || string(got) != msg {
		t.Fatalf("echo %q: %q %v", msg, got, err)
	}
}

func TestAWebSocketEchoesThroughTheProxyAndSurvivesAReload(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(wsEcho))
	defer up.Close()
	listen := freePort(t)
	load := func(via string) *Generation {
		src := testYAML(listen, []string{upstreamAddr(up)}, proxyOpts{l7: "  via: " + via + "\n"})
		return compileYAML(t, src)
	}
	p := applyNew(t, load("one"))
	c, br := wsDial(t, listen)
	defer c.Close()
	wsEchoOnce(t, c, br, "before the reload")
	if err := p.Apply(load("two"), time.Second); err != nil {
		t.Fatal(err)
	}
	wsEchoOnce(t, c, br, "after the reload")
	// A new connection sees the new generation too.
	c2, br2 := wsDial(t, listen)
	defer c2.Close()
	wsEchoOnce(t, c2, br2, "new connection")
}
