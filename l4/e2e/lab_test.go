//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The lab's addresses. 10.77.0.0/24 exists only on the lab's bridge: no
// interface of the machine's own namespace ever holds it.
var (
	clientAddr = netip.MustParsePrefix("10.77.0.10/24")
	lbAddr     = netip.MustParsePrefix("10.77.0.2/24")
	be1Addr    = netip.MustParsePrefix("10.77.0.21/24")
	be2Addr    = netip.MustParsePrefix("10.77.0.22/24")
	// The same hosts on a ULA /64 that exists only in the lab.
	clientAddr6 = netip.MustParsePrefix("fd77::10/64")
	lbAddr6     = netip.MustParsePrefix("fd77::2/64")
	be1Addr6    = netip.MustParsePrefix("fd77::21/64")
	be2Addr6    = netip.MustParsePrefix("fd77::22/64")

	// vipWeb is balanced over be1 and be2 by L2 DSR. It is in the client's
	// on-link subnet, so the client ARPs for it and the LB (which holds it
	// as a /32 on eth0) answers; the backends hold it on lo with
	// arp_ignore=1 and stay silent.
	vipWeb = netip.MustParseAddr("10.77.0.100")
	// vipLocal has one `local` backend: XDP_PASS to the LB's own stack,
	// where an in-process server listens on it.
	vipLocal = netip.MustParseAddr("10.77.0.101")
	// vipWeb6 is vipWeb over IPv6: the LB answers neighbour solicitations
	// for it, the backends hold it on lo (which they never advertise).
	vipWeb6 = netip.MustParseAddr("fd77::100")
)

const (
	vipPort    = 8080
	hashSeed   = 20261126
	adminAddr  = "127.0.0.1:9900" // inside the lb namespace
	adminToken = "e2e-token"
	labPrefix  = "l4e2e"
)

// topo is the lab: client, lb, be1, be2 on one bridge, and the echo
// servers that tell which host holds a connection.
type topo struct {
	lab                  *netlab.Lab
	client, lb, be1, be2 *netlab.Host
	servers              map[string]*e2etest.EchoServer // by host name, "/v6" for the IPv6 VIP
}

// newTopo builds the lab for an XDP attach mode ("native" or "generic").
// It skips the test when that mode cannot be attached here.
//
// Native mode on veth needs two things that generic mode does not (see
// ../shared/LAB.md "XDP on veth"): an XDP program on the LB's bridge-side
// peer, without which XDP_TX frames are dropped as xdp_tx_errors, and TX
// checksum offload off on every sender, because native XDP on veth loses
// the CHECKSUM_PARTIAL state and segments would arrive with bad checksums.
// Generic mode runs with the hosts as netlab makes them.
func newTopo(t *testing.T, mode string) *topo {
	t.Helper()
	lab := netlab.New(t, netlab.Options{Prefix: labPrefix, StopGrace: 2 * time.Second})
	tp := &topo{
		lab:     lab,
		client:  lab.AddHost("client", clientAddr, clientAddr6),
		lb:      lab.AddHost("lb", lbAddr, lbAddr6),
		be1:     lab.AddHost("be1", be1Addr, be1Addr6),
		be2:     lab.AddHost("be2", be2Addr, be2Addr6),
		servers: map[string]*e2etest.EchoServer{},
	}
	e2etest.RequireXDP(t, tp.lb, mode)

	for _, vip := range []netip.Addr{vipWeb, vipLocal, vipWeb6} {
		if err := tp.lb.AddAddr(netip.PrefixFrom(vip, vip.BitLen()), tp.lb.Link); err != nil {
			t.Fatal(err)
		}
	}
	for _, be := range []*netlab.Host{tp.be1, tp.be2} {
		for _, vip := range []netip.Addr{vipWeb, vipWeb6} {
			if err := be.MakeDSRBackend(vip); err != nil {
				t.Fatal(err)
			}
		}
	}
	if mode == "native" {
		for _, h := range []*netlab.Host{tp.client, tp.lb, tp.be1, tp.be2} {
			if err := h.DisableTxOffload(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tp.lb.AttachXDPPass(); err != nil {
			e2etest.SkipIfUnsupported(t, "native XDP on the LB's bridge-side veth peer", err)
			t.Fatal(err)
		}
	}

	vipAddr := func(a netip.Addr) string { return netip.AddrPortFrom(a, vipPort).String() }
	tp.servers["be1"] = e2etest.ServeEcho(t, tp.be1, "be1", vipAddr(vipWeb))
	tp.servers["be2"] = e2etest.ServeEcho(t, tp.be2, "be2", vipAddr(vipWeb))
	tp.servers["be1/v6"] = e2etest.ServeEcho(t, tp.be1, "be1", vipAddr(vipWeb6))
	tp.servers["be2/v6"] = e2etest.ServeEcho(t, tp.be2, "be2", vipAddr(vipWeb6))
	tp.servers["lb"] = e2etest.ServeEcho(t, tp.lb, "lb", vipAddr(vipLocal))
	return tp
}

// dialTimeout bounds every dial of a client connection to a VIP.
const dialTimeout = 5 * time.Second

// be2State is what the config says about backend be2.
type be2State int

const (
	be2Serving be2State = iota
	be2Removed          // not in the config
	be2Drained          // weight 0
)

// daemonConfig is the LB node's config: VIPs "web" and "web6" over be1
// and be2 by dsr-l2, VIP "onnode" handed to the node's own stack.
func daemonConfig(tp *topo, mode string, be2 be2State) string {
	var b strings.Builder
	fmt.Fprintf(&b, `node:
  name: lb
  interface: eth0
log:
  format: json
  level: info
admin:
  listen: %s
  token: %s
shutdown:
  drain: 1s
l4:
  xdp_mode: %s
  hash_seed: %d
  conntrack_size: 16384
vips:
`, adminAddr, adminToken, mode, hashSeed)
	for _, vip := range []struct {
		name string
		addr netip.Addr
		v6   bool
	}{{"web", vipWeb, false}, {"web6", vipWeb6, true}} {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    port: %d\n    backends:\n", vip.name, vip.addr, vipPort)
		for _, be := range []*netlab.Host{tp.be1, tp.be2} {
			weight := 100
			if be == tp.be2 {
				if be2 == be2Removed {
					continue
				}
				if be2 == be2Drained {
					weight = 0
				}
			}
			addr := be.IPv4()
			if vip.v6 {
				addr = be.IPv6()
			}
			fmt.Fprintf(&b, "      - {name: %s, address: %s, mac: %q, forwarding: dsr-l2, weight: %d}\n", be.Name, addr, be.MAC.String(), weight)
		}
	}
	fmt.Fprintf(&b, `  - name: onnode
    address: %s
    port: %d
    backends:
      - {name: lb, address: %s, forwarding: local}
`, vipLocal, vipPort, vipLocal)
	return b.String()
}

// lbDaemon is `portcullis run` in the lb namespace.
type lbDaemon struct {
	*e2etest.Daemon
	cfgPath string
}

func startDaemon(t *testing.T, lb *netlab.Host, bin, cfg string) *lbDaemon {
	t.Helper()
	d := &lbDaemon{cfgPath: filepath.Join(t.TempDir(), "portcullis.yaml")}
	d.writeConfig(t, cfg)
	d.Daemon = e2etest.StartDaemon(t, lb, bin, d.cfgPath, adminAddr)
	return d
}

// writeConfig replaces the config file by rename, as config managers do.
func (d *lbDaemon) writeConfig(t *testing.T, cfg string) {
	t.Helper()
	tmp := d.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.cfgPath); err != nil {
		t.Fatal(err)
	}
}

// reload writes cfg, sends SIGHUP and waits until /api/v1/status reports
// the new file's digest: the daemon swaps its generation only after the
// XDP maps have been rewritten, so from then on packets see the new state.
func (d *lbDaemon) reload(t *testing.T, cfg string) {
	t.Helper()
	d.writeConfig(t, cfg)
	want := config.DigestOf([]byte(cfg))
	if err := d.Proc.Kill(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st status
		err := d.GetJSON("/api/v1/status", &st)
		if err == nil && st.Config.Digest == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload not applied after 10s (last error %v, running digest %s)\n%s", err, st.Config.Digest, d.Proc.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadByAPI writes cfg and asks for a reload with POST /api/v1/reload
// and the admin token; the answer comes once the new config is applied.
func (d *lbDaemon) reloadByAPI(t *testing.T, cfg string) {
	t.Helper()
	d.writeConfig(t, cfg)
	resp, err := d.Post("/api/v1/reload", adminToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Result string   `json:"result"`
		Digest string   `json:"digest"`
		Errors []string `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST /api/v1/reload: %s: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || body.Digest != config.DigestOf([]byte(cfg)) {
		t.Fatalf("POST /api/v1/reload: %s %+v, want 200 and digest %s", resp.Status, body, config.DigestOf([]byte(cfg)))
	}
}

// status is the part of /api/v1/status the tests read.
type status struct {
	Config struct {
		Digest string `json:"digest"`
	} `json:"config"`
	L4 *struct {
		Interface string `json:"interface"`
		Mode      string `json:"mode"`
		Stats     struct {
			AttachedMode string `json:"attached_mode"`
			Services     []struct {
				Name     string `json:"name"`
				Backends []struct {
					Name string `json:"name"`
				} `json:"backends"`
			} `json:"services"`
		} `json:"stats"`
	} `json:"l4"`
}

func (d *lbDaemon) status(t *testing.T) status {
	t.Helper()
	var st status
	if err := d.GetJSON("/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// logLines returns the daemon's JSON log records whose msg is msg.
func (d *lbDaemon) logLines(msg string) []map[string]any {
	return d.LogRecords(func(m string) bool { return m == msg })
}

func (d *lbDaemon) metrics(t *testing.T) e2etest.Metrics {
	t.Helper()
	m, err := d.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
