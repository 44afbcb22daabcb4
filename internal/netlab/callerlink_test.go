//go:build linux

package netlab

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestCallerLinkReachesAHost(t *testing.T) {
	l := New(t, Options{})
	h := l.AddHost("srv", netip.MustParsePrefix("10.99.77.1/24"))
	ln, err := h.Listen("tcp", "10.99.77.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "hi\n")
		c.Close()
	}()
	c, err := l.AddCallerLink("h", netip.MustParsePrefix("10.99.77.254/24"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != l.Name+"-h" {
		t.Errorf("name %q, want %q", c.Name, l.Name+"-h")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String()) // from the caller's own namespace
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "hi\n" {
		t.Errorf("read %q", b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(c.Name); err == nil {
		t.Errorf("%s still exists after Close", c.Name)
	}
}
