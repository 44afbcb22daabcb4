package cluster

import (
	"encoding/base64"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestOptionsFromConfigOverridesTheProfileFieldByField(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 16))
	src := `
node: {name: a, interface: eth0, priority: 7}
vips:
  - name: web
    address: 10.0.0.200
    port: 80
    backends: [{name: be1, address: 10.0.0.11, mac: "02:00:00:00:00:11"}]
cluster:
  bind: 10.0.0.2
  key: ` + key + `
  profile: fast
  probe_interval: 300ms
  vips: [{vip: web, preempt: true}, {vip: "fd00::200"}]
  witness: {kind: tcp, address: "10.0.0.1:22"}
`
	c, err := config.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	o, err := OptionsFromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	want := FastProfile()
	want.ProbeInterval = 300 * time.Millisecond
	if o.Profile != want || o.Bind != "10.0.0.2:7946" || o.Priority != 7 || len(o.Key) != 16 || o.Interface != "eth0" {
		t.Fatalf("%+v", o)
	}
	if len(o.VIPs) != 2 || o.VIPs[0] != (VIP{Name: "web", Addr: netip.MustParseAddr("10.0.0.200"), Preempt: true}) || o.VIPs[1].Name != "fd00::200" {
		t.Fatalf("vips %+v", o.VIPs)
	}
	if o.Witness.Kind != WitnessTCP || o.Witness.Fails != 3 || o.GARP.Refresh != 10*time.Second {
		t.Fatalf("witness %+v garp %+v", o.Witness, o.GARP)
	}
	if _, err := o.normalize(); err != nil {
		t.Fatal(err)
	}
}
