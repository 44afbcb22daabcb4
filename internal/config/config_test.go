package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
node:
  name: n1
l7:
  listeners:
    - name: web
      address: 127.0.0.1:8080
  pools:
    - name: p
      endpoints:
        - address: 127.0.0.1:9001
  routes:
    - name: r
      pool: p
`

func TestAMinimalConfigGetsEveryDefault(t *testing.T) {
	c, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != DefaultAdminListen || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("admin/log defaults: %+v %+v", c.Admin, c.Log)
	}
	if c.Shutdown.Drain.D() != DefaultDrain || c.L4.MaglevSize != DefaultMaglevSize || c.L4.UDPTimeout.D() != 30*time.Second {
		t.Errorf("shutdown/l4 defaults: %+v %+v", c.Shutdown, c.L4)
	}
	if c.L7.Pools[0].Algorithm != "round_robin" || c.L7.Pools[0].Endpoints[0].Weight != 1 {
		t.Errorf("pool defaults: %+v", c.L7.Pools[0])
	}
	if c.Digest == "" || c.Digest != DigestOf([]byte(minimal)) {
		t.Errorf("digest %q", c.Digest)
	}
}

func TestVIPsDecodeWithTheirBackends(t *testing.T) {
	src := `
node: {name: lb1, interface: eth0, id: 7}
l4: {hash_seed: 42, xdp_mode: generic, udp_timeout: 1m}
vips:
  - name: web
    address: 10.0.0.10
    port: 80
    backends:
      - {name: b1, address: 10.0.0.21, mac: "02:00:00:00:00:21"}
      - {name: b2, address: 10.0.0.22, mac: "02:00:00:00:00:22", weight: 0}
      - {name: me, address: 10.0.0.2, forwarding: local}
  - name: quic
    address: "2001:db8::10"
    port: 443
    protocol: udp
    quic: true
    backends:
      - {name: me, address: "2001:db8::2", forwarding: local, node_id: 7}
`
	c, err := Parse("vips.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.L4.HashSeed != 42 || c.L4.UDPTimeout.D() != time.Minute {
		t.Errorf("l4: %+v", c.L4)
	}
	b := c.VIPs[0].Backends
	if *b[0].Weight != DefaultBackendWeight || *b[1].Weight != 0 || b[0].Forwarding != "dsr-l2" || b[2].Forwarding != "local" {
		t.Errorf("backends: weights %d %d, forwarding %s %s", *b[0].Weight, *b[1].Weight, b[0].Forwarding, b[2].Forwarding)
	}
	if !c.VIPs[1].QUIC || c.VIPs[1].Backends[0].NodeID != 7 {
		t.Errorf("quic vip: %+v", c.VIPs[1])
	}
}

// Each case is a document and the errors it must produce, as
// "line:col: path: message-fragment". Every listed error must be reported;
// nothing else may be.
func TestInvalidDocumentsReportEveryErrorWithItsPosition(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "an unknown key and a bad port are both reported",
			src:  "node:\n  name: n\n  prioriti: 1\nadmin:\n  listen: 127.0.0.1:99999\n",
			want: []string{`3:3: node.prioriti: unknown key "prioriti" (did you mean "priority"?)`, `5:3: admin.listen: port "99999" is out of range`},
		},
		{
			name: "a wrong type is reported at the value and does not cascade",
			src:  "l7:\n  pools:\n    - name: p\n      endpoints: 12\n",
			want: []string{`4:18: l7.pools[0].endpoints: expected a list, got an integer`},
		},
		{
			name: "a string where a number belongs",
			src:  "node:\n  priority: high\n",
			want: []string{`2:13: node.priority: expected an integer, got a string`},
		},
		{
			name: "an integer out of the field's range",
			src:  "l4:\n  hash_seed: 99999999999\n",
			want: []string{`2:14: l4.hash_seed: 99999999999 is out of range`},
		},
		{
			name: "a bad duration",
			src:  "shutdown:\n  drain: soon\n",
			want: []string{`2:10: shutdown.drain: invalid duration "soon"`},
		},
		{
			name: "a duplicate key",
			src:  "node:\n  name: a\n  name: b\n",
			want: []string{`3:3: YAML syntax: mapping key "name" already defined at [2:3]`},
		},
		{
			name: "a route to a missing pool and a listener restriction to a missing listener",
			src:  minimal + "    - name: r2\n      pool: nope\n      listeners: [api]\n",
			want: []string{`l7.routes[1].pool: no pool named "nope"`, `l7.routes[1].listeners[0]: no listener named "api"`},
		},
		{
			name: "duplicate names",
			src:  minimal + "    - name: r\n      pool: p\n",
			want: []string{`l7.routes[1].name: duplicate route name "r"`},
		},
		{
			name: "a VIP with a bad address, port, protocol and a dsr backend without mac",
			src:  "node: {name: n, interface: eth0}\nvips:\n  - name: v\n    address: 10.0.0.300\n    port: 70000\n    protocol: sctp\n    backends:\n      - {name: b, address: 10.0.0.2}\n",
			want: []string{`vips[0].address: "10.0.0.300" is not an IP address`, `vips[0].port: port 70000 is out of range`, `vips[0].protocol: protocol "sctp"`, `vips[0].backends[0].mac: dsr-l2 needs the backend's Ethernet address`},
		},
		{
			name: "VIPs need an interface",
			src:  "vips:\n  - name: v\n    address: 10.0.0.1\n    port: 80\n    backends:\n      - {name: me, address: 10.0.0.1, forwarding: local}\n",
			want: []string{`node.interface: VIPs are configured`},
		},
		{
			name: "quic needs udp and node ids are unique",
			src:  "node: {name: n, interface: eth0}\nvips:\n  - name: v\n    address: 10.0.0.1\n    port: 443\n    quic: true\n    backends:\n      - {name: a, address: 10.0.0.2, forwarding: local, node_id: 1}\n      - {name: b, address: 10.0.0.3, forwarding: local, node_id: 1}\n",
			want: []string{`vips[0].quic: quic needs protocol: udp`, `vips[0].backends[1].node_id: node_id 1 is already backend "a"'s`},
		},
		{
			name: "a non-prime maglev size",
			src:  "l4:\n  maglev_size: 65536\n",
			want: []string{`2:3: l4.maglev_size: maglev_size 65536 must be a prime`},
		},
		{
			name: "merge keys are refused with a way out",
			src:  "base: &b {name: x}\nnode:\n  <<: *b\n",
			want: []string{`unknown key "base"`, `merge keys (<<) are not supported`},
		},
		{
			name: "health checks and discovery cross-reference pools",
			src:  minimal + "healthchecks:\n  - {name: h, pool: nope, type: icmp, interval: 1s, timeout: 2s}\ndiscovery:\n  - {name: d, pool: p, provider: etcd}\n",
			want: []string{`healthchecks[0].pool: no pool named "nope"`, `healthchecks[0].type: type "icmp"`, `healthchecks[0].timeout: timeout 2s must be shorter than interval 1s`, `discovery[0].endpoints: the etcd provider needs endpoints`, `discovery[0].key: the etcd provider needs a key`},
		},
		{
			name: "a YAML syntax error has a position",
			src:  "node: [\n",
			want: []string{`YAML syntax`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.src))
			es := AsErrors(err)
			if es == nil {
				t.Fatalf("no errors; want %q", tc.want)
			}
			got := es.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			if len(es) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(es), len(tc.want), got)
			}
			for _, e := range es {
				if e.File != "t.yaml" || e.Line < 1 {
					t.Errorf("error without a position: %#v", e)
				}
			}
		})
	}
}

func TestAnchorsAndAliasesAreResolved(t *testing.T) {
	src := minimal + "  # reuse\n" + `
healthchecks:
  - &hc {name: h1, pool: p, type: http}
`
	if _, err := Parse("a.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestRelativeFilesResolveAgainstTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(minimal+"admin:\n  token_file: token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AdminToken()
	if err != nil || tok != "s3cret" {
		t.Fatalf("token %q, %v", tok, err)
	}
}

func TestAMissingFileIsAnErrorNamingIt(t *testing.T) {
	_, err := Load("/nonexistent/portcullis.yaml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/portcullis.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseNeverPanics(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("vips:\n  - {name: v, address: 10.0.0.1, port: 80, backends: [{name: a, address: 1.1.1.1, weight: 5}]}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("f.yaml", src)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && AsErrors(err) == nil {
			t.Fatalf("error is not a config.Errors: %v", err)
		}
	})
}

// refusedAt parses src as file and fails the test unless the config is
// refused with an error at key path whose message contains msg (and, when
// positioned, which carries its line). It returns that error.
func refusedAt(t *testing.T, file, src, path, msg string, positioned bool) Error {
	t.Helper()
	_, err := Parse(file, []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, e := range AsErrors(err) {
		if e.Path == path && strings.Contains(e.Msg, msg) && (!positioned || e.Line > 0) {
			return e
		}
	}
	t.Fatalf("no error at %s containing %q in:\n%v", path, msg, err)
	return Error{}
}
