//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is one network namespace of a lab, joined to the bridge by a veth
// pair: Link ("eth0") inside the namespace, Peer on the bridge.
type Host struct {
	Name   string         // host name given to AddHost ("bridge" for Lab.Bridge)
	NSName string         // namespace name: /run/netns/<NSName>, usable with `ip netns exec`
	NS     netns.NsHandle // open handle on the namespace (-1 after Close)
	MAC    net.HardwareAddr
	Link   string // "eth0" ("br0" for Lab.Bridge)
	Addrs  []netip.Prefix

	// Peer is the bridge-side veth end, in the bridge namespace, and
	// PeerMAC its address.
	Peer    string
	PeerMAC net.HardwareAddr

	lab       *Lab
	index     int
	nl        *netlink.Handle
	ifIndex   int
	peerIndex int
}

func (h *Host) String() string { return h.NSName }

// Lab returns the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// Handle returns a netlink handle that works inside the host's namespace
// (links, addresses, routes, neighbours). Do not close it; it is closed by
// Lab.Close.
func (h *Host) Handle() *netlink.Handle { return h.nl }

// IPv4 returns the first IPv4 address of Addrs, or the zero Addr.
func (h *Host) IPv4() netip.Addr { return h.firstAddr(true) }

// IPv6 returns the first IPv6 address of Addrs, or the zero Addr.
func (h *Host) IPv6() netip.Addr { return h.firstAddr(false) }

func (h *Host) firstAddr(v4 bool) netip.Addr {
	for _, p := range h.Addrs {
		if p.Addr().Is4() == v4 {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// Do runs fn on a fresh goroutine whose OS thread is locked and switched
// into the host's namespace, waits for it, and returns its error.
//
// The one-thread-per-Do rule: only code running on that goroutine, while fn
// runs, is inside the namespace. Goroutines that fn starts run on other
// threads, in the caller's namespace. What fn creates keeps its namespace
// for life: a socket made inside fn (net.Listen, net.Dial, a raw or
// netlink socket, a bpf_link by ifindex) stays in the host's namespace after
// Do returns, so a listener made in Do can be served from any goroutine
// later. (A process forked inside fn also starts in the namespace, but use
// Run/Start for processes: see the Pdeathsig note in process.go.)
//
// fn must not call t.FailNow/t.Fatal (they belong to the test goroutine)
// and should not resolve host names (the resolver may use other threads):
// use IP literals. A panic in fn is re-raised in the caller. After fn the
// thread is switched back and unlocked; if switching back fails, the
// thread stays locked and is destroyed with the goroutine, so no other
// goroutine ever runs in the wrong namespace.
func (h *Host) Do(fn func() error) error {
	if h.NS < 0 {
		return fmt.Errorf("netlab: host %s is closed", h.Name)
	}
	type result struct {
		err      error
		panicked bool
		pval     any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			ch <- result{err: fmt.Errorf("netlab: get current netns: %w", err)}
			return // thread stays locked and dies with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(h.NS); err != nil {
			ch <- result{err: fmt.Errorf("netlab: enter netns %s: %w", h.NSName, err)}
			return
		}
		var r result
		normal := false
		defer func() {
			if !normal {
				if p := recover(); p != nil {
					r = result{panicked: true, pval: p}
				} else {
					r = result{err: errors.New("netlab: Do: fn called runtime.Goexit (t.FailNow?) outside the test goroutine")}
				}
			}
			if err := netns.Set(orig); err != nil {
				if r.err == nil && !r.panicked {
					r.err = fmt.Errorf("netlab: restore netns: %w", err)
				}
				ch <- r
				return // leave locked: the thread is destroyed
			}
			runtime.UnlockOSThread()
			ch <- r
		}()
		r.err = fn()
		normal = true
	}()
	r := <-ch
	if r.panicked {
		panic(r.pval)
	}
	return r.err
}

// Listen is net.Listen inside the namespace (see Do). The listener is
// closed by Lab.Close if still open.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := h.lab.track("listener", ln); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// ListenPacket is net.ListenPacket inside the namespace (see Do). The conn
// is closed by Lab.Close if still open.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := h.lab.track("listener", pc); err != nil {
		pc.Close()
		return nil, err
	}
	return pc, nil
}

// Dial dials from inside the namespace (see Do). Use an IP literal: name
// resolution may run on other threads, outside the namespace. The
// dial is serial (no Happy Eyeballs goroutines), so every socket is made
// on the namespace's thread.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		d := net.Dialer{FallbackDelay: -1}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are dialled inside the
// namespace (e.g. to GET a VIP from the client host). It ignores proxy
// environment variables. Its idle connections are closed by Lab.Close.
func (h *Host) HTTPClient() *http.Client {
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           h.Dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	h.lab.track("client", t)
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// AddAddr adds an address to dev (e.g. a VIP /32 on "lo"). IPv6 addresses
// are added with IFA_F_NODAD, so they are usable at once. Addresses added
// to the host's Link are appended to Addrs.
func (h *Host) AddAddr(p netip.Prefix, dev string) error {
	lk, err := h.nl.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("netlab: %s: %s: %w", h.Name, dev, err)
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.nl.AddrAdd(lk, a); err != nil {
		return fmt.Errorf("netlab: %s: add %s to %s: %w", h.Name, p, dev, err)
	}
	if dev == h.Link {
		h.Addrs = append(h.Addrs, p)
	}
	return nil
}

// DelAddr removes an address from dev.
func (h *Host) DelAddr(p netip.Prefix, dev string) error {
	lk, err := h.nl.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("netlab: %s: %s: %w", h.Name, dev, err)
	}
	if err := h.nl.AddrDel(lk, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil {
		return fmt.Errorf("netlab: %s: delete %s from %s: %w", h.Name, p, dev, err)
	}
	if dev == h.Link {
		for i, a := range h.Addrs {
			if a == p {
				h.Addrs = append(h.Addrs[:i:i], h.Addrs[i+1:]...)
				break
			}
		}
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().Unmap().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("netlab: bad sysctl key %q", key)
	}
	// "net.ipv4.conf.eth0.rp_filter" → /proc/sys/net/ipv4/conf/eth0/rp_filter.
	// (Interface names with dots would need "/" in the key; ours have none.)
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), nil
}

// Sysctl writes a sysctl inside the namespace, e.g.
// Sysctl("net.ipv4.conf.all.arp_ignore", "1"). The net.* tree under
// /proc/sys belongs to the namespace of the thread that opens it, so the
// write is done in Do. A key that does not exist returns an error
// satisfying errors.Is(err, os.ErrNotExist).
func (h *Host) Sysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return h.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("netlab: %s: sysctl %s=%s: %w", h.Name, key, value, err)
		}
		return nil
	})
}

// SysctlGet reads a sysctl inside the namespace, without the trailing newline.
func (h *Host) SysctlGet(key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var v []byte
	err = h.Do(func() (err error) {
		v, err = os.ReadFile(p)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("netlab: %s: sysctl %s: %w", h.Name, key, err)
	}
	return strings.TrimRight(string(v), "\n"), nil
}

// SetLinkDown takes the host's Link (eth0) down. For crash tests: a node
// whose process is killed but whose link stays up still answers ARP for
// addresses it holds (e.g. a floating VIP), so "crash" = kill + link down.
// The bridge-side peer loses carrier.
func (h *Host) SetLinkDown() error {
	lk, err := h.nl.LinkByName(h.Link)
	if err != nil {
		return err
	}
	return h.nl.LinkSetDown(lk)
}

// SetLinkUp brings the host's Link back up.
func (h *Host) SetLinkUp() error {
	lk, err := h.nl.LinkByName(h.Link)
	if err != nil {
		return err
	}
	return h.nl.LinkSetUp(lk)
}

// Neighbor returns the host's neighbour entry for ip on its Link: the MAC
// and the NUD state (netlink.NUD_REACHABLE, ...). The MAC is nil if there
// is no entry.
func (h *Host) Neighbor(ip netip.Addr) (net.HardwareAddr, int, error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := h.nl.NeighList(h.ifIndex, fam)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, 0, err
	}
	want := net.IP(ip.AsSlice())
	for _, n := range ns {
		if n.IP.Equal(want) {
			return n.HardwareAddr, n.State, nil
		}
	}
	return nil, 0, nil
}

// MakeDSRBackend prepares the host to be a layer-2 direct-server-return
// backend for vip:
//
//   - the VIP as /32 (or /128) on lo, so the kernel accepts packets whose
//     destination is the VIP (the load balancer rewrites only the MAC) and
//     answers from the VIP straight to the client;
//   - net.ipv4.conf.{all,eth0}.arp_ignore=1: answer ARP only for addresses
//     configured on the interface the request came in on, so the backend
//     never answers "who has VIP" (that would steal the VIP from the load
//     balancer);
//   - net.ipv4.conf.{all,eth0}.arp_announce=2: never use the VIP as the
//     source of the backend's own ARP requests (which would poison the
//     client's neighbour entry for the VIP);
//   - rp_filter is already 0 in every lab host (see New).
//
// IPv6 needs no knob: the kernel answers neighbour solicitations only for
// addresses on the receiving interface, and lo is not eth0.
func (h *Host) MakeDSRBackend(vip netip.Addr) error {
	vip = vip.Unmap()
	if err := h.AddAddr(netip.PrefixFrom(vip, vip.BitLen()), "lo"); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf." + h.Link + ".arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf." + h.Link + ".arp_announce", "2"},
	} {
		if err := h.Sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}
