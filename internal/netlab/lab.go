//go:build linux

package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultPrefix is the name prefix of labs created with an empty Options.Prefix.
const DefaultPrefix = "pc"

// BridgeName is the name of the bridge inside the lab's bridge namespace.
const BridgeName = "br0"

// HostLink is the name of every host's veth end inside its namespace.
const HostLink = "eth0"

// lockDir holds one lock file per live lab (see Cleanup). /run is a tmpfs,
// like /run/netns, so both disappear together at reboot.
var lockDir = "/run/netlab"

// Options configures a Lab. The zero value is ready to use.
type Options struct {
	// Prefix starts the names of everything the lab creates (namespaces,
	// lock file). Default DefaultPrefix ("pc"). It must be short (at most 8
	// characters), made of [a-z0-9], and must not be a prefix of another
	// user's names: Cleanup(Prefix) removes every dead lab it finds with it.
	Prefix string
	// MTU of the veths and the bridge. Default 1500.
	MTU int
	// StopGrace is how long Close waits after SIGTERM before SIGKILL for
	// processes started with Start/StartProcess. Default 3s.
	StopGrace time.Duration
}

// Lab is one topology: a bridge namespace holding the bridge br0, and one
// namespace per host, each joined to the bridge by a veth pair.
//
// Everything is named after Lab.Name, which is Prefix followed by 6 random
// hex digits (e.g. "pc3fa9c1"): namespaces are "<Name>-<host>" and
// "<Name>-bridge". No interface is ever created in the caller's namespace,
// so the 15-character interface name limit and name clashes between
// parallel labs never arise; interfaces inside the namespaces have short
// fixed names (eth0, br0, p<index>-<host>).
type Lab struct {
	// Name is the unique name of this lab; see the type's doc.
	Name string
	// Prefix is the Options.Prefix in force.
	Prefix string
	// Bridge is the namespace that holds the bridge. Its Link is "br0".
	// It has no addresses; use Bridge.Do / Bridge.Handle() to inspect or
	// attach things on the bridge side (e.g. tcpdump with Bridge.Start).
	Bridge *Host

	opts   Options
	tb     testing.TB
	lock   *os.File
	bridge netlink.Link

	mu        sync.Mutex
	closed    bool
	hosts     []*Host
	procs     []*Process
	closers   []io.Closer // XDP attachments
	listeners []io.Closer // listeners and packet conns made by Host helpers
	clients   []*http.Transport
	closeErr  error
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]*$`)

// New creates a lab for a test and registers lab.Close with t.Cleanup. It
// skips the test (t.Skip, with the reason) when the process is not root or
// the kernel lacks network namespaces, veth or bridge support; other
// failures fail the test.
//
// Before the first lab of each prefix in a process, New removes the
// leftovers of dead labs of that prefix (see Cleanup).
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces")
	}
	l, err := Create(opts)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			t.Skipf("netlab: %v", err)
		}
		t.Fatalf("netlab: %v", err)
	}
	l.tb = t
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("netlab: close %s: %v", l.Name, err)
		}
	})
	return l
}

// ErrUnsupported is wrapped by errors that mean "this kernel or this process
// cannot do it" (no permission, no netns/veth/bridge support), for which New
// and AddHost skip the test rather than fail it.
var ErrUnsupported = errors.New("unsupported")

func unsupported(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("%w: %s: %v", ErrUnsupported, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

var cleanedPrefixes sync.Map

// Create is New without a testing.TB, for tools such as `make lab`: the
// caller must call Close. Errors wrapping a kernel or permission limitation
// satisfy errors.Is(err, ErrUnsupported).
func Create(opts Options) (*Lab, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if len(opts.Prefix) > 8 || !nameRE.MatchString(opts.Prefix) || strings.Contains(opts.Prefix, "_") {
		return nil, fmt.Errorf("netlab: bad prefix %q: want 1-8 characters of [a-z0-9]", opts.Prefix)
	}
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 3 * time.Second
	}
	if _, loaded := cleanedPrefixes.LoadOrStore(opts.Prefix, true); !loaded {
		Cleanup(opts.Prefix)
	}

	l := &Lab{Prefix: opts.Prefix, opts: opts}
	if err := l.takeName(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()

	br, err := l.newHost("bridge", -1)
	if err != nil {
		return nil, err
	}
	l.Bridge = br
	br.Link = BridgeName
	// The bridge namespace needs no IPv6 of its own: without it the ports
	// and the bridge send no router solicitations or MLD reports, so
	// captures show only the hosts' traffic. Forwarding of IPv6 frames is
	// unaffected (it is layer 2).
	for _, kv := range [][2]string{
		{"net.ipv6.conf.default.disable_ipv6", "1"},
		{"net.ipv6.conf.all.disable_ipv6", "1"},
	} {
		if err := br.Sysctl(kv[0], kv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	// bridge-nf-call-* exist only when br_netfilter is loaded; when they
	// do, bridged frames go through iptables/nftables hooks of the bridge
	// namespace, which must not see (or conntrack) the lab's traffic.
	for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables"} {
		if err := br.Sysctl(k, "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	snoop := false
	bridge := &netlink.Bridge{
		LinkAttrs: netlink.LinkAttrs{
			Name:         BridgeName,
			MTU:          opts.MTU,
			HardwareAddr: net.HardwareAddr{0x02, 0x50, 0x43, 0xff, 0x00, 0x00},
		},
		// Without a multicast querier, MLD snooping may stop forwarding
		// IPv6 solicited-node multicast (neighbour solicitations).
		MulticastSnooping: &snoop,
	}
	if err := br.nl.LinkAdd(bridge); err != nil {
		return nil, unsupported("create bridge", err)
	}
	if err := br.nl.LinkSetUp(bridge); err != nil {
		return nil, fmt.Errorf("bridge up: %w", err)
	}
	if l.bridge, err = br.nl.LinkByName(BridgeName); err != nil {
		return nil, err
	}
	br.MAC = bridge.HardwareAddr
	ok = true
	return l, nil
}

// takeName chooses a random unused name and takes its lock file. The lock
// file is created locked under a temporary name and renamed into place, so
// Cleanup never sees an unlocked lock file of a live lab.
func (l *Lab) takeName() error {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	for range 10 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		name := l.Prefix + hex.EncodeToString(b[:])
		if _, err := os.Stat(filepath.Join(lockDir, name+".lock")); err == nil {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(netnsDir, name+"-*")); len(m) > 0 {
			continue
		}
		tmp, err := os.CreateTemp(lockDir, ".tmp-"+name+"-*")
		if err != nil {
			return fmt.Errorf("netlab: %w", err)
		}
		if err := unix.Flock(int(tmp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("netlab: lock: %w", err)
		}
		fmt.Fprintf(tmp, "%d\n", os.Getpid())
		final := filepath.Join(lockDir, name+".lock")
		// link+remove instead of rename: fails if another process took the name.
		if err := os.Link(tmp.Name(), final); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return fmt.Errorf("netlab: %w", err)
		}
		os.Remove(tmp.Name())
		l.Name = name
		l.lock = tmp
		return nil
	}
	return errors.New("netlab: no free lab name")
}

// AddHost adds a host: a namespace "<lab>-<name>", a veth pair with "eth0"
// inside it and "p<index>-<name>" (cut to 15 characters) on the bridge,
// fixed MACs, the addresses on eth0, eth0 and lo up. It fails the test on
// error (skips if veth is unsupported). Call it from the test goroutine;
// NewHost is the error-returning form.
func (l *Lab) AddHost(name string, addrs ...netip.Prefix) *Host {
	h, err := l.NewHost(name, addrs...)
	if err != nil {
		if l.tb == nil {
			panic(err)
		}
		l.tb.Helper()
		if errors.Is(err, ErrUnsupported) {
			l.tb.Skipf("netlab: %v", err)
		}
		l.tb.Fatalf("netlab: %v", err)
	}
	return h
}

// NewHost is AddHost returning an error instead of failing the test.
//
// MACs are deterministic, from the host's index i (0 for the first host):
// eth0 is 02:50:43:00:ii:ii and its bridge-side peer 02:50:43:01:ii:ii (the
// bridge is 02:50:43:ff:00:00). Labs never share a layer-2 segment, so the
// same MACs in parallel labs never meet, and captures look the same in
// every run.
func (l *Lab) NewHost(name string, addrs ...netip.Prefix) (*Host, error) {
	if !nameRE.MatchString(name) || len(name) > 40 || name == "bridge" {
		return nil, fmt.Errorf("bad host name %q: want [a-z0-9_]+, not \"bridge\"", name)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab is closed")
	}
	for _, h := range l.hosts {
		if h.Name == name {
			l.mu.Unlock()
			return nil, fmt.Errorf("host %q exists", name)
		}
	}
	idx := len(l.hosts)
	// Reserve the slot so concurrent NewHost calls get distinct indexes.
	l.hosts = append(l.hosts, &Host{Name: name, lab: l, index: idx, NS: -1})
	l.mu.Unlock()

	h, err := l.newHost(name, idx)
	if err != nil {
		l.mu.Lock()
		l.hosts[idx] = nil
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Lock()
	l.hosts[idx] = h
	l.mu.Unlock()
	if err := l.wire(h, addrs); err != nil {
		return nil, err
	}
	return h, nil
}

// newHost creates the namespace and its netlink handle, and sets the base
// sysctls. idx < 0 is the bridge namespace.
func (l *Lab) newHost(name string, idx int) (*Host, error) {
	h := &Host{Name: name, lab: l, index: idx, Link: HostLink, NSName: l.Name + "-" + name}
	ns, err := newNamedNS(h.NSName)
	if err != nil {
		return nil, unsupported("create network namespace "+h.NSName, err)
	}
	h.NS = ns
	ok := false
	defer func() {
		if !ok && idx >= 0 {
			h.destroy()
		}
	}()
	if idx < 0 {
		l.mu.Lock()
		l.Bridge = h // so that Close finds it even if Create fails later
		l.mu.Unlock()
	}
	if h.nl, err = netlink.NewHandleAt(ns); err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", h.NSName, err)
	}
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	if err := h.nl.LinkSetUp(lo); err != nil {
		return nil, err
	}
	if idx < 0 {
		ok = true
		return h, nil
	}
	// IPv4 settings of a new namespace are copied from the initial
	// namespace (net.core.devconf_inherit_init_net=0), so set the ones that
	// matter explicitly; IPv6 ones start at kernel defaults.
	for _, kv := range [][2]string{
		// No duplicate address detection: IPv6 addresses (and the
		// link-local one) are usable as soon as they are added, instead
		// of "tentative" for about a second.
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
		// Reverse-path filtering off: DSR replies, VIPs on lo and moving
		// addresses must not be dropped because of a host's routes.
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
	} {
		if err := h.Sysctl(kv[0], kv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	ok = true
	return h, nil
}

func (l *Lab) wire(h *Host, addrs []netip.Prefix) error {
	br := l.Bridge
	i := h.index
	h.MAC = net.HardwareAddr{0x02, 0x50, 0x43, 0x00, byte(i >> 8), byte(i)}
	h.PeerMAC = net.HardwareAddr{0x02, 0x50, 0x43, 0x01, byte(i >> 8), byte(i)}
	h.Peer = fmt.Sprintf("p%d-%s", i, h.Name)
	if len(h.Peer) > 15 {
		h.Peer = h.Peer[:15]
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name:         h.Peer,
			MTU:          l.opts.MTU,
			HardwareAddr: h.PeerMAC,
		},
		PeerName:         HostLink,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(int(h.NS)),
		PeerMTU:          uint32(l.opts.MTU),
	}
	if err := br.nl.LinkAdd(veth); err != nil {
		return unsupported("create veth "+h.Peer, err)
	}
	peer, err := br.nl.LinkByName(h.Peer)
	if err != nil {
		return err
	}
	if err := br.nl.LinkSetMaster(peer, l.bridge); err != nil {
		return fmt.Errorf("%s: master br0: %w", h.Peer, err)
	}
	if err := br.nl.LinkSetUp(peer); err != nil {
		return err
	}
	h.peerIndex = peer.Attrs().Index

	if err := h.Sysctl("net.ipv6.conf."+HostLink+".accept_dad", "0"); err != nil {
		return err
	}
	if err := h.Sysctl("net.ipv4.conf."+HostLink+".rp_filter", "0"); err != nil {
		return err
	}
	for _, p := range addrs {
		if err := h.AddAddr(p, HostLink); err != nil {
			return err
		}
	}
	eth, err := h.nl.LinkByName(HostLink)
	if err != nil {
		return err
	}
	if err := h.nl.LinkSetUp(eth); err != nil {
		return err
	}
	h.ifIndex = eth.Attrs().Index
	return h.waitReady(eth)
}

// waitReady waits until eth0 is running (carrier: the bridge side is up)
// and its IPv6 link-local address has left the "tentative" state. Even
// with DAD off, the kernel adds the link-local address only once it sees
// the carrier, and completes it from a work queue, so right after link up
// it can be missing or tentative for a few milliseconds.
func (h *Host) waitReady(eth netlink.Link) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		lk, err := h.nl.LinkByIndex(eth.Attrs().Index)
		if err != nil {
			return err
		}
		ready := lk.Attrs().RawFlags&unix.IFF_RUNNING != 0
		if ready {
			addrs, err := h.nl.AddrList(lk, netlink.FAMILY_V6)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return err
			}
			ll := false
			for _, a := range addrs {
				if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
					ll = true
				}
			}
			ready = ll || len(addrs) == 0 && h.ipv6Disabled()
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready after 3s (flags %v)", h.Name, HostLink, lk.Attrs().Flags)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *Host) ipv6Disabled() bool {
	v, err := h.SysctlGet("net.ipv6.conf." + HostLink + ".disable_ipv6")
	return err != nil || v == "1"
}

// Host returns the host with that name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h != nil && h.Name == name {
			return h
		}
	}
	return nil
}

// Hosts returns the hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	var hs []*Host
	for _, h := range l.hosts {
		if h != nil && h.NS > 0 {
			hs = append(hs, h)
		}
	}
	return hs
}

func (l *Lab) track(kind string, c any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab is closed")
	}
	switch kind {
	case "proc":
		l.procs = append(l.procs, c.(*Process))
	case "xdp":
		l.closers = append(l.closers, c.(io.Closer))
	case "listener":
		l.listeners = append(l.listeners, c.(io.Closer))
	case "client":
		l.clients = append(l.clients, c.(*http.Transport))
	}
	return nil
}

// Close stops the lab's processes (SIGTERM to each process group, SIGKILL
// after Options.StopGrace), closes the listeners, packet conns and HTTP
// clients made by Host helpers and the XDP attachments, deletes the veths
// and the bridge, removes the namespaces and the lab's lock file. It is
// idempotent and safe to call from several goroutines; later calls return
// the first call's error.
//
// Connections made with Host.Dial are not tracked: a connection still open
// keeps its (now empty) namespace alive until it is closed.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.closeErr
	}
	l.closed = true
	procs, closers, listeners, clients, hosts := l.procs, l.closers, l.listeners, l.clients, l.hosts
	l.mu.Unlock()

	var errs []error
	stopAll(procs, l.opts.StopGrace)
	for _, t := range clients {
		t.CloseIdleConnections()
	}
	for _, c := range listeners {
		c.Close()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	br := l.Bridge
	// Deleting the bridge-side end deletes the pair. This is done
	// explicitly, not left to namespace teardown, so that it is finished
	// when Close returns even if something still holds a namespace.
	if br != nil && br.nl != nil {
		for _, h := range hosts {
			if h == nil || h.peerIndex == 0 {
				continue
			}
			if lk, err := br.nl.LinkByIndex(h.peerIndex); err == nil {
				if err := br.nl.LinkDel(lk); err != nil {
					errs = append(errs, fmt.Errorf("delete %s: %w", h.Peer, err))
				}
			}
		}
		if lk, err := br.nl.LinkByName(BridgeName); err == nil {
			if err := br.nl.LinkDel(lk); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge: %w", err))
			}
		}
	}
	all := append([]*Host{}, hosts...)
	if br != nil {
		all = append(all, br)
	}
	for _, h := range all {
		if h == nil {
			continue
		}
		if err := h.destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.lock != nil {
		os.Remove(filepath.Join(lockDir, l.Name+".lock"))
		l.lock.Close()
	}
	err := errors.Join(errs...)
	l.mu.Lock()
	l.closeErr = err
	l.mu.Unlock()
	return err
}

const netnsDir = "/run/netns"

// newNamedNS creates a named namespace (a bind mount at /run/netns/<name>,
// as `ip netns add` does) without changing the namespace of any thread the
// Go runtime will reuse: the work runs on a locked thread that is thrown
// away when the goroutine exits.
func newNamedNS(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread ends with the goroutine, so its
		// changed namespace is never seen by other goroutines.
		ns, err := netns.NewNamed(name)
		ch <- result{ns, err}
	}()
	r := <-ch
	return r.ns, r.err
}

// destroy closes the host's handles and removes its namespace's name.
func (h *Host) destroy() error {
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	if h.NS > 0 {
		h.NS.Close()
	}
	if h.NSName != "" {
		if err := deleteNamedNS(h.NSName); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete namespace %s: %w", h.NSName, err)
		}
	}
	return nil
}

func deleteNamedNS(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return os.Remove(p)
}
