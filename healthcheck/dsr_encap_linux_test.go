//go:build linux

package healthcheck

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// The probe for ipip and gue backends wraps the SYN as bpf/xdp_lb.c
// does: outer IPv4 (valid checksum, DF, TTL 64, protocol 4 or 17) or
// IPv6 (next header 41 or 17), the UDP header to the GUE port, and the
// SYN's own IP packet untouched behind them.
func TestEncapFrame(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		name      string
		src, vip  netip.Addr
		osrc, dst netip.Addr
		gue       uint16
	}{
		{"ipv4 in ipv4", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.2.0.1"), 0},
		{"ipv4 in gue", netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.2.0.1"), 6080},
		{"ipv6 in ipv6", netip.MustParseAddr("fd00::2"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fd00:ec::1"), netip.MustParseAddr("2001:db8:b::1"), 0},
		{"ipv6 in gue", netip.MustParseAddr("fd00::2"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fd00:ec::1"), netip.MustParseAddr("2001:db8:b::1"), 6080},
	} {
		t.Run(c.name, func(t *testing.T) {
			syn := tcpFrame(mac, mac, c.src, c.vip, 40000, 443, 1, 0, tcpSYN)
			fr := encapFrame(syn, c.osrc, c.dst, c.gue)
			if !bytes.Equal(fr[:14], syn[:14]) {
				t.Errorf("Ethernet header changed")
			}
			off, proto := 14, byte(0)
			if c.dst.Is4() {
				o := fr[14:34]
				if checksum(o, 0) != 0 || o[0] != 0x45 || o[8] != 64 || binary.BigEndian.Uint16(o[6:]) != 0x4000 {
					t.Errorf("outer IPv4 header %x", o)
				}
				if int(binary.BigEndian.Uint16(o[2:])) != len(fr)-14 || netip.AddrFrom4([4]byte(o[12:16])) != c.osrc || netip.AddrFrom4([4]byte(o[16:20])) != c.dst {
					t.Errorf("outer IPv4 length or addresses %x", o)
				}
				off, proto = 34, o[9]
			} else {
				o := fr[14:54]
				if int(binary.BigEndian.Uint16(o[4:])) != len(fr)-54 || netip.AddrFrom16([16]byte(o[8:24])) != c.osrc || netip.AddrFrom16([16]byte(o[24:40])) != c.dst {
					t.Errorf("outer IPv6 header %x", o)
				}
				off, proto = 54, o[6]
			}
			want := byte(4)
			if !c.dst.Is4() {
				want = 41
			}
			if c.gue != 0 {
				want = 17
				u := fr[off : off+8]
				if binary.BigEndian.Uint16(u[2:]) != c.gue || int(binary.BigEndian.Uint16(u[4:])) != len(fr)-off || u[0] < 0xC0 {
					t.Errorf("GUE UDP header %x", u)
				}
				off += 8
			}
			if proto != want {
				t.Errorf("outer protocol %d, want %d", proto, want)
			}
			if !bytes.Equal(fr[off:], syn[14:]) {
				t.Errorf("inner packet changed")
			}
		})
	}
}
