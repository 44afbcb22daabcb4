package h1

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerGone reports whether the peer of c closed or reset the connection,
// without reading anything and without waiting: one recv(MSG_PEEK |
// MSG_DONTWAIT). Data waiting (a pipelined request) means the client is
// still there.
func peerGone(c net.Conn) bool {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case rerr == nil:
			gone = n == 0
		case rerr == unix.EAGAIN || rerr == unix.EINTR:
		default:
			gone = true // ECONNRESET and the like
		}
		return true
	})
	if err != nil {
		// Closed meanwhile, or a read deadline already past.
		return isClosed(err)
	}
	return gone
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed)
}
