//go:build linux

package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// The routed lab of issue #11: client, LB and backends each in a subnet
// of their own, joined by a router. They share the lab's one bridge (a
// netlab lab is one L2 segment), but no host has an on-link route to
// another's subnet, so every packet between them goes through the
// router, as across a real L3 network; redirects are off so that stays
// true.
var (
	ipipClient = []netip.Prefix{netip.MustParsePrefix("10.78.1.10/24"), netip.MustParsePrefix("fd78:1::10/64")}
	ipipLB     = []netip.Prefix{netip.MustParsePrefix("10.78.2.2/24"), netip.MustParsePrefix("fd78:2::2/64")}
	ipipRouter = []netip.Prefix{netip.MustParsePrefix("10.78.1.1/24"), netip.MustParsePrefix("10.78.2.1/24"), netip.MustParsePrefix("10.78.3.1/24"), netip.MustParsePrefix("fd78:1::1/64"), netip.MustParsePrefix("fd78:2::1/64"), netip.MustParsePrefix("fd78:3::1/64")}
	ipipVIP    = netip.MustParseAddr("10.78.100.1")
	ipipVIP6   = netip.MustParseAddr("fd78:100::1")
	// The same over GUE (forwarding: gue, UDP to port 6080).
	gueVIP      = netip.MustParseAddr("10.78.100.2")
	gueVIP6     = netip.MustParseAddr("fd78:100::2")
	ipipEncap4  = "10.78.9.0/24" // the LB's outer source prefix: routed nowhere
	ipipEncap6  = "fd78:9::/64"
	ipipBackend = func(i int) []netip.Prefix {
		return []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 78, 3, byte(20 + i)}), 24), netip.MustParsePrefix(fmt.Sprintf("fd78:3::%d/64", 20+i))}
	}
)

type ipipTopo struct {
	lab                               *netlab.Lab
	client, router, lb, be1, be2, be3 *netlab.Host
}

func newIPIPTopo(t *testing.T, mode string) *ipipTopo {
	t.Helper()
	lab := netlab.New(t, netlab.Options{Prefix: "l4ipip", StopGrace: 2 * time.Second})
	tp := &ipipTopo{
		lab:    lab,
		client: lab.AddHost("client", ipipClient...),
		router: lab.AddHost("router", ipipRouter...),
		lb:     lab.AddHost("lb", ipipLB...),
		be1:    lab.AddHost("be1", ipipBackend(1)...),
		be2:    lab.AddHost("be2", ipipBackend(2)...),
		be3:    lab.AddHost("be3", ipipBackend(3)...),
	}
	e2etest.RequireXDP(t, tp.lb, mode)
	gw := func(h *netlab.Host, v4, v6 string) {
		for _, g := range []string{v4, v6} {
			a := netip.MustParseAddr(g)
			r := &netlink.Route{Gw: a.AsSlice()}
			if err := h.Handle().RouteAdd(r); err != nil {
				t.Fatalf("%s: default route via %s: %v", h.Name, a, err)
			}
		}
	}
	gw(tp.client, "10.78.1.1", "fd78:1::1")
	gw(tp.lb, "10.78.2.1", "fd78:2::1")
	for _, be := range []*netlab.Host{tp.be1, tp.be2, tp.be3} {
		gw(be, "10.78.3.1", "fd78:3::1")
	}
	// The router sends VIP traffic to the LB.
	for _, r := range [][2]string{{"10.78.100.1/32", "10.78.2.2"}, {"fd78:100::1/128", "fd78:2::2"}, {"10.78.100.2/32", "10.78.2.2"}, {"fd78:100::2/128", "fd78:2::2"}} {
		dst := netip.MustParsePrefix(r[0])
		if err := tp.router.Handle().RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}, Gw: netip.MustParseAddr(r[1]).AsSlice()}); err != nil {
			t.Fatalf("router: route %s: %v", r[0], err)
		}
	}
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv6.conf.all.forwarding", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.eth0.send_redirects", "0"},
	} {
		if err := tp.router.Sysctl(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*netlab.Host{tp.client, tp.lb, tp.be1, tp.be2, tp.be3} {
		for _, kv := range [][2]string{
			{"net.ipv4.conf.all.accept_redirects", "0"},
			{"net.ipv4.conf.eth0.accept_redirects", "0"},
			{"net.ipv6.conf.all.accept_redirects", "0"},
			{"net.ipv6.conf.eth0.accept_redirects", "0"},
		} {
			if err := h.Sysctl(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, h := range []*netlab.Host{tp.client, tp.router, tp.lb, tp.be1, tp.be2, tp.be3} {
		if err := h.DisableTxOffload(); err != nil {
			t.Fatal(err)
		}
	}
	for _, be := range []*netlab.Host{tp.be1, tp.be2, tp.be3} {
		for _, vip := range []netip.Addr{ipipVIP, ipipVIP6, gueVIP, gueVIP6} {
			if err := be.MakeDSRBackend(vip); err != nil {
				t.Fatal(err)
			}
			e2etest.ServeEcho(t, be, be.Name, netip.AddrPortFrom(vip, vipPort).String())
		}
	}
	return tp
}

// ipipConfig is the LB's config; with checks, the VIPs get tcp health
// checks, whose probe follows the encapsulated path (dsr_path).
func ipipConfig(tp *ipipTopo, mode string, checks ...bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `node: {name: lb, interface: eth0}
log: {format: json, level: info}
admin: {listen: %s, token: %s}
shutdown: {drain: 1s}
l4:
  xdp_mode: %s
  hash_seed: %d
  conntrack_size: 16384
  encap_source_v4: %s
  encap_source_v6: %s
vips:
`, adminAddr, adminToken, mode, hashSeed, ipipEncap4, ipipEncap6)
	for _, v := range []struct {
		name, mode string
		addr       netip.Addr
		v6         bool
	}{{"web", "ipip", ipipVIP, false}, {"web6", "ipip", ipipVIP6, true}, {"gue", "gue", gueVIP, false}, {"gue6", "gue", gueVIP6, true}} {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    port: %d\n    backends:\n", v.name, v.addr, vipPort)
		for _, be := range []*netlab.Host{tp.be1, tp.be2, tp.be3} {
			a := be.IPv4()
			if v.v6 {
				a = be.IPv6()
			}
			// No mac: the daemon resolves the router as the next hop.
			fmt.Fprintf(&b, "      - {name: %s, address: %s, forwarding: %s}\n", be.Name, a, v.mode)
		}
	}
	if len(checks) > 0 && checks[0] {
		b.WriteString("healthchecks:\n")
		for _, v := range []string{"web", "web6", "gue", "gue6"} {
			fmt.Fprintf(&b, "  - {name: %s-check, vip: %s, type: tcp, interval: 300ms, timeout: 250ms, fall: 2, rise: 1}\n", v, v)
		}
	}
	return b.String()
}

// privateBinary is testbin's binary copied where no other test process
// can rename another build over it while this test still starts it (the
// shared one is replaced by every test process that builds, from whatever
// source it has); rebuilt here if the copy predates the decap command.
func privateBinary(t *testing.T) string {
	t.Helper()
	src := testbin.Portcullis(t)
	bin := filepath.Join(t.TempDir(), "portcullis")
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err == nil && exec.Command(bin, "decap", "--help").Run() == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/portcullis")
	cmd.Dir = testbin.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building portcullis: %v\n%s", err, out)
	}
	return bin
}

// startDecap runs `portcullis decap` on a backend and waits until its
// counters can be read.
func startDecap(t *testing.T, h *netlab.Host, bin, mode string) {
	t.Helper()
	proc := h.Start(t, bin, "decap", "--interface", "eth0", "--xdp-mode", mode, "--allow", ipipEncap4, "--allow", ipipEncap6, "--gue-port", "6080")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := decapStats(t, h, bin); err == nil {
			return
		}
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("%s: portcullis decap did not come up:\n%s", h.Name, proc.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func decapStats(t *testing.T, h *netlab.Host, bin string) (map[string]uint64, error) {
	out, err := h.Run(t.Context(), bin, "decap", "--stats", "--json", "--interface", "eth0")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var st map[string]uint64
	return st, json.Unmarshal(out, &st)
}

// capture counts, on a host's eth0, frames addressed to its MAC that
// come from one of the VIPs: replies of the backends, which with direct
// server return must never reach the LB.
type capture struct {
	n    atomic.Int64
	ctl  atomic.Int64 // frames from the control address: proof the capture works
	stop atomic.Bool
	wg   sync.WaitGroup
	fd   int
}

func startCapture(t *testing.T, h *netlab.Host, control netip.Addr, vips ...netip.Addr) *capture {
	t.Helper()
	c := &capture{fd: -1}
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifc, err := net.InterfaceByName(h.Link)
		if err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.Timeval{Usec: 100000}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", h.Name, err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 2048)
		for !c.stop.Load() {
			n, _, err := unix.Recvfrom(c.fd, buf, 0)
			if err != nil || n < 14 || string(buf[:6]) != string(h.MAC) {
				continue
			}
			var src netip.Addr
			switch binary.BigEndian.Uint16(buf[12:]) {
			case 0x0800:
				if n >= 34 {
					src = netip.AddrFrom4([4]byte(buf[26:30]))
				}
			case 0x86dd:
				if n >= 54 {
					src = netip.AddrFrom16([16]byte(buf[22:38]))
				}
			}
			if src == control {
				c.ctl.Add(1)
			}
			for _, v := range vips {
				if src == v {
					c.n.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { c.close() })
	return c
}

func (c *capture) close() int {
	if !c.stop.Swap(true) {
		c.wg.Wait()
		unix.Close(c.fd)
	}
	return int(c.n.Load())
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestIPIPEndToEnd: the real daemon on the LB encapsulates to backends in
// another subnet, IPv4 and IPv6, in IP-in-IP (VIPs web, web6) and GUE
// (gue, gue6); be1 and be2 run `portcullis decap`, be3 does not.
// Client connections through the VIP succeed on be1 and be2 with the
// replies going from the backends to the client through the router,
// never through the LB; connections hashed to be3 fail (issue #11).
func TestIPIPEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and XDP")
	}
	bin := privateBinary(t)
	for _, mode := range []string{"generic", "native"} {
		t.Run(mode, func(t *testing.T) { testIPIP(t, bin, mode) })
	}
}

func testIPIP(t *testing.T, bin, mode string) {
	tp := newIPIPTopo(t, mode)
	if mode == "native" {
		// XDP_TX on a veth is delivered only if the peer has an XDP
		// program (../shared/LAB.md).
		if _, err := tp.lb.AttachXDPPass(); err != nil {
			e2etest.SkipIfUnsupported(t, "native XDP on the LB's bridge-side veth peer", err)
			t.Fatal(err)
		}
	}
	startDecap(t, tp.be1, bin, mode)
	startDecap(t, tp.be2, bin, mode)
	capt := startCapture(t, tp.lb, tp.client.IPv4(), ipipVIP, ipipVIP6, gueVIP, gueVIP6)
	d := startDaemon(t, tp.lb, bin, ipipConfig(tp, mode))

	for _, vip := range []netip.Addr{ipipVIP, ipipVIP6, gueVIP, gueVIP6} {
		t.Run(vip.String(), func(t *testing.T) {
			addr := netip.AddrPortFrom(vip, vipPort).String()
			const n = 45
			var mu sync.Mutex
			per := map[string]int{}
			fails := 0
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					name, err := e2etest.OneConn(t.Context(), tp.client, addr, 3, 3*time.Second)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						fails++
					} else {
						per[name]++
					}
				})
			}
			wg.Wait()
			t.Logf("%s: %d connections: per backend %v, %d failed", addr, n, per, fails)
			if per["be1"] == 0 || per["be2"] == 0 {
				t.Errorf("be1 and be2 (decap running) must both serve connections: %v", per)
			}
			if per["be3"] != 0 {
				t.Errorf("be3 runs no decap program, yet served %d connections", per["be3"])
			}
			if fails == 0 {
				t.Errorf("no connection failed: Maglev should have sent some to be3, which cannot decapsulate")
			}
			if per["be1"]+per["be2"]+fails != n {
				t.Errorf("answers from unexpected hosts: %v", per)
			}
		})
	}

	t.Run("the LB encapsulated and never saw a reply", func(t *testing.T) {
		// Control: a datagram from the client to the LB itself must be
		// seen, or a capture that sees nothing would prove nothing.
		c, err := tp.client.Dial(t.Context(), "udp", netip.AddrPortFrom(tp.lb.IPv4(), 9).String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("control"))
		c.Close()
		for deadline := time.Now().Add(3 * time.Second); capt.ctl.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if capt.ctl.Load() == 0 {
			t.Fatal("the capture on the LB did not see the control datagram from the client")
		}
		if got := capt.close(); got != 0 {
			t.Errorf("the LB's eth0 received %d frames from the VIPs: replies must go from the backends to the client directly", got)
		}
		m := d.metrics(t)
		for _, r := range []string{"ipip4", "ipip6", "gue"} {
			if v, _ := m.Get("portcullis_l4_encapsulated_packets_total", "encap="+r); v == 0 {
				t.Errorf("portcullis_l4_encapsulated_packets_total{encap=%q} = 0", r)
			}
		}
	})
	t.Run("the backends decapsulated and counted it", func(t *testing.T) {
		for _, be := range []*netlab.Host{tp.be1, tp.be2} {
			st, err := decapStats(t, be, bin)
			if err != nil {
				t.Fatal(err)
			}
			if st["decap_v4"] == 0 || st["decap_v6"] == 0 || st["decap_gue"] == 0 || st["drop_not_allowed"] != 0 {
				t.Errorf("%s: decap counters %v", be.Name, st)
			}
		}
	})
	t.Run("a packet from outside the allow-list is dropped and counted", func(t *testing.T) {
		before, err := decapStats(t, tp.be1, bin)
		if err != nil {
			t.Fatal(err)
		}
		// The client sends IP-in-IP to be1 itself: its address is not in
		// the allow-list.
		err = tp.client.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, 4)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			inner := make([]byte, 40)
			inner[0], inner[8], inner[9] = 0x45, 64, 6
			binary.BigEndian.PutUint16(inner[2:], 40)
			copy(inner[12:], []byte{10, 78, 1, 10})
			v := ipipVIP.As4()
			copy(inner[16:], v[:])
			to := &unix.SockaddrInet4{Addr: tp.be1.IPv4().As4()}
			return unix.Sendto(fd, inner, 0, to)
		})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			after, err := decapStats(t, tp.be1, bin)
			if err != nil {
				t.Fatal(err)
			}
			if after["drop_not_allowed"] == before["drop_not_allowed"]+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("drop_not_allowed %d -> %d, want +1 (before %v after %v)", before["drop_not_allowed"], after["drop_not_allowed"], before, after)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	// Health checks through the encapsulated path find that be3 cannot
	// take the VIPs' traffic (it does not decapsulate) while be1 and be2
	// can; with be3 down, every connection succeeds.
	t.Run("dsr_path health checks take the backend without decap out", func(t *testing.T) {
		d.reload(t, ipipConfig(tp, mode, true))
		deadline := time.Now().Add(10 * time.Second)
		for {
			m := d.metrics(t)
			var bad []string
			for _, svc := range []string{"web", "web6", "gue", "gue6"} {
				for be, want := range map[string]float64{"be1": 1, "be2": 1, "be3": 0} {
					if up, _ := m.Get("portcullis_l4_backend_up", "service="+svc, "backend="+be); up != want {
						bad = append(bad, fmt.Sprintf("%s/%s up=%v", svc, be, up))
					}
				}
			}
			if len(bad) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 10s: %v\n%s", bad, d.Proc.Logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, vip := range []netip.Addr{ipipVIP, ipipVIP6, gueVIP, gueVIP6} {
			addr := netip.AddrPortFrom(vip, vipPort).String()
			res := e2etest.RunConns(t.Context(), tp.client, addr, 30, 4, 2, 3*time.Second)
			if len(res.Errs) > 0 || res.PerBackend["be3"] > 0 || res.PerBackend["be1"] == 0 || res.PerBackend["be2"] == 0 {
				t.Errorf("%s with be3 down: %v; %s", addr, res.PerBackend, res.Failures(30))
			}
		}
	})
}
