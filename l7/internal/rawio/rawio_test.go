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

	"golang.org/x/sys/unix"
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

// readable reports whether a read would find data (or the end) now,
// without waiting.
func readable(c *Conn) bool {
	var rerr error
	c.rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	return rerr != unix.EAGAIN
}

func TestSendWait(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Run("returns when the answer is there to read", func(t *testing.T) {
		c, s := pair(t)
		go func() {
			b := make([]byte, len(head))
			io.ReadFull(s, b)
			time.Sleep(30 * time.Millisecond) // the wait must really wait
			s.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		}()
		n, done, err := c.SendWait(head)
		if n != len(head) || !done || err != nil {
			t.Fatalf("SendWait = %d, %v, %v; want all written, done, no error", n, done, err)
		}
		if !readable(c) {
			t.Fatal("SendWait returned before the answer arrived")
		}
		got, _ := io.ReadAll(io.LimitReader(c, 27))
		if string(got) != "HTTP/1.1 204 No Content\r\n\r\n" {
			t.Fatalf("read %q", got)
		}
	})
	t.Run("a read deadline ends the wait", func(t *testing.T) {
		c, _ := pair(t)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, done, err := c.SendWait(head)
		if n != len(head) || !done || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("SendWait = %d, %v, %v; want written, done, deadline exceeded", n, done, err)
		}
	})
	t.Run("a peer that closed wakes the wait", func(t *testing.T) {
		// A pooled connection the upstream closed while it was idle: the
		// request draws a reset, which ends the wait; the read that
		// follows reports it (and the proxy retries a GET elsewhere).
		c, s := pair(t)
		s.Close()
		time.Sleep(20 * time.Millisecond) // the FIN is in, its edge consumed by nobody
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, done, err := c.SendWait(head)
		if err != nil && (done || !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("SendWait: done=%v err=%v", done, err)
		}
		if time.Since(start) > 4*time.Second {
			t.Fatal("the wait ran into the deadline: the reset did not wake it")
		}
		if _, rerr := c.Read(make([]byte, 16)); rerr == nil {
			t.Fatal("read after the peer closed succeeded")
		}
	})
	t.Run("a closed connection fails before writing", func(t *testing.T) {
		c, _ := pair(t)
		c.Close()
		n, done, err := c.SendWait(head)
		if n != 0 || done || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendWait = %d, %v, %v; want nothing written, an ErrClosed", n, done, err)
		}
	})
	t.Run("a full socket buffer leaves the rest to the caller", func(t *testing.T) {
		c, s := pair(t)
		c.SetWriteBuffer(4096)
		big := bytes.Repeat([]byte("x"), 1<<20)
		n, done, err := c.SendWait(big)
		if done || err != nil || n == 0 || n >= len(big) {
			t.Fatalf("SendWait = %d, %v, %v; want a part written, not done, no error", n, done, err)
		}
		got := make(chan int64)
		go func() { m, _ := io.Copy(io.Discard, s); got <- m }()
		if _, err := c.Write(big[n:]); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		if m := <-got; m != int64(len(big)) {
			t.Fatalf("the upstream got %d bytes, want %d", m, len(big))
		}
	})
}
