//go:build linux

package healthcheck

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// TestTheDSRProbeNeedsTheVIPOnTheBackendsLo builds a segment with a load
// balancer and two backends that both listen on port 80; only one holds
// the VIP on lo. A plain TCP check of their own addresses passes for both;
// the DSR probe passes only for the one that traffic to the VIP would reach.
func TestTheDSRProbeNeedsTheVIPOnTheBackendsLo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, packet sockets)")
	}
	t.Parallel()
	vip := netip.MustParseAddr("10.77.0.100")
	lab := netlab.New(t, netlab.Options{})
	lb := lab.AddHost("lb", netip.MustParsePrefix("10.77.0.2/24"))
	good := lab.AddHost("good", netip.MustParsePrefix("10.77.0.11/24"))
	bad := lab.AddHost("bad", netip.MustParsePrefix("10.77.0.12/24"))
	if err := good.MakeDSRBackend(vip); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*netlab.Host{good, bad} {
		ln, err := h.Listen("tcp", "0.0.0.0:80")
		if err != nil {
			t.Fatal(err)
		}
		go acceptAndClose(ln)
	}
	// A host that holds the VIP but has nothing on the port refuses.
	closed := lab.AddHost("closed", netip.MustParsePrefix("10.77.0.13/24"))
	if err := closed.MakeDSRBackend(vip); err != nil {
		t.Fatal(err)
	}

	run := func(c Checker) (string, error) {
		var detail string
		var cerr error
		err := lb.Do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			detail, cerr = c.Check(ctx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return detail, cerr
	}
	for _, h := range []*netlab.Host{good, bad} {
		if _, err := run(&TCPChecker{Address: h.IPv4().String() + ":80"}); err != nil {
			t.Fatalf("plain TCP check of %s: %v (both listen on their own address)", h.Name, err)
		}
	}
	probe := func(h *netlab.Host) *DSRChecker {
		return &DSRChecker{Interface: "eth0", BackendMAC: h.MAC, VIP: vip, Port: 80}
	}
	if d, err := run(probe(good)); err != nil {
		t.Errorf("backend with the VIP on lo: %v", err)
	} else if !strings.Contains(d, "SYN-ACK") {
		t.Errorf("detail %q", d)
	}
	start := time.Now()
	if _, err := run(probe(bad)); err == nil || !strings.Contains(err.Error(), "no SYN-ACK") {
		t.Errorf("backend without the VIP: err = %v, want no SYN-ACK", err)
	} else if time.Since(start) > 3*time.Second {
		t.Errorf("the probe outlived its timeout: %v", time.Since(start))
	}
	if _, err := run(probe(closed)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("backend with the VIP but no listener: err = %v, want refused", err)
	}
	// The good backend has no half-open connection left from the probe:
	// the probe's RST closed it.
	time.Sleep(50 * time.Millisecond)
	out, _ := good.Run(context.Background(), "ss", "-Htn", "state", "syn-recv")
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("half-open connections left on the backend:\n%s", out)
	}
}
