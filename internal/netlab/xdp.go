//go:build linux

package netlab

import (
	"fmt"
	"io"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// XDPPassSpec returns the spec of a program that returns XDP_PASS for
// every packet, assembled in Go (no clang).
func XDPPassSpec() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Name:    "netlab_pass",
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 2), // XDP_PASS
			asm.Return(),
		},
	}
}

// XDPAttachment is an XDP program attached by AttachXDPPass.
type XDPAttachment struct {
	Program *ebpf.Program
	Link    link.Link
	Dev     string // interface name, in the bridge namespace
	once    sync.Once
	err     error
}

// Close detaches the program and frees it. Idempotent.
func (a *XDPAttachment) Close() error {
	a.once.Do(func() {
		a.err = a.Link.Close()
		a.Program.Close()
	})
	return a.err
}

// AttachXDPPass attaches an XDP_PASS program in native (driver) mode to
// the bridge-side peer of the host's veth. On veth, frames that a native
// XDP program sends with XDP_TX (e.g. the load balancer's DSR path on
// eth0) are only delivered if the peer also has an XDP program; without it
// they are dropped and counted as xdp_tx_errors. The attachment is a
// bpf_link: it goes away when the process exits, on Close, or at
// Lab.Close. The returned io.Closer is an *XDPAttachment.
func (h *Host) AttachXDPPass() (io.Closer, error) {
	if h.peerIndex == 0 {
		return nil, fmt.Errorf("netlab: %s has no bridge-side peer", h.Name)
	}
	return h.lab.Bridge.attachXDP(XDPPassSpec(), h.peerIndex, h.Peer, link.XDPDriverMode)
}

// attachXDP loads spec and attaches it to ifindex in the host's namespace.
// The bpf_link is created inside Do because the kernel resolves the
// ifindex in the namespace of the calling thread.
func (h *Host) attachXDP(spec *ebpf.ProgramSpec, ifindex int, dev string, flags link.XDPAttachFlags) (*XDPAttachment, error) {
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return nil, fmt.Errorf("netlab: load XDP program: %w", err)
	}
	var lk link.Link
	err = h.Do(func() (err error) {
		lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
		return err
	})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("netlab: attach XDP to %s in %s: %w", dev, h.NSName, err)
	}
	a := &XDPAttachment{Program: prog, Link: lk, Dev: dev}
	if err := h.lab.track("xdp", a); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}
