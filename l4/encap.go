package l4

import (
	"encoding/binary"
	"math/bits"
	"net"
	"net/netip"

	"github.com/portcullis-lb/portcullis/l4/internal/bpfconv"
)

// encapSourceVars lays the encap source prefixes out as xdp_lb.c reads
// them: base addresses and host masks, each u32 holding four bytes in
// network order (the variables marshal little-endian, hence the byte
// swaps). The IPv6 mask covers at most the last word.
func encapSourceVars(p4, p6 netip.Prefix) (src4, mask4 uint32, src6 [4]uint32, mask6 uint32) {
	if p4.IsValid() {
		src4 = bpfconv.AddrWords(p4.Masked().Addr())[3]
		mask4 = bits.ReverseBytes32(hostMask(p4))
	}
	if p6.IsValid() {
		src6 = bpfconv.AddrWords(p6.Masked().Addr())
		mask6 = bits.ReverseBytes32(hostMask(p6))
		// The base keeps only the bits the mask leaves.
		src6[3] &^= mask6
	}
	return
}

// hostMask has the host bits of p's last 32 bits set: those the per-flow
// bits fill in.
func hostMask(p netip.Prefix) uint32 {
	n := min(p.Addr().BitLen()-p.Bits(), 32)
	if n == 32 {
		return 0xFFFFFFFF
	}
	return 1<<n - 1
}

// OuterSource is the outer source address xdp_lb.c gives an ipip packet
// of the flow (src, sport), for a prefix as in Config.EncapSource4/6. It
// is the Go mirror of outer_src_bits; tests and tools use it.
func OuterSource(p netip.Prefix, src netip.Addr, sport uint16) netip.Addr {
	h, m := OuterFlowBits(src, sport), hostMask(p)
	if p.Addr().Is4() {
		b := p.Masked().Addr().As4()
		v := binary.BigEndian.Uint32(b[:])&^m | h&m
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := p.Masked().Addr().As16()
	v := binary.BigEndian.Uint32(b[12:])&^m | h&m
	binary.BigEndian.PutUint32(b[12:], v)
	return netip.AddrFrom16(b)
}

// OuterFlowBits is outer_src_bits of xdp_lb.c: the per-flow value whose
// bits fill the host part of the outer source, and whose low 20 bits are
// the outer IPv6 flow label.
func OuterFlowBits(src netip.Addr, sport uint16) uint32 {
	// As16 maps IPv4 into the last word, as flow_key.src holds it.
	b := src.As16()
	last := binary.BigEndian.Uint32(b[12:])
	return (last ^ uint32(sport)<<16 ^ uint32(sport)) * 0x9E3779B1
}

// interfaceSources are an interface's first global unicast IPv4 and IPv6
// addresses as single-address prefixes (invalid where it has none): the
// outer source of ipip packets when no prefix is configured.
func interfaceSources(ifc *net.Interface) (p4, p6 netip.Prefix) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || !ip.IsGlobalUnicast() {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && !p4.IsValid() {
			p4 = netip.PrefixFrom(ip, 32)
		} else if ip.Is6() && !p6.IsValid() {
			p6 = netip.PrefixFrom(ip, 128)
		}
	}
	return
}
