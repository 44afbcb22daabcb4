package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// A minimal RFC 6455 server and client: text frames up to 125 bytes.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho upgrades and echoes every text frame back, prefixed "echo: ".
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Key") == "" {
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
		if err := wsWrite(c, append([]byte("echo: "), msg...), false); err != nil {
			return
		}
	}
}

func wsWrite(w io.Writer, msg []byte, mask bool) error {
	if len(msg) > 125 {
		return fmt.Errorf("message of %d bytes: this client sends at most 125", len(msg))
	}
	hdr := []byte{0x81, byte(len(msg))}
	payload := append([]byte(nil), msg...)
	if mask {
		hdr[1] |= 0x80
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
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
	if h[0] != 0x81 {
		return nil, fmt.Errorf("frame %02x: want a final text frame", h[0])
	}
	n := int(h[1] & 0x7f)
	if n > 125 {
		return nil, fmt.Errorf("frame length code %d: want at most 125", n)
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return nil, err
		}
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(br, msg); err != nil {
		return nil, err
	}
	if masked {
		for i := range msg {
			msg[i] ^= key[i%4]
		}
	}
	return msg, nil
}

// wsConn is a client WebSocket through the proxy.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
}

// dialWS opens a WebSocket to path; with tlsConf, over TLS (ALPN
// http/1.1).
func dialWS(t *testing.T, addr, path string, tlsConf *tls.Config) *wsConn {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, addr, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("WebSocket handshake: %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	c.SetDeadline(time.Time{})
	return &wsConn{c: c, br: br}
}

// echo sends msg and returns the answer.
func (w *wsConn) echo(msg string) (string, error) {
	w.c.SetDeadline(time.Now().Add(5 * time.Second))
	defer w.c.SetDeadline(time.Time{})
	if err := wsWrite(w.c, []byte(msg), true); err != nil {
		return "", err
	}
	got, err := wsRead(w.br)
	return string(got), err
}

// TestWebSocketAndHTTP2SurviveAReload: WebSockets (plain and over TLS) and
// an HTTP/2 connection opened before a SIGHUP reload that changes the
// routes, but keeps the listeners, go on working after it; the new route
// serves.
func TestWebSocketAndHTTP2SurviveAReload(t *testing.T) {
	dir := t.TempDir()
	f := &fixture{ca: newCA(t, dir)}
	_, _, upCert := f.ca.issue(t, dir, "upstream", "upstream.test")
	certFile, keyFile, _ := f.ca.issue(t, dir, "proxy", "proxy.test")
	f.h1 = newUpstream(t, "h1", "http1", nil)
	f.h2c = newUpstream(t, "h2c", "h2c", nil)
	f.h2tls = newUpstream(t, "h2tls", "h2", &upCert)
	f.tlsPort, f.h2cPort, f.plainPort = freePort(t), freePort(t), freePort(t)
	wsRoute := `    - name: ws
      pool: h1
      match: {path_prefix: /ws}
`
	f.d = startDaemon(t, dir, f.l7(certFile, keyFile, wsRoute))

	plainAddr := fmt.Sprintf("127.0.0.1:%d", f.plainPort)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", f.tlsPort)
	sockets := []struct {
		name string
		ws   *wsConn
	}{
		{"plain", dialWS(t, plainAddr, "/ws", nil)},
		{"on the h2c listener", dialWS(t, fmt.Sprintf("127.0.0.1:%d", f.h2cPort), "/ws/h2c", nil)},
		{"over TLS", dialWS(t, tlsAddr, "/ws/tls", &tls.Config{RootCAs: f.ca.pool, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}})},
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		for i, s := range sockets {
			msg := fmt.Sprintf("%s message %d %s", when, i, s.name)
			got, err := s.ws.echo(msg)
			if err != nil || got != "echo: "+msg {
				t.Errorf("WebSocket %s %s: %q, %v; want %q", s.name, when, got, err, "echo: "+msg)
			}
		}
	}
	check(t, "before the reload")

	// An HTTP/2 connection over TLS, and one over h2c.
	var h2, h2c http.Protocols
	h2.SetHTTP2(true)
	h2c.SetUnencryptedHTTP2(true)
	h2clients := []struct {
		name, base string
		c          *http.Client
	}{
		{"h2", "https://" + tlsAddr, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &h2, TLSClientConfig: &tls.Config{RootCAs: f.ca.pool}}}},
		{"h2c", fmt.Sprintf("http://127.0.0.1:%d", f.h2cPort), &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &h2c}}},
	}
	// get returns the status, the body and whether the connection was reused.
	get := func(c *http.Client, url string) (int, string, bool, error) {
		var reused bool
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), reused, err
	}
	for _, h := range h2clients {
		defer h.c.CloseIdleConnections()
		if code, body, _, err := get(h.c, h.base+"/h2c/before"); err != nil || code != 200 || body != "h2c /h2c/before" {
			t.Fatalf("%s before the reload: %d %q %v", h.name, code, body, err)
		}
	}

	// The reload: the ws route gets a response header, and a new route
	// sends /after to the h2-TLS upstream. The listeners stay.
	start := time.Now()
	f.d.reload(t, f.l7(certFile, keyFile, wsRoute+`      response_headers:
        set:
          - {name: X-Generation, value: "2"}
    - name: after
      pool: h2tls
      match: {path_prefix: /after}
`))
	t.Logf("reload applied in %v", time.Since(start).Round(time.Millisecond))

	t.Run("the new route serves", func(t *testing.T) {
		code, body, _, err := get(h2clients[1].c, h2clients[1].base+"/after/x")
		if err != nil || code != 200 || body != "h2tls /after/x" {
			t.Fatalf("GET /after/x after the reload: %d %q %v, want 200 from h2tls", code, body, err)
		}
	})
	t.Run("the WebSockets keep echoing", func(t *testing.T) {
		check(t, "after the reload")
		// And for a while: the old server generation drains (drain 1s)
		// but hijacked connections are not its to close.
		time.Sleep(1500 * time.Millisecond)
		check(t, "after the drain")
	})
	t.Run("the HTTP/2 connections are still used", func(t *testing.T) {
		for _, h := range h2clients {
			code, body, reused, err := get(h.c, h.base+"/h2c/after-reload")
			if err != nil || code != 200 || body != "h2c /h2c/after-reload" {
				t.Errorf("%s after the reload: %d %q %v", h.name, code, body, err)
				continue
			}
			if !reused {
				t.Errorf("%s: the request after the reload went over a new connection", h.name)
			}
		}
	})
	t.Run("a new WebSocket gets the new route", func(t *testing.T) {
		ws := dialWS(t, plainAddr, "/ws/new", nil)
		if got, err := ws.echo("new"); err != nil || got != "echo: new" {
			t.Errorf("new WebSocket: %q %v", got, err)
		}
	})
}
