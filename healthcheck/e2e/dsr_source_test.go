//go:build linux

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// The DSR probe sends its SYN from "this node's own address on the
// interface" (healthcheck/doc.go), so that the backend answers to the node
// and not to the VIP, which the backend holds on lo. These tests put the
// VIP before the node's own address in the interface's address list, as
// the kernel does for an IPv6 VIP added after the node's address and for
// an IPv4 VIP when the node's own address is (re)added after it.

// TestDSRCheckWithTheVIPFirstOnTheInterface: IPv4, the LB's own address
// re-added after the VIP (an interface reconfigured under a running
// daemon). The backends must stay up.
func TestDSRCheckWithTheVIPFirstOnTheInterface(t *testing.T) {
	l := newLab(t)
	if err := l.lb.DelAddr(lbAddr, l.lb.Link); err != nil {
		t.Fatal(err)
	}
	if err := l.lb.AddAddr(lbAddr, l.lb.Link); err != nil {
		t.Fatal(err)
	}
	out, _ := l.lb.Run(t.Context(), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	t.Logf("the LB's IPv4 addresses, in the kernel's order:\n%s", out)
	// Long enough for fall failed checks of every backend; they must not come.
	time.Sleep(downBound(checkFall))
	if ok, why := l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "up"}); !ok {
		t.Errorf("with the VIP listed before the LB's own address on eth0, the DSR probe fails: %s", why)
	}
}

// TestDSRCheckOfAnIPv6VIP: an IPv6 VIP with a (default, DSR-path) check.
// The daemon must keep running and the backend must be up.
func TestDSRCheckOfAnIPv6VIP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP and the DSR probe's packet socket")
	}
	bin := testbin.Portcullis(t)
	vip6 := netip.MustParseAddr("fd77::100")
	lab := netlab.New(t, netlab.Options{Prefix: labPrefix, StopGrace: 2 * time.Second})
	client := lab.AddHost("client", netip.MustParsePrefix("fd77::10/64"))
	lb := lab.AddHost("lb", netip.MustParsePrefix("fd77::2/64"))
	be := lab.AddHost("be1", netip.MustParsePrefix("fd77::21/64"))
	e2etest.RequireXDP(t, lb, "generic")
	if err := lb.AddAddr(netip.PrefixFrom(vip6, 128), lb.Link); err != nil {
		t.Fatal(err)
	}
	if err := be.MakeDSRBackend(vip6); err != nil {
		t.Fatal(err)
	}
	e2etest.ServeEcho(t, be, "be1", fmt.Sprintf("[::]:%d", vipPort))
	d := startDaemon(t, lb, bin, fmt.Sprintf(`node: {name: lb, interface: eth0}
log: {format: json}
admin: {listen: %q, token: %s}
shutdown: {drain: 1s}
l4: {xdp_mode: generic}
vips:
  - name: web6
    address: %s
    port: %d
    backends:
      - {name: be1, address: fd77::21, mac: %q, forwarding: dsr-l2}
healthchecks:
  - {name: web6-check, vip: web6, type: tcp, interval: %s, timeout: %s, fall: %d, rise: %d}
`, adminAddr, adminToken, vip6, vipPort, be.MAC.String(), checkInterval, checkTimeout, checkFall, checkRise))
	deadline := time.Now().Add(downBound(checkFall))
	for time.Now().Before(deadline) {
		if d.Proc.Exited() {
			t.Fatalf("the daemon died while checking an IPv6 DSR backend: %v", d.Proc.Wait())
		}
		time.Sleep(50 * time.Millisecond)
	}
	dash, err := d.dashboard()
	if err != nil {
		t.Fatal(err)
	}
	if b := vipBackend(dash, "web6", "be1"); b == nil || b.Health.State != "up" {
		t.Fatalf("be1 of the IPv6 VIP: %+v, want up", b)
	}
	if name, err := e2etest.OneConn(t.Context(), client, netip.AddrPortFrom(vip6, vipPort).String(), 2, dialTimeout); err != nil || name != "be1" {
		t.Errorf("a connection to the IPv6 VIP: answered by %q, %v", name, err)
	}
}
