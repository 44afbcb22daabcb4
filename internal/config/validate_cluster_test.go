package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gossipKeyFile writes a valid cluster key file and returns its path.
func gossipKeyFile(t *testing.T) string {
	t.Helper()
	kf := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return kf
}

// clusterConfig is a node with one L4 VIP and the given cluster section
// (indented under "cluster:"); KEYFILE is replaced by a valid key file.
func clusterConfig(t *testing.T, section string) string {
	t.Helper()
	return `
node:
  name: a
  interface: eth0
  priority: 200
vips:
  - name: web
    address: 10.0.0.200
    port: 80
    backends:
      - {name: be1, address: 10.0.0.11, mac: "02:00:00:00:00:11"}
cluster:
` + strings.ReplaceAll(section, "KEYFILE", gossipKeyFile(t))
}

func TestAMinimalClusterGetsEveryDefault(t *testing.T) {
	c, err := Parse("c.yaml", []byte(clusterConfig(t, "  key_file: KEYFILE\n  peers: [10.0.0.3]\n  vips: [{vip: web}]\n  witness: {kind: icmp, address: 10.0.0.1}\n")))
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if cl.Bind != "0.0.0.0:7946" || cl.Peers[0] != "10.0.0.3:7946" || cl.Profile != "lan" || cl.Interface != "eth0" {
		t.Errorf("cluster defaults: %+v", cl)
	}
	if w := cl.Witness; w.Interval.D() != time.Second || w.Timeout.D() != 500*time.Millisecond || w.Fails != 3 {
		t.Errorf("witness defaults: %+v", w)
	}
	if g := cl.GARP; g.Count != 3 || g.Interval.D() != 100*time.Millisecond || g.Refresh.D() != 10*time.Second {
		t.Errorf("garp defaults: %+v", g)
	}
	if key, err := cl.GossipKey(); err != nil || len(key) != 32 {
		t.Errorf("key: %d bytes, %v", len(key), err)
	}
}

func TestAnExplicitZeroRefreshTurnsGARPRefreshOff(t *testing.T) {
	c, err := Parse("c.yaml", []byte(clusterConfig(t, "  key_file: KEYFILE\n  garp: {refresh: 0s}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Cluster.GARP.Refresh != 0 {
		t.Errorf("refresh %s", c.Cluster.GARP.Refresh.D())
	}
}

func TestClusterErrorsNameTheirKey(t *testing.T) {
	for _, tc := range []struct {
		name, section, path, msg string
	}{
		{"no key", "  bind: 10.0.0.2:7946\n", "cluster.key_file", "always encrypted"},
		{"both keys", "  key_file: KEYFILE\n  key: AAAAAAAAAAAAAAAAAAAAAA==\n", "cluster.key", "not both"},
		{"a short key", "  key: AAAA\n", "cluster.key", "3 bytes"},
		{"bind by name", "  key_file: KEYFILE\n  bind: node-a:7946\n", "cluster.bind", "IP address"},
		{"unknown profile", "  key_file: KEYFILE\n  profile: turbo\n", "cluster.profile", "lan or fast"},
		{"probe timeout above interval", "  key_file: KEYFILE\n  probe_interval: 100ms\n  probe_timeout: 200ms\n", "cluster.probe_timeout", "shorter"},
		{"an unknown VIP", "  key_file: KEYFILE\n  vips: [{vip: api}]\n", "cluster.vips[0].vip", "neither a VIP"},
		{"a VIP listed twice", "  key_file: KEYFILE\n  vips: [{vip: web}, {vip: 10.0.0.200}]\n", "cluster.vips[1].vip", "already listed"},
		{"a witness kind", "  key_file: KEYFILE\n  witness: {kind: http, address: 10.0.0.1}\n", "cluster.witness.kind", "tcp, icmp or arp"},
		{"an arp witness on IPv6", "  key_file: KEYFILE\n  witness: {kind: arp, address: 'fd00::1'}\n", "cluster.witness.address", "IPv4 only"},
		{"a tcp witness without port", "  key_file: KEYFILE\n  witness: {kind: tcp, address: 10.0.0.1}\n", "cluster.witness.address", "host:port"},
		{"witness timeout above interval", "  key_file: KEYFILE\n  witness: {kind: icmp, address: 10.0.0.1, interval: 100ms, timeout: 1s}\n", "cluster.witness.timeout", "at most interval"},
		{"garp count", "  key_file: KEYFILE\n  garp: {count: 1000}\n", "cluster.garp.count", "out of range"},
		{"garp refresh too short", "  key_file: KEYFILE\n  garp: {refresh: 10ms}\n", "cluster.garp.refresh", "at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedAt(t, "c.yaml", clusterConfig(t, tc.section), tc.path, tc.msg, false)
		})
	}
}
