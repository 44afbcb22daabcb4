// Command idleconns opens N keep-alive HTTP/1.1 connections to a proxy, makes
// one request on each (so each sits in the proxy's keep-alive state, as a
// browser's idle connection does), holds them for -hold, then closes them.
// It prints "ready" once all are open, for bench/l7/idle.sh to measure the
// proxy's RSS. Loopback only; bounded by -n and -hold.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18085", "proxy address (loopback)")
	n := flag.Int("n", 10000, "connections")
	hold := flag.Duration("hold", 10*time.Second, "how long to keep them open")
	flag.Parse()
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	for i := 0; i < *n; i++ {
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
