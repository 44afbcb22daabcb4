//go:build linux

package e2etest

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// RequireXDP attaches an XDP_PASS program to h's eth0 in mode ("native"
// or "generic") and takes it off again: the daemon cannot run without it,
// and that is a property of the machine, not a bug to report, so the test
// is skipped where the kernel does not support it.
func RequireXDP(t testing.TB, h *netlab.Host, mode string) {
	t.Helper()
	prog, err := ebpf.NewProgram(netlab.XDPPassSpec())
	if err != nil {
		SkipIfUnsupported(t, "loading an XDP program", err)
		t.Fatalf("load XDP probe: %v", err)
	}
	defer prog.Close()
	flags := link.XDPGenericMode
	if mode == "native" {
		flags = link.XDPDriverMode
	}
	err = h.Do(func() error {
		ifc, err := net.InterfaceByName(h.Link)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: flags})
		if err != nil {
			return err
		}
		return l.Close()
	})
	if err != nil {
		SkipIfUnsupported(t, mode+" XDP on veth", err)
		t.Fatalf("probe %s XDP on %s: %v", mode, h.Name, err)
	}
}

// SkipIfUnsupported skips the test if err says the kernel or the
// process's privileges do not allow what.
func SkipIfUnsupported(t testing.TB, what string, err error) {
	t.Helper()
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOSYS) {
		t.Skipf("%s is not available here: %v", what, err)
	}
}
