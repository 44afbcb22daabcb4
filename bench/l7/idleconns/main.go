// Command idleconns opens N keep-alive HTTP/1.1 connections (or, with -h2,
// HTTP/2 connections over TLS) to a proxy, makes one request on each (so
// each sits in the proxy's keep-alive state, as a browser's idle connection
// does), holds them for -hold, then closes them.
// It prints "ready" once all are open, for bench/l7/idle.sh to measure the
// proxy's RSS. Loopback only; bounded by -n and -hold.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18085", "proxy address (loopback)")
	n := flag.Int("n", 10000, "connections")
	hold := flag.Duration("hold", 10*time.Second, "how long to keep them open")
	useH2 := flag.Bool("h2", false, "HTTP/2 over TLS (ALPN h2, certificate not verified: loopback only)")
	flag.Parse()
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	for i := 0; i < *n; i++ {
		if *useH2 {
			c, err := openH2(*addr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
				os.Exit(1)
			}
			conns = append(conns, c)
			continue
		}
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			fmt.Fprintf(os.Stderr, "write %d: %v\n", i, err)
			os.Exit(1)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "read %d: %v\n", i, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Println("ready")
	time.Sleep(*hold)
}

// openH2 opens an HTTP/2 connection, makes one GET and reads its answer to
// the end, and returns the connection, idle.
func openH2(addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		c.Close()
		return nil, fmt.Errorf("ALPN chose %q", p)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "bench"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		return nil, err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			c.Close()
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				c.SetDeadline(time.Time{})
				return c, nil
			}
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				c.SetDeadline(time.Time{})
				return c, nil
			}
		}
	}
}
