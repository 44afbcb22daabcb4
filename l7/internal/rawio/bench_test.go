package rawio

import (
	"io"
	"net"
	"testing"
)

// BenchmarkRoundTrip is a keep-alive exchange over loopback: a 64-byte
// request and a 64-byte answer from an echo peer, the proxy's upstream
// pattern. "net" writes and reads with *net.TCPConn (the runtime's system
// call path), "raw" with Conn's Write and Read (the same calls, raw: no
// scheduler hand-off).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range []string{"net", "raw"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(s, buf); err != nil {
						return
					}
					if _, err := s.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			rc := Wrap(c).(*Conn)
			req, resp := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if mode == "net" {
					if _, err := c.Write(req); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, resp); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, err := rc.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rc, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
