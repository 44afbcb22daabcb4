//go:build linux

package healthcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/l4"
)

// DSRChecker tests a dsr-l2 backend the way client traffic reaches it (see
// the package documentation, "DSR checks"): a TCP SYN for VIP:Port is sent
// as an Ethernet frame to the backend's MAC from Interface, exactly as the
// XDP program forwards a client's SYN, and the check passes when a SYN-ACK
// from VIP:Port comes back from that MAC. The probe's source is this node's
// own address on Interface, so the answer is routed back here; the half-open
// connection is closed with a RST straight away.
type DSRChecker struct {
	Interface  string
	BackendMAC net.HardwareAddr
	VIP        netip.Addr
	Port       uint16
	// Backend is the backend's own address: the probe's source is the
	// address the kernel would use to reach it.
	Backend netip.Addr
	// Source is the probe's source address. Default: the kernel's
	// preferred source towards Backend, else the first non-host address of
	// the VIP's family on Interface. Never a VIP: the backend holds the
	// VIPs on lo, so an answer to one would never come back.
	Source netip.Addr
	// Encap sends the SYN as an ipip backend gets it (issue #11): wrapped
	// in an outer IPv4/IPv6 header from OuterSource to Backend, to
	// BackendMAC, the next hop (resolved from the routing and neighbour
	// tables when empty). The backend's decap program must accept
	// OuterSource (its allow-list) and restore the SYN for the VIP; the
	// SYN-ACK comes back routed, so it is matched by its addresses, ports
	// and acknowledgement number, not by the MAC it comes from.
	Encap       bool
	OuterSource netip.Addr
	// GUEPort, with Encap, puts a UDP header to this port between the
	// outer and the inner IP header, as a gue backend gets its packets.
	GUEPort uint16
}

const (
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Check sends one SYN and waits for the answer until ctx ends.
func (c *DSRChecker) Check(ctx context.Context) (string, error) {
	vip := c.VIP.Unmap()
	ifc, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return "", err
	}
	nextHop := c.BackendMAC
	if c.Encap && len(nextHop) == 0 {
		if nextHop, _, err = l4.ResolveNextHop(ctx, c.Interface, c.Backend); err != nil {
			return "", err
		}
	}
	if len(ifc.HardwareAddr) != 6 || len(nextHop) != 6 {
		return "", fmt.Errorf("dsr probe needs Ethernet addresses (interface %s, backend %s)", ifc.HardwareAddr, nextHop)
	}
	src := c.Source
	if !src.IsValid() {
		if src, err = sourceAddr(ifc, vip.Is4(), c.Backend); err != nil {
			return "", err
		}
	}
	// Reserve the source port with a bound (never listening, never
	// connected) TCP socket, so that no connection of this host picks the
	// same port while the probe runs and the kernel never sees a SYN-ACK
	// for a socket of its own.
	sport, release, err := reservePort(src)
	if err != nil {
		return "", err
	}
	defer release()

	ethType := uint16(unix.ETH_P_IP)
	if vip.Is6() {
		ethType = unix.ETH_P_IPV6
	}
	// Protocol 0 receives nothing: the filter is in place before bind
	// lets the first frame in, so no unrelated frame is ever queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("packet socket (needs CAP_NET_RAW): %w", err)
	}
	f := os.NewFile(uintptr(fd), "dsr-probe")
	defer f.Close()
	prog, err := synAckFilter(vip, c.Port, sport)
	if err != nil {
		return "", err
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, prog); err != nil {
		return "", fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifc.Index}); err != nil {
		return "", fmt.Errorf("bind packet socket: %w", err)
	}
	var isnb [4]byte
	rand.Read(isnb[:])
	isn := binary.BigEndian.Uint32(isnb[:])
	to := &unix.SockaddrLinklayer{Protocol: htons(ethType), Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], nextHop)
	outerSrc := c.OuterSource
	if !outerSrc.IsValid() {
		outerSrc = src
	}
	frame := func(seq uint32, flags uint8) []byte {
		fr := tcpFrame(nextHop, ifc.HardwareAddr, src, vip, sport, c.Port, seq, 0, flags)
		if c.Encap {
			fr = encapFrame(fr, outerSrc, c.Backend.Unmap(), c.GUEPort)
		}
		return fr
	}
	syn := frame(isn, tcpSYN)
	if err := unix.Sendto(fd, syn, 0, to); err != nil {
		return "", fmt.Errorf("send SYN: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		f.SetReadDeadline(dl)
	} else {
		f.SetReadDeadline(time.Now().Add(5 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 2048)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if c.Encap {
					return "", fmt.Errorf("no SYN-ACK for %s from ipip backend %s: it does not decapsulate (no decap program, or %s not in its allow-list), or does not accept connections to the VIP (VIP not on lo, or nothing listening)",
						netip.AddrPortFrom(vip, c.Port), c.Backend, outerSrc)
				}
				return "", fmt.Errorf("no SYN-ACK for %s from %s: the backend does not accept connections to the VIP (VIP not on lo, or nothing listening)",
					netip.AddrPortFrom(vip, c.Port), c.BackendMAC)
			}
			return "", err
		}
		fr := buf[:n]
		if len(fr) < 14 || !c.Encap && !equalMAC(fr[6:12], c.BackendMAC) {
			continue // the VIP answered from another host: not this backend
		}
		flags, ack, ok := parseTCPReply(fr, vip.Is4())
		if !ok || ack != isn+1 {
			continue
		}
		switch {
		case flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
			unix.Sendto(fd, frame(isn+1, tcpRST), 0, to)
			if c.Encap {
				return "SYN-ACK through ipip to " + c.Backend.String(), nil
			}
			return "SYN-ACK via " + c.BackendMAC.String(), nil
		case flags&tcpRST != 0:
			who := c.BackendMAC.String()
			if c.Encap {
				who = c.Backend.String()
			}
			return "RST", fmt.Errorf("%s refused the connection to %s (it holds the VIP, but nothing listens)", who, netip.AddrPortFrom(vip, c.Port))
		}
	}
}

func equalMAC(a []byte, b net.HardwareAddr) bool {
	return len(a) == 6 && len(b) == 6 && string(a) == string(b)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sourceAddr picks the probe's source. The route to the backend names the
// address the kernel itself would use; failing that, the first address of
// the family that is not a host route (/32, /128), because VIPs sit on the
// interface as host routes and a probe from a VIP is never answered.
func sourceAddr(ifc *net.Interface, v4 bool, backend netip.Addr) (netip.Addr, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	hostAddrs := map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ones, bits := p.Mask.Size(); ones == bits {
				ip, _ := netip.AddrFromSlice(p.IP)
				hostAddrs[ip.Unmap()] = true
			}
		}
	}
	// The kernel's own choice can be a VIP (RFC 6724's longest-prefix rule
	// happily picks one for IPv6), so it counts only when it is not a host
	// address.
	if backend.IsValid() && backend.Is4() == v4 {
		if routes, err := netlink.RouteGet(backend.AsSlice()); err == nil {
			for _, r := range routes {
				if src, ok := netip.AddrFromSlice(r.Src); ok && src.IsValid() && !src.IsUnspecified() && !hostAddrs[src.Unmap()] {
					return src.Unmap(), nil
				}
			}
		}
	}
	var linkLocal netip.Addr
	for _, a := range addrs {
		p, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(p.IP)
		ip = ip.Unmap()
		if ip.Is4() != v4 {
			continue
		}
		if ones, bits := p.Mask.Size(); ones == bits {
			continue // a host address: most likely a VIP
		}
		if ip.IsLinkLocalUnicast() {
			linkLocal = ip
			continue
		}
		return ip, nil
	}
	if linkLocal.IsValid() {
		return linkLocal, nil
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv%d address to send the DSR probe from", ifc.Name, map[bool]int{true: 4, false: 6}[v4])
}

func reservePort(src netip.Addr) (uint16, func(), error) {
	fam := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: src.As16()}
	if src.Is4() {
		fam = unix.AF_INET
		sa = &unix.SockaddrInet4{Addr: src.As4()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return 0, nil, fmt.Errorf("reserve a source port on %s: %w", src, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return 0, nil, err
	}
	var port int
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return uint16(port), func() { unix.Close(fd) }, nil
}

// synAckFilter passes only TCP segments from vip:vport to our port, so a
// busy interface does not copy its traffic into the probe's socket.
func synAckFilter(vip netip.Addr, vport, sport uint16) (*unix.SockFprog, error) {
	type cond struct {
		load bpf.Instruction
		op   bpf.JumpTest
		val  uint32
	}
	var cs []cond
	var tcpOff uint32
	if vip.Is4() {
		a := vip.As4()
		cs = []cond{
			{bpf.LoadAbsolute{Off: 12, Size: 2}, bpf.JumpNotEqual, unix.ETH_P_IP},
			{bpf.LoadAbsolute{Off: 23, Size: 1}, bpf.JumpNotEqual, unix.IPPROTO_TCP},
			{bpf.LoadAbsolute{Off: 26, Size: 4}, bpf.JumpNotEqual, binary.BigEndian.Uint32(a[:])},
			{bpf.LoadAbsolute{Off: 20, Size: 2}, bpf.JumpBitsSet, 0x1fff}, // a fragment: no TCP header
			{bpf.LoadMemShift{Off: 14}, 0, 0},
			{bpf.LoadIndirect{Off: 14, Size: 2}, bpf.JumpNotEqual, uint32(vport)},
			{bpf.LoadIndirect{Off: 16, Size: 2}, bpf.JumpNotEqual, uint32(sport)},
		}
	} else {
		a := vip.As16()
		cs = []cond{
			{bpf.LoadAbsolute{Off: 12, Size: 2}, bpf.JumpNotEqual, unix.ETH_P_IPV6},
			{bpf.LoadAbsolute{Off: 20, Size: 1}, bpf.JumpNotEqual, unix.IPPROTO_TCP},
		}
		for i := range 4 {
			cs = append(cs, cond{bpf.LoadAbsolute{Off: 22 + uint32(4*i), Size: 4}, bpf.JumpNotEqual, binary.BigEndian.Uint32(a[4*i:])})
		}
		tcpOff = 54
		cs = append(cs,
			cond{bpf.LoadAbsolute{Off: tcpOff, Size: 2}, bpf.JumpNotEqual, uint32(vport)},
			cond{bpf.LoadAbsolute{Off: tcpOff + 2, Size: 2}, bpf.JumpNotEqual, uint32(sport)})
	}
	var prog []bpf.Instruction
	for _, c := range cs {
		prog = append(prog, c.load)
		if c.op != 0 || c.val != 0 {
			prog = append(prog, bpf.JumpIf{Cond: c.op, Val: c.val})
		}
	}
	prog = append(prog, bpf.RetConstant{Val: 0xffff}, bpf.RetConstant{Val: 0})
	drop := len(prog) - 1
	for i, ins := range prog {
		if j, ok := ins.(bpf.JumpIf); ok {
			j.SkipTrue = uint8(drop - i - 1)
			prog[i] = j
		}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}, nil
}

// tcpFrame builds an Ethernet frame with an IPv4 or IPv6 header and a TCP
// segment without payload (an MSS option on SYNs), checksums filled in:
// frames written to a packet socket get no offload.
func tcpFrame(dst, src net.HardwareAddr, sip, dip netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8) []byte {
	tcpLen := 20
	if flags&tcpSYN != 0 {
		tcpLen = 24
	}
	tcp := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte(tcpLen/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	if tcpLen == 24 {
		copy(tcp[20:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	}
	var pseudo []byte
	var ip []byte
	ethType := uint16(unix.ETH_P_IP)
	if sip.Is4() {
		s, d := sip.As4(), dip.As4()
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen))
		var id [2]byte
		rand.Read(id[:])
		copy(ip[4:], id[:])
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8], ip[9] = 64, unix.IPPROTO_TCP
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
		pseudo = append(append(append([]byte{}, s[:]...), d[:]...), 0, unix.IPPROTO_TCP, byte(tcpLen>>8), byte(tcpLen))
	} else {
		ethType = unix.ETH_P_IPV6
		s, d := sip.As16(), dip.As16()
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen))
		ip[6], ip[7] = unix.IPPROTO_TCP, 64
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		pseudo = append(append(append([]byte{}, s[:]...), d[:]...), 0, 0, byte(tcpLen>>8), byte(tcpLen), 0, 0, 0, unix.IPPROTO_TCP)
	}
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, sum(pseudo)))
	fr := make([]byte, 0, 14+len(ip)+len(tcp))
	fr = append(fr, dst...)
	fr = append(fr, src...)
	fr = binary.BigEndian.AppendUint16(fr, ethType)
	fr = append(fr, ip...)
	return append(fr, tcp...)
}

// encapFrame wraps the IP packet of an Ethernet frame in an outer IPv4
// (protocol 4) or IPv6 (next header 41) header from osrc to odst, as
// bpf/xdp_lb.c's encap does (DF set, TTL 64); with guePort, in an outer IP
// and UDP header to that port (GUE variant 1, UDP checksum 0).
func encapFrame(fr []byte, osrc, odst netip.Addr, guePort uint16) []byte {
	inner := fr[14:]
	if guePort != 0 {
		udp := make([]byte, 8, 8+len(inner))
		var sp [2]byte
		rand.Read(sp[:])
		binary.BigEndian.PutUint16(udp[0:], 0xC000|binary.BigEndian.Uint16(sp[:])>>2)
		binary.BigEndian.PutUint16(udp[2:], guePort)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(inner)))
		inner = append(udp, inner...)
	}
	var outer []byte
	if odst.Is4() {
		s, d := osrc.As4(), odst.As4()
		outer = make([]byte, 20)
		outer[0] = 0x45
		binary.BigEndian.PutUint16(outer[2:], uint16(20+len(inner)))
		binary.BigEndian.PutUint16(outer[6:], 0x4000)
		outer[8], outer[9] = 64, unix.IPPROTO_IPIP
		if guePort != 0 {
			outer[9] = unix.IPPROTO_UDP
		}
		copy(outer[12:], s[:])
		copy(outer[16:], d[:])
		binary.BigEndian.PutUint16(outer[10:], checksum(outer, 0))
	} else {
		s, d := osrc.As16(), odst.As16()
		outer = make([]byte, 40)
		outer[0] = 0x60
		binary.BigEndian.PutUint16(outer[4:], uint16(len(inner)))
		outer[6], outer[7] = unix.IPPROTO_IPV6, 64
		if guePort != 0 {
			outer[6] = unix.IPPROTO_UDP
		}
		copy(outer[8:], s[:])
		copy(outer[24:], d[:])
	}
	out := append(append([]byte{}, fr[:14]...), outer...)
	return append(out, inner...)
}

func sum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// checksum is the Internet checksum (RFC 1071) of b plus a partial sum.
func checksum(b []byte, partial uint32) uint16 {
	s := partial + sum(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// parseTCPReply returns the TCP flags and acknowledgement number of a frame
// the filter let through.
func parseTCPReply(fr []byte, v4 bool) (flags uint8, ack uint32, ok bool) {
	off := 14
	if v4 {
		if len(fr) < off+20 {
			return 0, 0, false
		}
		off += int(fr[off]&0x0f) * 4
	} else {
		off += 40
	}
	if len(fr) < off+20 {
		return 0, 0, false
	}
	return fr[off+13], binary.BigEndian.Uint32(fr[off+8:]), true
}
