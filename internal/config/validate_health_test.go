package config

import (
	"strings"
	"testing"
	"time"
)

func TestHealthCheckAndDiscoveryDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"healthchecks:\n  - {name: h, pool: p, type: http}\ndiscovery:\n  - {name: d, pool: p, provider: dns, dns: _http._tcp.web.internal}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HealthChecks[0]
	if h.Interval.D() != 2*time.Second || h.Timeout.D() != time.Second || *h.Jitter != 10 || h.Method != "GET" || h.ExpectStatus != "200-399" ||
		*h.DSRPath || h.SlowStart != 0 || h.Rise != 2 || h.Fall != 3 {
		t.Errorf("check defaults %+v", h)
	}
	d := c.Discovery[0]
	if d.RecordType != "srv" || d.MinRefresh.D() != time.Second || d.MaxRefresh.D() != 5*time.Minute || d.Throttle.D() != time.Second || d.Weight != 1 {
		t.Errorf("discovery defaults %+v", d)
	}
}

func TestHealthErrorsNameTheirKeyPath(t *testing.T) {
	vip := "node: {name: n, interface: eth0}\nvips:\n  - {name: v, address: 10.0.0.1, port: 80, backends: [{name: a, address: 10.0.0.2, mac: '02:00:00:00:00:01'}]}\n  - {name: u, address: 10.0.0.1, port: 53, protocol: udp, backends: [{name: a, address: 10.0.0.2, forwarding: local}]}\n"
	tests := []struct{ name, src, want string }{
		{"a bad status list", minimal + "healthchecks:\n  - {name: h, pool: p, type: http, expect_status: '200-1000'}\n", "healthchecks[0].expect_status"},
		{"a bad regex", minimal + "healthchecks:\n  - {name: h, pool: p, type: http, expect_body_regex: '('}\n", "healthchecks[0].expect_body_regex"},
		{"http keys on a tcp check", minimal + "healthchecks:\n  - {name: h, pool: p, type: tcp, expect_body: ok}\n", "healthchecks[0].type: path, method"},
		{"jitter out of range", minimal + "healthchecks:\n  - {name: h, pool: p, type: tcp, jitter: 80}\n", "healthchecks[0].jitter"},
		{"two checks of one pool", minimal + "healthchecks:\n  - {name: h, pool: p, type: tcp}\n  - {name: i, pool: p, type: tcp}\n", "healthchecks[1].pool: pool/p is already checked"},
		{"dsr_path on a pool", minimal + "healthchecks:\n  - {name: h, pool: p, type: tcp, dsr_path: true}\n", "healthchecks[0].dsr_path"},
		{"passive on a vip", vip + "healthchecks:\n  - {name: h, vip: v, type: tcp, passive: {consecutive_5xx: 3}}\n", "healthchecks[0].passive"},
		{"dsr_path on a udp vip", vip + "healthchecks:\n  - {name: h, vip: u, type: tcp, port: 8080}\n", "healthchecks[0].dsr_path: dsr_path needs a tcp VIP"},
		{"tls on an http check", minimal + "healthchecks:\n  - {name: h, pool: p, type: http, tls: {insecure_skip_verify: true}}\n", "healthchecks[0].tls"},
		{"A records need a port", minimal + "discovery:\n  - {name: d, pool: p, provider: dns, dns: web.internal}\n", "discovery[0].port"},
		{"SRV records carry ports", minimal + "discovery:\n  - {name: d, pool: p, provider: dns, dns: _x._tcp.web, port: 80}\n", "discovery[0].port"},
		{"two sources for one pool", minimal + "discovery:\n  - {name: d, pool: p, provider: etcd, endpoints: [127.0.0.1:2379], key: /a}\n  - {name: e, pool: p, provider: etcd, endpoints: [127.0.0.1:2379], key: /b}\n", "discovery[1].pool"},
		{"a bad registry address", minimal + "discovery:\n  - {name: d, pool: p, provider: consul, endpoints: ['ftp://x'], key: web}\n", "discovery[0].endpoints[0]"},
		{"consul keys on etcd", minimal + "discovery:\n  - {name: d, pool: p, provider: etcd, endpoints: [127.0.0.1:2379], key: /a, tag: x}\n", "discovery[0].provider: tag"},
		{"consul wait out of range", minimal + "discovery:\n  - {name: d, pool: p, provider: consul, endpoints: [127.0.0.1:8500], key: web, wait: 1h}\n", "discovery[0].wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	ok := vip + "healthchecks:\n  - {name: h, vip: v, type: http, slow_start: 30s, expect_status: '200-299,302'}\n  - {name: g, vip: u, type: grpc, port: 9000, dsr_path: false}\n"
	if _, err := Parse("ok.yaml", []byte(ok)); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}

func TestParseStatusRanges(t *testing.T) {
	r, err := ParseStatusRanges("200-299, 302")
	if err != nil || len(r) != 2 || r[0] != (StatusRange{200, 299}) || r[1] != (StatusRange{302, 302}) {
		t.Errorf("%v %v", r, err)
	}
	for _, bad := range []string{"", "2xx", "300-200", "99", "200,", "200-600"} {
		if _, err := ParseStatusRanges(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
