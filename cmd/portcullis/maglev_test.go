package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/daemon"
	"github.com/portcullis-lb/portcullis/internal/testbin"
	"github.com/portcullis-lb/portcullis/l4"
	"github.com/portcullis-lb/portcullis/l4/flowhash"
)

// The CLI must say what the dataplane does: compare its output with the
// dataplane's own functions (l4.MaglevTable, flowhash) on the example config.
func TestMaglevCommandsAgreeWithTheDataplane(t *testing.T) {
	bin := testbin.Portcullis(t)
	cfgPath := filepath.Join(testbin.RepoRoot(), "configs", "edge-node.yaml")
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := daemon.L4Services(c)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "maglev", "table", "--config", cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("maglev table: %v\n%s", err, out)
	}
	for i := range svcs {
		s := &svcs[i]
		tab, err := l4.MaglevTable(s, c.L4.MaglevSize, c.L4.HashSeed)
		if err != nil {
			t.Fatal(err)
		}
		counts := tab.Counts(len(s.Backends))
		for j, b := range s.Backends {
			row := fmt.Sprintf("  %s", b.Name)
			line := lineStarting(string(out), row+" ")
			if line == "" || !strings.Contains(line, fmt.Sprintf(" %d ", counts[j])) {
				t.Errorf("VIP %s backend %s: want %d slots in %q", s.Name, b.Name, counts[j], line)
			}
		}
	}

	for _, flow := range []string{"192.0.2.7:51000", "198.51.100.1:443", "203.0.113.9:1"} {
		src := netip.MustParseAddrPort(flow)
		s := &svcs[0]
		tab, _ := l4.MaglevTable(s, c.L4.MaglevSize, c.L4.HashSeed)
		h := flowhash.Hash(c.L4.HashSeed, src.Addr(), s.Addr, src.Port(), s.Port, s.Proto)
		want := s.Backends[tab.Lookup(h)].Name
		out, err := exec.Command(bin, "maglev", "explain", "--config", cfgPath, "--vip", s.Name, "--flow", flow).CombinedOutput()
		if err != nil {
			t.Fatalf("maglev explain: %v\n%s", err, out)
		}
		if got := lineStarting(string(out), "backend  "); !strings.HasPrefix(got, "backend  "+want+" ") {
			t.Errorf("flow %s: CLI says %q, dataplane picks %s", flow, got, want)
		}
	}
	out, err = exec.Command(bin, "maglev", "explain", "--config", cfgPath, "--vip", "nope", "--flow", "1.2.3.4:5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `no VIP "nope"`) {
		t.Errorf("unknown VIP: %v %s", err, out)
	}
}

func lineStarting(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
