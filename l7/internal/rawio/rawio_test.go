package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns a client connection wrapped by Wrap and the server's end.
func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	rc, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatal("Wrap did not wrap a TCP connection")
	}
	return rc, s
}

func TestWrapLeavesOtherConnectionsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
}

func TestReadAndWrite(t *testing.T) {
	c, s := pair(t)
	// Larger than the socket buffers: Write must wait for room through
	// the poller and still write everything.
	c.SetWriteBuffer(4096)
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(s); got <- b }()
	n, err := c.Write(big)
	if n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer got %d bytes, not the %d written", len(b), len(big))
	}

	// Read waits for data, then reports the peer's close as io.EOF.
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("hello"))
		s.Close()
	}()
	all, err := io.ReadAll(c)
	if string(all) != "hello" || err != nil {
		t.Fatalf("ReadAll = %q, %v", all, err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

// Errors keep the shape net.Conn's own have: *net.OpError, deadlines as
// timeouts matching os.ErrDeadlineExceeded, a closed connection as
// net.ErrClosed.
func TestErrorsLookLikeNetConnErrors(t *testing.T) {
	t.Run("read deadline", func(t *testing.T) {
		c, _ := pair(t)
		c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		_, err := c.Read(make([]byte, 8))
		var ne net.Error
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "read" {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("write deadline", func(t *testing.T) {
		c, _ := pair(t)
		c.SetWriteBuffer(4096)
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Write(make([]byte, 64<<20)) // the peer never reads
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "write" || n <= 0 || n >= 64<<20 {
			t.Fatalf("Write = %d, %v", n, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, _ := pair(t)
		c.Close()
		if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read: %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write: %v", err)
		}
	})
	t.Run("reset by the peer", func(t *testing.T) {
		c, s := pair(t)
		s.(*net.TCPConn).SetLinger(0)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		_, err := c.Read(make([]byte, 8))
		var oe *net.OpError
		if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) {
			t.Fatalf("Read: %#v", err)
		}
	})
}
