// Package rawio reads and writes TCP sockets without telling the Go
// scheduler that a system call is under way.
//
// A write to a socket that the kernel delivers locally (loopback, or a
// veth pair to a local backend) runs the receiver's TCP stack and wakes
// the receiver inside the sender's system call: tens of microseconds on
// a busy machine. Go's runtime lets a P sit in a system call for 20 µs,
// then its monitor thread (sysmon) takes the P away and starts another
// thread to run the P's goroutines; the writer, back from the kernel,
// finds its P gone, queues its goroutine globally and puts its thread to
// sleep. Under proxy load that hand-off kept sysmon waking every 20 µs
// (3 000 nanosleeps a second) and cost a futex wake and sleep and two
// context switches each time: 8–10 % of the proxy's CPU, work HAProxy,
// whose threads just make the call, does not do.
//
// A non-blocking socket read or write never sleeps in the kernel (it
// returns EAGAIN instead), so it is safe to make as a raw system call,
// which the scheduler does not track: the P stays with its thread, like
// a CPU-bound stretch of Go code of the same length. Waiting for data or
// for room in the socket buffer still goes through the runtime's poller
// (syscall.RawConn), with deadlines and Close honoured as for any read or
// write. Measured on the L7 benchmark (docs/benchmarks.md): nanosleeps
// per request 0.095 → 0.001, futex calls halved, context switches per
// request 0.37 → 0.26 (HTTP/1.1), proxy CPU per request about 10 % lower.
//
// Not done here: writing a request and then waiting for the answer without
// the read that fails with EAGAIN first. Go's poller forgets a readiness
// edge that came before the wait (RawConn.Read resets it), so a FIN that a
// peer sent while the connection idled (a lingering close: it keeps
// reading and never resets) would leave the wait hanging until a timeout;
// l7's TestAKeepAliveConnectionTheUpstreamHalfClosedIsReplacedForAGetAtOnce
// keeps that out.
package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose reads and writes are raw system calls.
// One Read and one Write may run at the same time (each direction has its
// own fields); two of one direction may not, unlike with *net.TCPConn:
// every user here has one reader and serialises its writes (the HTTP/2
// server's writer, crypto/tls, x/net/http2's write lock).
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// The write in progress.
	b   []byte
	n   int
	err error

	// The read in progress.
	rb   []byte
	rn   int
	rerr error

	// c.write and c.read, bound once: a method value per call would
	// allocate.
	writeStep, readStep func(fd uintptr) bool
}

// Wrap returns c with raw reads and writes, or c itself when it is not a
// TCP connection.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &Conn{TCPConn: tc, rc: rc}
	rw.writeStep, rw.readStep = rw.write, rw.read
	return rw
}

// Write writes all of b (net.Conn's contract); it waits for buffer room
// through the poller, so write deadlines apply.
func (c *Conn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.b, c.n, c.err = b, 0, nil
	err := c.rc.Write(c.writeStep)
	n := c.n
	if err == nil {
		err = c.err
	}
	c.b = nil
	return n, wrapErr("write", c.TCPConn, err)
}

func (c *Conn) write(fd uintptr) bool {
	for c.n < len(c.b) {
		m, errno := rawSys(syscall.SYS_WRITE, fd, c.b[c.n:])
		switch errno {
		case 0:
			c.n += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for room
		default:
			c.err = errno
			return true
		}
	}
	return true
}

// Read reads into b, waiting through the poller when nothing is there
// (read deadlines apply); io.EOF when the peer closed.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.rb, c.rn, c.rerr = b, 0, nil
	err := c.rc.Read(c.readStep)
	n := c.rn
	if err == nil {
		err = c.rerr
	}
	c.rb = nil
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, wrapErr("read", c.TCPConn, err)
}

func (c *Conn) read(fd uintptr) bool {
	for {
		n, errno := rawSys(syscall.SYS_READ, fd, c.rb)
		switch errno {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait for data
		default:
			c.rerr = errno
			return true
		}
	}
}

// rawSys makes a read or write system call on b, raw except under the
// race detector, whose annotations of syscall.Syscall order the memory a
// goroutine wrote before sending with the reads of the goroutine that
// received it.
func rawSys(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	if raceEnabled {
		var n int
		var err error
		if trap == syscall.SYS_READ {
			n, err = syscall.Read(int(fd), b)
		} else {
			n, err = syscall.Write(int(fd), b)
		}
		if errno, ok := err.(syscall.Errno); ok {
			return 0, errno
		}
		return n, 0
	}
	r, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), errno
}

// wrapErr gives errors the *net.OpError shape net.Conn's own reads and
// writes have.
func wrapErr(op string, c *net.TCPConn, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*net.OpError); ok {
		// The poller's own errors (deadlines, Close) come as "raw-read"
		// or "raw-write".
		if oe.Op != op {
			e := *oe
			e.Op = op
			return &e
		}
		return err
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
