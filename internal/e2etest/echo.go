//go:build linux

package e2etest

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// EchoServer answers every line "MSG\n" with "NAME MSG\n" on Addr in
// Host's namespace, so a client learns from every reply which host holds
// its connection. Stop closes the listener and every accepted connection
// (an open socket would keep the namespace alive after the lab is gone)
// and waits for its goroutines; Start listens again.
type EchoServer struct {
	Name string
	Host *netlab.Host
	Addr string
	// Lines counts lines received, over all connections.
	Lines atomic.Int64

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewEchoServer returns a server that is not listening yet.
func NewEchoServer(h *netlab.Host, name, addr string) *EchoServer {
	return &EchoServer{Name: name, Host: h, Addr: addr}
}

// ServeEcho starts an echo server and stops it when the test ends.
func ServeEcho(t testing.TB, h *netlab.Host, name, addr string) *EchoServer {
	t.Helper()
	s := NewEchoServer(h, name, addr)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start listens on Addr in Host.
func (s *EchoServer) Start() error {
	ln, err := s.Host.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln, s.conns = ln, map[net.Conn]struct{}{}
	s.mu.Unlock()
	s.wg.Go(func() { s.accept(ln) })
	return nil
}

// Stop closes the listener and every connection and waits for them.
func (s *EchoServer) Stop() {
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// Close is Stop, for io.Closer.
func (s *EchoServer) Close() error {
	s.Stop()
	return nil
}

func (s *EchoServer) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				s.Lines.Add(1)
				if _, err := io.WriteString(c, s.Name+" "+line); err != nil {
					return
				}
			}
		})
	}
}
