package l4

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/portcullis-lb/portcullis/l4/internal/inetsum"
)

// pkt describes a test frame; build() lays it out with correct IPv4,
// TCP and UDP checksums. Fields left zero get sensible defaults.
type pkt struct {
	dstMAC, srcMAC net.HardwareAddr
	vlans          []uint16 // VLAN ids, outermost first
	etherType      uint16   // default: from the address family
	src, dst       netip.Addr
	proto          uint8 // 6, 17, or anything else (no L4 header built)
	sport, dport   uint16
	tcpFlags       uint8
	payload        []byte
	tos            uint8 // IPv4 TOS / IPv6 traffic class (DSCP and ECN)

	ipOptions []byte // IPv4 options, padded to 4 bytes
	fragOff   uint16 // IPv4 flags+offset field (host order)
	ihl       uint8  // override the computed IHL
	totLen    int    // override the IPv4 total length (>0)
	version   uint8  // override the IP version nibble
	v6ExtHdr  uint8  // IPv6: insert one 8-byte extension header of this type
	v6Ext     bool
}

var (
	clientMAC = net.HardwareAddr{0x02, 0xc0, 0, 0, 0, 0x01}
	lbMAC     = net.HardwareAddr{0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa}
)

func (p pkt) build() []byte {
	dstMAC, srcMAC := p.dstMAC, p.srcMAC
	if dstMAC == nil {
		dstMAC = lbMAC
	}
	if srcMAC == nil {
		srcMAC = clientMAC
	}
	v6 := p.src.Is6() && !p.src.Is4In6()
	et := p.etherType
	if et == 0 {
		et = 0x0800
		if v6 {
			et = 0x86dd
		}
	}
	b := append([]byte{}, dstMAC...)
	b = append(b, srcMAC...)
	for i, id := range p.vlans {
		tpid := uint16(0x8100)
		if i == 0 && len(p.vlans) > 1 {
			tpid = 0x88a8
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, id)
	}
	b = binary.BigEndian.AppendUint16(b, et)

	l4 := p.l4(v6)
	if v6 {
		return append(b, p.ipv6(l4)...)
	}
	return append(b, p.ipv4(l4)...)
}

func (p pkt) l4(v6 bool) []byte {
	var h []byte
	switch p.proto {
	case 6:
		h = make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], p.sport)
		binary.BigEndian.PutUint16(h[2:], p.dport)
		binary.BigEndian.PutUint32(h[4:], 1000)
		if p.tcpFlags&0x10 != 0 {
			binary.BigEndian.PutUint32(h[8:], 2000)
		}
		h[12] = 5 << 4
		h[13] = p.tcpFlags
		binary.BigEndian.PutUint16(h[14:], 65535)
	case 17:
		h = make([]byte, 8)
		binary.BigEndian.PutUint16(h[0:], p.sport)
		binary.BigEndian.PutUint16(h[2:], p.dport)
		binary.BigEndian.PutUint16(h[4:], uint16(8+len(p.payload)))
	default:
		return append([]byte{}, p.payload...)
	}
	seg := append(h, p.payload...)
	// Pseudo-header checksum (RFC 793 / RFC 768 / RFC 8200 8.1).
	var sum uint32
	s, d := p.src.AsSlice(), p.dst.AsSlice()
	if !v6 {
		s, d = p.src.Unmap().AsSlice(), p.dst.Unmap().AsSlice()
	}
	sum = inetsum.Add(sum, s)
	sum = inetsum.Add(sum, d)
	sum += uint32(p.proto) + uint32(len(seg))
	sum = inetsum.Add(sum, seg)
	c := inetsum.Fold(sum)
	if p.proto == 17 && c == 0 {
		c = 0xffff
	}
	off := 16
	if p.proto == 17 {
		off = 6
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return seg
}

func (p pkt) ipv4(l4 []byte) []byte {
	opts := append([]byte{}, p.ipOptions...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	hlen := 20 + len(opts)
	h := make([]byte, hlen)
	ihl := uint8(hlen / 4)
	if p.ihl != 0 {
		ihl = p.ihl
	}
	ver := uint8(4)
	if p.version != 0 {
		ver = p.version
	}
	h[0] = ver<<4 | ihl&0xf
	h[1] = p.tos
	tot := hlen + len(l4)
	if p.totLen > 0 {
		tot = p.totLen
	}
	binary.BigEndian.PutUint16(h[2:], uint16(tot))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], p.fragOff)
	h[8] = 64
	h[9] = p.proto
	s, d := p.src.Unmap().As4(), p.dst.Unmap().As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	copy(h[20:], opts)
	binary.BigEndian.PutUint16(h[10:], inetsum.Fold(inetsum.Add(0, h)))
	return append(h, l4...)
}

func (p pkt) ipv6(l4 []byte) []byte {
	h := make([]byte, 40)
	ver := uint8(6)
	if p.version != 0 {
		ver = p.version
	}
	h[0] = ver<<4 | p.tos>>4
	h[1] = p.tos << 4
	next := p.proto
	body := l4
	if p.v6Ext {
		ext := make([]byte, 8)
		ext[0] = p.proto
		if p.v6ExtHdr == 44 {
			// Fragment header: offset 0, M flag set.
			binary.BigEndian.PutUint16(ext[2:], 1)
			binary.BigEndian.PutUint32(ext[4:], 0xabcd)
		}
		next = p.v6ExtHdr
		body = append(ext, l4...)
	}
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6] = next
	h[7] = 64
	s, d := p.src.As16(), p.dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, body...)
}

func (p pkt) withSrc(a netip.Addr) pkt { p.src = a; return p }
