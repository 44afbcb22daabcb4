package l4

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNewNetns runs f on a thread moved into a fresh network namespace,
// then moves back; the namespace and everything in it die with its last
// reference.
func inNewNetns(t *testing.T, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Never hand a thread in the wrong namespace back to Go.
			panic(err)
		}
		ns.Close()
	}()
	f()
}

func TestAttachToVethNativeThenGeneric(t *testing.T) {
	requireBPF(t)
	inNewNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pc-lb0", HardwareAddr: lbMAC}, PeerName: "pc-peer0"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Fatalf("add veth: %v", err)
		}
		for _, n := range []string{"pc-lb0", "pc-peer0"} {
			l, err := netlink.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := netlink.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}

		for _, tc := range []struct{ mode, want string }{
			{AttachAuto, AttachNative}, // veth has native XDP
			{AttachGeneric, AttachGeneric},
		} {
			cfg := fixtureConfig()
			cfg.Interface, cfg.Mode = "pc-lb0", tc.mode
			d, err := New(cfg, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			if d.localMAC != [6]byte(lbMAC) {
				t.Errorf("DSR source MAC %x, want the interface's %x", d.localMAC, lbMAC)
			}
			if err := d.Apply(fixtureServices()); err != nil {
				t.Fatal(err)
			}
			// The program takes the interface's MAC as its own: a VIP frame
			// to another MAC passes, one to the interface's is balanced.
			for _, c := range []struct {
				dst  net.HardwareAddr
				want uint32
			}{{otherMACTail, xdpPass}, {lbMAC, xdpTX}} {
				ret, err := d.objs.XdpLb.Run(&ebpf.RunOptions{Data: toMAC(tcp4(vipWeb4, 3100, 80, syn), c.dst).build(), Repeat: 1})
				if err != nil || ret != c.want {
					t.Errorf("mode %s: VIP SYN to %s: %s (%v), want %s", tc.mode, c.dst, actionNames[ret], err, actionNames[c.want])
				}
			}
			if err := d.Attach(); err != nil {
				t.Fatalf("%s: %v", tc.mode, err)
			}
			if got := d.AttachedMode(); got != tc.want {
				t.Errorf("mode %s: attached %q, want %q", tc.mode, got, tc.want)
			}
			l, _ := netlink.LinkByName("pc-lb0")
			if l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
				t.Errorf("mode %s: kernel reports no XDP program on the link", tc.mode)
			}
			st, err := d.Stats()
			if err != nil || st.AttachedMode != tc.want {
				t.Errorf("Stats: %v, mode %q", err, st.AttachedMode)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			l, _ = netlink.LinkByName("pc-lb0")
			if l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached {
				t.Errorf("mode %s: program still attached after Close", tc.mode)
			}
		}

		// The peer gets the empty program so XDP_TX frames are delivered.
		p, err := attachPass("pc-peer0", AttachNative, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if p.Mode() != AttachNative {
			t.Errorf("pass program attached %q", p.Mode())
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// passProgram is the empty XDP program, attached through the dataplane's
// own attach path (netlab.Host.AttachXDPPass does the same for namespace
// labs without it): veth drops XDP_TX frames unless its peer runs XDP too.
type passProgram struct {
	objs bpf.PassObjects
	link link.Link
	mode string
}

// attachPass attaches the empty XDP program to ifname with mode (as in
// Config.Mode).
func attachPass(ifname, mode string, log *slog.Logger) (*passProgram, error) {
	if log == nil {
		log = slog.Default()
	}
	if mode == "" {
		mode = AttachAuto
	}
	p := &passProgram{}
	if err := bpf.LoadPassObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("l4: load pass program: %w", err)
	}
	l, m, err := attach(p.objs.XdpPass, ifname, mode, log)
	if err != nil {
		p.objs.Close()
		return nil, err
	}
	p.link, p.mode = l, m
	return p, nil
}

// Mode is the attach mode in force.
func (p *passProgram) Mode() string { return p.mode }

// Close detaches and unloads the program.
func (p *passProgram) Close() error {
	return errors.Join(p.link.Close(), p.objs.Close())
}
