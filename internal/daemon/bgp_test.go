package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestBGPConfigFromTheFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "md5")
	if err := os.WriteFile(pw, []byte(" s3cret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
node: {name: lb1, interface: lo}
vips:
  - name: web
    address: 10.79.100.1
    port: 80
    backends: [{name: be1, address: 10.79.2.21, mac: "02:00:00:00:00:21"}]
bgp:
  asn: 65001
  next_hop: 10.79.2.11
  communities: ["65001:7"]
  peers:
    - {address: 10.79.2.1, asn: 65000, password_file: ` + pw + `, hold_time: 9s, bfd: {min_rx: 100ms}}
    - {address: 10.79.2.2, asn: 65000, bfd: {enabled: false}}
  vips: [{vip: web}]
`
	cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := bgpConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// No router_id: node.interface's first IPv4 address.
	if c.RouterID != netip.MustParseAddr("127.0.0.1") || c.ASN != 65001 || c.ListenPort != 179 || c.NextHop4 != netip.MustParseAddr("10.79.2.11") {
		t.Errorf("globals: %+v", c)
	}
	p := c.Peers[0]
	if p.Password != "s3cret" || p.HoldTime != 9*time.Second || p.Keepalive != 3*time.Second || p.Port != 179 ||
		p.BFD == nil || p.BFD.MinRx != 100*time.Millisecond || p.BFD.MinTx != 300*time.Millisecond || p.BFD.Multiplier != 3 {
		t.Errorf("peer 0: %+v bfd %+v", p, p.BFD)
	}
	if c.Peers[1].BFD != nil {
		t.Errorf("peer 1 has BFD although enabled: false: %+v", c.Peers[1].BFD)
	}
	if got := communities(cfg.BGP.Communities); len(got) != 1 || got[0] != 65001<<16|7 {
		t.Errorf("communities: %v", got)
	}

	cfg.Node.Interface = "no-such-interface"
	if _, err := bgpConfig(cfg); err == nil {
		t.Error("a router id from a missing interface was accepted")
	}
}
