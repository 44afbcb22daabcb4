//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// The lab's addresses; 10.77.0.0/24 exists only on the lab's bridge.
var (
	clientAddr = netip.MustParsePrefix("10.77.0.10/24")
	lbAddr     = netip.MustParsePrefix("10.77.0.2/24")
	beAddrs    = []netip.Prefix{
		netip.MustParsePrefix("10.77.0.21/24"),
		netip.MustParsePrefix("10.77.0.22/24"),
		netip.MustParsePrefix("10.77.0.23/24"),
	}
	// vip is balanced over be1-be3 by L2 DSR; the LB holds it as a /32
	// on eth0 (and answers ARP for it), the backends on lo.
	vip = netip.MustParseAddr("10.77.0.100")
)

const (
	vipPort    = 8080
	adminAddr  = "127.0.0.1:9900" // inside the lb namespace
	adminToken = "hc-e2e-token"
	labPrefix  = "hce2e"
	maglevSize = 65537

	// The VIP check: every 200ms, 150ms timeout, down after 2 failures,
	// up after 2 successes, default jitter (±10%).
	checkInterval = 200 * time.Millisecond
	checkTimeout  = 150 * time.Millisecond
	checkFall     = 2
	checkRise     = 2
)

// downBound is the generous bound for a backend to be seen down (or back
// up) everywhere — health state, dashboard slots, the dataplane's metric —
// after its server changed: fall (or rise) checks, each up to interval
// +10% jitter plus the check's timeout, one more interval for the phase
// of the schedule, and a second of slack for a loaded 2-core CI machine.
func downBound(n int) time.Duration {
	per := checkInterval*11/10 + checkTimeout
	return time.Duration(n+1)*per + time.Second
}

type lab struct {
	lab    *netlab.Lab
	client *netlab.Host
	lb     *netlab.Host
	bes    []*netlab.Host
	srv    map[string]*e2etest.EchoServer
	d      *daemon
}

// newLab builds client, lb and be1-be3 (each holding the VIP on lo and
// serving the echo protocol on 0.0.0.0:8080), and starts `portcullis run`
// on lb with XDP in generic mode and a tcp health check on the VIP.
func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP and the DSR probe's packet socket")
	}
	bin := testbin.Portcullis(t)
	nl := netlab.New(t, netlab.Options{Prefix: labPrefix, StopGrace: 2 * time.Second})
	l := &lab{lab: nl, srv: map[string]*e2etest.EchoServer{}}
	l.client = nl.AddHost("client", clientAddr)
	l.lb = nl.AddHost("lb", lbAddr)
	for i, a := range beAddrs {
		l.bes = append(l.bes, nl.AddHost(fmt.Sprintf("be%d", i+1), a))
	}
	e2etest.RequireXDP(t, l.lb, "generic")
	if err := l.lb.AddAddr(netip.PrefixFrom(vip, 32), l.lb.Link); err != nil {
		t.Fatal(err)
	}
	for _, be := range l.bes {
		if err := be.MakeDSRBackend(vip); err != nil {
			t.Fatal(err)
		}
		s := e2etest.NewEchoServer(be, be.Name, fmt.Sprintf("0.0.0.0:%d", vipPort))
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		l.srv[be.Name] = s
	}
	l.d = startDaemon(t, l.lb, bin, l.config())
	// Every backend passes its first checks before a test starts.
	e2etest.Eventually(t, "all backends up", 10*time.Second, 25*time.Millisecond, func() (bool, string) {
		return l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "up"})
	})
	return l
}

func (l *lab) config() string {
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
  xdp_mode: generic
  hash_seed: 20261127
  maglev_size: %d
  conntrack_size: 16384
vips:
  - name: web
    address: %s
    port: %d
    backends:
`, adminAddr, adminToken, maglevSize, vip, vipPort)
	for _, be := range l.bes {
		fmt.Fprintf(&b, "      - {name: %s, address: %s, mac: %q, forwarding: dsr-l2}\n", be.Name, be.IPv4(), be.MAC.String())
	}
	// type tcp: the DSR-path probe (on by default for VIP checks) replaces
	// the connect, so the check is exactly "a SYN to VIP:8080 through the
	// backend's MAC is answered by a SYN-ACK".
	fmt.Fprintf(&b, `healthchecks:
  - name: web-check
    vip: web
    type: tcp
    interval: %s
    timeout: %s
    fall: %d
    rise: %d
`, checkInterval, checkTimeout, checkFall, checkRise)
	return b.String()
}

// backendsAre checks that the dashboard and the dataplane agree with want
// (backend → "up" or "down"): the health state, the Maglev slots (none for
// a down backend, all slots shared by the others) and
// portcullis_l4_backend_up, which the dataplane reports from the services
// it has written to its maps.
func (l *lab) backendsAre(want map[string]string) (bool, string) {
	dash, err := l.d.dashboard()
	if err != nil {
		return false, err.Error()
	}
	m, err := e2etest.Scrape(l.d.Admin, l.d.URL("/metrics"))
	if err != nil {
		return false, err.Error()
	}
	var bad []string
	total := 0
	for name, w := range want {
		b := vipBackend(dash, "web", name)
		if b == nil {
			return false, "backend " + name + " missing from the dashboard"
		}
		total += b.Slots
		up, ok := m.Get("portcullis_l4_backend_up", "service=web", "backend="+name)
		wantUp := map[string]float64{"up": 1, "down": 0}[w]
		if b.Health.State != w || !ok || up != wantUp || (w == "down") != (b.Slots == 0) {
			bad = append(bad, fmt.Sprintf("%s: state %s slots %d backend_up %v (present %v) detail %q",
				name, b.Health.State, b.Slots, up, ok, b.Health.Detail))
		}
	}
	if total != maglevSize {
		bad = append(bad, fmt.Sprintf("slots add up to %d, not %d", total, maglevSize))
	}
	return len(bad) == 0, strings.Join(bad, "; ")
}

// TestHealthToXDP is the "Health → XDP" test: a VIP's health
// check drives the XDP Maglev table of the real daemon.
func TestHealthToXDP(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	web := netip.AddrPortFrom(vip, vipPort).String()

	t.Run("all three backends take new connections", func(t *testing.T) {
		res := e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Fatalf("%s", res.Failures(100))
		}
		t.Logf("100 connections: %v", res.PerBackend)
		for _, be := range []string{"be1", "be2", "be3"} {
			if res.PerBackend[be] < 10 {
				t.Errorf("%s answered %d of 100 connections, want at least 10", be, res.PerBackend[be])
			}
		}
	})

	t.Run("a stopped server is taken out of the table and returns when it restarts", func(t *testing.T) {
		stopped := time.Now()
		l.srv["be2"].Stop()
		took := e2etest.Eventually(t, "be2 down, its slots on be1 and be3", downBound(checkFall), 20*time.Millisecond, func() (bool, string) {
			return l.backendsAre(map[string]string{"be1": "up", "be2": "down", "be3": "up"})
		})
		t.Logf("be2 down in the dashboard and the dataplane %v after its server stopped (interval %v × fall %d = %v; bound %v)",
			took.Round(time.Millisecond), checkInterval, checkFall, checkInterval*checkFall, downBound(checkFall))
		dash, err := l.d.dashboard()
		if err != nil {
			t.Fatal(err)
		}
		b2 := vipBackend(dash, "web", "be2")
		if !strings.Contains(b2.Health.Detail, "refused") {
			t.Errorf("be2's last check detail %q, want the probe's RST (\"refused\")", b2.Health.Detail)
		}
		if !hasTransition(b2.Health.History, "up", "down", stopped) {
			t.Errorf("be2's history has no up→down since the stop: %s", historyString(b2.Health.History))
		}
		for _, be := range []string{"be1", "be3"} {
			if b := vipBackend(dash, "web", be); b.Slots < maglevSize/3 {
				t.Errorf("%s has %d slots after be2 went down, want more than its third (%d)", be, b.Slots, maglevSize/3)
			}
		}

		res := e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("with be2 down: %s", res.Failures(100))
		}
		t.Logf("be2 down, 100 connections: %v", res.PerBackend)
		if res.PerBackend["be2"] != 0 {
			t.Errorf("be2 (down) answered %d new connections", res.PerBackend["be2"])
		}

		restarted := time.Now()
		if err := l.srv["be2"].Start(); err != nil {
			t.Fatal(err)
		}
		took = e2etest.Eventually(t, "be2 back up", downBound(checkRise), 20*time.Millisecond, func() (bool, string) {
			return l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "up"})
		})
		t.Logf("be2 up again %v after its server restarted (interval %v × rise %d)", took.Round(time.Millisecond), checkInterval, checkRise)
		if dash, err = l.d.dashboard(); err != nil {
			t.Fatal(err)
		}
		if b2 := vipBackend(dash, "web", "be2"); !hasTransition(b2.Health.History, "down", "up", restarted) {
			t.Errorf("be2's history has no down→up since the restart: %s", historyString(b2.Health.History))
		}
		res = e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("be2 back: %s", res.Failures(100))
		}
		t.Logf("be2 back, 100 connections: %v", res.PerBackend)
		if res.PerBackend["be2"] < 10 {
			t.Errorf("be2 answered %d of 100 new connections after it came back, want at least 10", res.PerBackend["be2"])
		}
	})

	t.Run("a backend up on its own address without the VIP on lo is down for the VIP", func(t *testing.T) {
		be3 := l.lab.Host("be3")
		removed := time.Now()
		if err := be3.DelAddr(netip.PrefixFrom(vip, 32), "lo"); err != nil {
			t.Fatal(err)
		}
		// Its server still answers on its own address: a check of that
		// address would pass.
		own := netip.AddrPortFrom(be3.IPv4(), vipPort).String()
		if name, err := e2etest.OneConn(ctx, l.client, own, 2, dialTimeout); err != nil || name != "be3" {
			t.Fatalf("be3's own address %s: answered by %q, %v; want be3", own, name, err)
		}
		took := e2etest.Eventually(t, "be3 down", downBound(checkFall), 20*time.Millisecond, func() (bool, string) {
			return l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "down"})
		})
		t.Logf("be3 down %v after the VIP left its lo", took.Round(time.Millisecond))
		dash, err := l.d.dashboard()
		if err != nil {
			t.Fatal(err)
		}
		b3 := vipBackend(dash, "web", "be3")
		if !strings.Contains(b3.Health.Detail, "no SYN-ACK") {
			t.Errorf("be3's last check detail %q, want the probe's silence (\"no SYN-ACK\")", b3.Health.Detail)
		}
		if !hasTransition(b3.Health.History, "up", "down", removed) {
			t.Errorf("be3's history has no up→down since the VIP was removed: %s", historyString(b3.Health.History))
		}
		res := e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("with be3 down: %s", res.Failures(100))
		}
		t.Logf("be3 without the VIP, 100 connections: %v", res.PerBackend)
		if res.PerBackend["be3"] != 0 {
			t.Errorf("be3 (down) answered %d new connections", res.PerBackend["be3"])
		}

		if err := be3.AddAddr(netip.PrefixFrom(vip, 32), "lo"); err != nil {
			t.Fatal(err)
		}
		took = e2etest.Eventually(t, "be3 back up", downBound(checkRise), 20*time.Millisecond, func() (bool, string) {
			return l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "up"})
		})
		t.Logf("be3 up again %v after the VIP was back on its lo", took.Round(time.Millisecond))
	})
}

// TestDrainThroughTheAdminAPI drains a VIP backend with
// POST /api/v1/health/drain: its established flows keep working, new ones
// go elsewhere; the endpoint needs the token; undrain brings new flows
// back.
func TestDrainThroughTheAdminAPI(t *testing.T) {
	l := newLab(t)
	ctx := t.Context()
	web := netip.AddrPortFrom(vip, vipPort).String()

	// Established connections, at least 3 of them on be1.
	var flows []*e2etest.Flow
	t.Cleanup(func() {
		for _, f := range flows {
			f.Close()
		}
	})
	onBE1 := 0
	for i := 0; i < 60 && onBE1 < 3; i++ {
		f, err := e2etest.DialFlow(ctx, l.client, web, dialTimeout)
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, f)
		if f.Backend == "be1" {
			onBE1++
		}
	}
	if onBE1 < 3 {
		t.Fatalf("only %d of %d connections landed on be1", onBE1, len(flows))
	}

	drain := func(token string, drained bool) (int, string) {
		body := fmt.Sprintf(`{"kind":"vip","group":"web","name":"be1","drained":%v}`, drained)
		resp, err := l.d.Post("/api/v1/health/drain", token, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	exchangeAll := func(when string) {
		t.Helper()
		for _, f := range flows {
			if _, err := f.Exchange(3 * time.Second); err != nil {
				t.Errorf("%s: established connection on %s: %v", when, f.Backend, err)
			}
		}
	}

	t.Run("without the token the drain is refused", func(t *testing.T) {
		for _, tok := range []string{"", "wrong-token"} {
			if code, body := drain(tok, true); code != http.StatusUnauthorized {
				t.Errorf("token %q: %d %s, want 401", tok, code, body)
			}
		}
		dash, err := l.d.dashboard()
		if err != nil {
			t.Fatal(err)
		}
		if b := vipBackend(dash, "web", "be1"); b.Health.Drained || b.EffectiveWeight == 0 {
			t.Errorf("be1 after refused drains: drained %v effective weight %d", b.Health.Drained, b.EffectiveWeight)
		}
	})

	t.Run("drained: established flows stay, new ones avoid be1", func(t *testing.T) {
		drainedAt := time.Now()
		if code, body := drain(adminToken, true); code != http.StatusOK {
			t.Fatalf("drain: %d %s", code, body)
		}
		e2etest.Eventually(t, "be1 drained in the dashboard and out of the table", 5*time.Second, 20*time.Millisecond, func() (bool, string) {
			dash, err := l.d.dashboard()
			if err != nil {
				return false, err.Error()
			}
			b := vipBackend(dash, "web", "be1")
			return b.Health.Drained && b.EffectiveWeight == 0 && b.Slots == 0 && b.Health.State == "up",
				fmt.Sprintf("drained %v effective weight %d slots %d state %s", b.Health.Drained, b.EffectiveWeight, b.Slots, b.Health.State)
		})
		dash, err := l.d.dashboard()
		if err != nil {
			t.Fatal(err)
		}
		if dash.CanWrite {
			t.Errorf("the dashboard asked without a token says can_write")
		}
		// The drain is in the history as a transition with From == To
		// and the drain flag set after it, both in the dashboard and in
		// GET /api/v1/health.
		b1 := vipBackend(dash, "web", "be1")
		var entry *dashboard.Transition
		for i, tr := range b1.Health.History {
			if tr.From == tr.To && !tr.At.Before(drainedAt) && strings.Contains(tr.Reason, "drained by admin") {
				entry = &b1.Health.History[i]
			}
		}
		switch {
		case entry == nil:
			t.Errorf("be1's dashboard history has no drain entry: %s", historyString(b1.Health.History))
		case !entry.Drained:
			t.Errorf("be1's dashboard history entry %q says drained=false, want true (the daemon's healthOf does not copy Transition.Drained)", entry.Reason)
		}
		var hs healthSnapshot
		if err := e2etest.GetJSON(l.d.Admin, l.d.URL("/api/v1/health"), &hs); err != nil {
			t.Fatal(err)
		}
		if st := hs.target("vip", "web", "be1"); st == nil {
			t.Errorf("GET /api/v1/health has no vip/web/be1")
		} else if !st.Drained || st.State != "up" || len(st.History) == 0 || !st.History[len(st.History)-1].Drained {
			t.Errorf("GET /api/v1/health vip/web/be1: state %s drained %v history %+v, want up, drained, last entry drained", st.State, st.Drained, st.History)
		}
		m, err := e2etest.Scrape(l.d.Admin, l.d.URL("/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		if up, _ := m.Get("portcullis_l4_backend_up", "service=web", "backend=be1"); up != 1 {
			t.Errorf("drained be1: portcullis_l4_backend_up = %v, want 1 (drained is not down)", up)
		}
		exchangeAll("be1 drained")
		res := e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("be1 drained: %s", res.Failures(100))
		}
		t.Logf("be1 drained, 100 connections: %v", res.PerBackend)
		if res.PerBackend["be1"] != 0 {
			t.Errorf("drained be1 answered %d new connections", res.PerBackend["be1"])
		}
		// And the established ones still work after all that traffic.
		exchangeAll("be1 drained, after 100 new connections")
	})

	t.Run("undrained: be1 gets new flows again", func(t *testing.T) {
		if code, body := drain(adminToken, false); code != http.StatusOK {
			t.Fatalf("undrain: %d %s", code, body)
		}
		e2etest.Eventually(t, "be1 undrained", 5*time.Second, 20*time.Millisecond, func() (bool, string) {
			return l.backendsAre(map[string]string{"be1": "up", "be2": "up", "be3": "up"})
		})
		res := e2etest.RunConns(ctx, l.client, web, 100, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("be1 undrained: %s", res.Failures(100))
		}
		t.Logf("be1 undrained, 100 connections: %v", res.PerBackend)
		if res.PerBackend["be1"] < 10 {
			t.Errorf("be1 answered %d of 100 new connections after the undrain, want at least 10", res.PerBackend["be1"])
		}
		exchangeAll("be1 undrained")
	})
}

// daemon is `portcullis run` in the lb namespace.
type daemon struct {
	*e2etest.Daemon
}

func startDaemon(t *testing.T, lb *netlab.Host, bin, cfg string) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &daemon{e2etest.StartDaemon(t, lb, bin, path, adminAddr)}
}

func (d *daemon) dashboard() (*dashboard.Data, error) {
	var out dashboard.Data
	if err := e2etest.GetJSON(d.Admin, d.URL("/api/v1/dashboard"), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// dialTimeout bounds every dial of a client connection to a VIP.
const dialTimeout = 3 * time.Second
