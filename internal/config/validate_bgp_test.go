package config

import (
	"strings"
	"testing"
	"time"
)

// bgpConfig is a node with two L4 VIPs and the given bgp section
// (indented under "bgp:").
func bgpConfig(section string) string {
	return `
node: {name: lb1, interface: eth0}
vips:
  - name: web
    address: 10.79.100.1
    port: 80
    backends:
      - {name: be1, address: 10.79.2.21, mac: "02:00:00:00:00:21"}
  - name: dns
    address: 10.79.100.2
    port: 53
    protocol: udp
    backends:
      - {name: be1, address: 10.79.2.21, mac: "02:00:00:00:00:21"}
bgp:
` + section
}

const bgpMinimal = `  asn: 65001
  peers: [{address: 10.79.2.1, asn: 65000}]
  vips: [{vip: web}]
`

func TestAMinimalBGPSectionGetsEveryDefault(t *testing.T) {
	c, err := Parse("c.yaml", []byte(bgpConfig(bgpMinimal+"  communities: [\"65001:100\", no-export]\n")))
	if err != nil {
		t.Fatal(err)
	}
	b := c.BGP
	if b.ListenPort != 179 || b.WithdrawSettle.D() != 2*time.Second || b.GracefulRestart != 0 {
		t.Errorf("bgp defaults: %+v", b)
	}
	p := b.Peers[0]
	if p.Port != 179 || p.HoldTime.D() != 90*time.Second || p.Keepalive.D() != 30*time.Second || p.ConnectRetry.D() != 5*time.Second || p.BFD != nil {
		t.Errorf("peer defaults: %+v", p)
	}
	c, err = Parse("c.yaml", []byte(bgpConfig(strings.Replace(bgpMinimal, "asn: 65000}", "asn: 65000, hold_time: 9s, bfd: {}}", 1))))
	if err != nil {
		t.Fatal(err)
	}
	p = c.BGP.Peers[0]
	if p.Keepalive.D() != 3*time.Second || p.BFD == nil || !*p.BFD.Enabled || p.BFD.MinTx.D() != 300*time.Millisecond || p.BFD.MinRx.D() != 300*time.Millisecond || p.BFD.Multiplier != 3 {
		t.Errorf("keepalive %s, bfd %+v", p.Keepalive.D(), p.BFD)
	}
}

func TestParseCommunity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		err  bool
	}{
		{"65001:100", 65001<<16 | 100, false},
		{"0:0", 0, false},
		{"65535:65535", 0xffffffff, false},
		{"no-export", 0xffffff01, false},
		{"blackhole", 0xffff029a, false},
		{"65536:1", 0, true},
		{"1:65536", 0, true},
		{"100", 0, true},
		{"a:b", 0, true},
		{"-1:2", 0, true},
		{"", 0, true},
	} {
		got, err := ParseCommunity(tc.in)
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("ParseCommunity(%q) = %#x, %v", tc.in, got, err)
		}
	}
}

func TestBGPValidation(t *testing.T) {
	peer := func(extra string) string {
		return "  asn: 65001\n  vips: [{vip: web}]\n  peers:\n    - {address: 10.79.2.1, asn: 65000" + extra + "}\n"
	}
	for _, tc := range []struct {
		name, section, path, msg string
	}{
		{"no asn", "  peers: [{address: 10.79.2.1, asn: 65000}]\n  vips: [{vip: web}]\n", "bgp.asn", "AS number"},
		{"AS_TRANS", strings.Replace(bgpMinimal, "asn: 65001", "asn: 23456", 1), "bgp.asn", "AS_TRANS"},
		{"router id not IPv4", bgpMinimal + "  router_id: fd00::1\n", "bgp.router_id", "IPv4"},
		{"listen port", bgpMinimal + "  listen_port: 0\n  listen_addresses: [nowhere]\n", "bgp.listen_addresses[0]", "not an IP"},
		{"next hop family", bgpMinimal + "  next_hop: fd00::1\n", "bgp.next_hop", "IPv4"},
		{"next hop v6 family", bgpMinimal + "  next_hop_v6: 10.0.0.1\n", "bgp.next_hop_v6", "IPv6"},
		{"community", bgpMinimal + "  communities: [\"65001:70000\"]\n", "bgp.communities[0]", "0-65535"},
		{"vip community", strings.Replace(bgpMinimal, "{vip: web}", "{vip: web, communities: [nope]}", 1), "bgp.vips[0].communities[0]", "ASN:value"},
		{"graceful restart range", bgpMinimal + "  graceful_restart: 5000s\n", "bgp.graceful_restart", "4095s"},
		{"no peers", "  asn: 65001\n  vips: [{vip: web}]\n", "bgp.peers", "at least one peer"},
		{"peer address", strings.Replace(bgpMinimal, "10.79.2.1", "router", 1), "bgp.peers[0].address", "not an IP"},
		{"peer twice", "  asn: 65001\n  vips: [{vip: web}]\n  peers: [{address: 10.79.2.1, asn: 65000}, {address: 10.79.2.1, asn: 65000}]\n", "bgp.peers[1].address", "twice"},
		{"peer asn", strings.Replace(bgpMinimal, "asn: 65000", "asn: 0", 1), "bgp.peers[0].asn", "AS number"},
		{"both passwords", peer(", password: x, password_file: /nonexistent"), "bgp.peers[0].password", "not both"},
		{"password file", peer(", password_file: /nonexistent/pw"), "bgp.peers[0].password_file", "cannot read"},
		{"hold time too short", peer(", hold_time: 2s"), "bgp.peers[0].hold_time", "3s to 65535s"},
		{"hold time fraction", peer(", hold_time: 3500ms"), "bgp.peers[0].hold_time", "whole seconds"},
		{"keepalive not below hold", peer(", hold_time: 9s, keepalive: 9s"), "bgp.peers[0].keepalive", "shorter than hold_time"},
		{"connect retry", peer(", connect_retry: 100ms"), "bgp.peers[0].connect_retry", "1s-1h"},
		{"multihop for iBGP", strings.Replace(peer(", multihop_ttl: 2"), "asn: 65000", "asn: 65001", 1), "bgp.peers[0].multihop_ttl", "eBGP"},
		{"bfd interval", peer(", bfd: {min_rx: 1ms}"), "bgp.peers[0].bfd.min_rx", "10ms-60s"},
		{"bfd multiplier", peer(", bfd: {multiplier: 1}"), "bgp.peers[0].bfd.multiplier", "2-255"},
		{"bfd multihop", peer(", multihop_ttl: 3, bfd: {}"), "bgp.peers[0].bfd", "single-hop"},
		{"no vips", "  asn: 65001\n  peers: [{address: 10.79.2.1, asn: 65000}]\n", "bgp.vips", "list the VIPs"},
		{"unknown vip", strings.Replace(bgpMinimal, "{vip: web}", "{vip: www}", 1), "bgp.vips[0].vip", "neither a VIP"},
		{"multicast", strings.Replace(bgpMinimal, "{vip: web}", "{vip: 224.0.0.5}", 1), "bgp.vips[0].vip", "unicast"},
		{"same address twice", strings.Replace(bgpMinimal, "{vip: web}", "{vip: web}, {vip: 10.79.100.1}", 1), "bgp.vips[1].vip", "already announced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedAt(t, "c.yaml", bgpConfig(tc.section), tc.path, tc.msg, true)
		})
	}
}

// A VIP is active-active over BGP or floats between a pair, not both; the
// two modes coexist on one node for different VIPs.
func TestBGPAndFloatingVIPsCoexist(t *testing.T) {
	cluster := "cluster:\n  key_file: KEYFILE\n  vips: [{vip: dns}]\n"
	both := bgpConfig(bgpMinimal) + strings.ReplaceAll(cluster, "KEYFILE", gossipKeyFile(t))
	if _, err := Parse("c.yaml", []byte(both)); err != nil {
		t.Fatalf("web over BGP and dns floating: %v", err)
	}
	clash := bgpConfig(strings.Replace(bgpMinimal, "{vip: web}", "{vip: web}, {vip: dns}", 1)) + strings.ReplaceAll(cluster, "KEYFILE", gossipKeyFile(t))
	refusedAt(t, "c.yaml", clash, "bgp.vips[1].vip", "either announced over BGP", true)
}
