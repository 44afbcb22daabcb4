//go:build linux

package e2e

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// TestXDPEndToEnd runs the real daemon on the LB node with XDP attached
// to eth0, once in native and once in generic mode, and sends real TCP
// connections from the client through the VIPs (issue 3, "Namespace
// end-to-end").
func TestXDPEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and XDP")
	}
	bin := testbin.Portcullis(t)
	for _, mode := range []string{"native", "generic"} {
		t.Run(mode, func(t *testing.T) { testMode(t, bin, mode) })
	}
}

func testMode(t *testing.T, bin, mode string) {
	tp := newTopo(t, mode)
	d := startDaemon(t, tp.lb, bin, daemonConfig(tp, mode, be2Serving))
	ctx := t.Context()
	web := netip.AddrPortFrom(vipWeb, vipPort).String()
	web6 := netip.AddrPortFrom(vipWeb6, vipPort).String()
	local := netip.AddrPortFrom(vipLocal, vipPort).String()

	t.Run("the daemon says which XDP mode is in force", func(t *testing.T) {
		st := d.status(t)
		if st.L4 == nil {
			t.Fatalf("/api/v1/status has no l4 section: XDP not attached")
		}
		if st.L4.Mode != mode || st.L4.Stats.AttachedMode != mode || st.L4.Interface != "eth0" {
			t.Errorf("status l4: interface %q mode %q attached_mode %q, want eth0 %s %s",
				st.L4.Interface, st.L4.Mode, st.L4.Stats.AttachedMode, mode, mode)
		}
		recs := d.logLines("XDP attached")
		if len(recs) != 1 || recs[0]["mode"] != mode || recs[0]["interface"] != "eth0" {
			t.Errorf("log records \"XDP attached\": %v, want one with interface=eth0 mode=%s", recs, mode)
		}
		m := d.metrics(t)
		if v, _ := m.Get("portcullis_l4_xdp_attached", "mode="+mode); v != 1 {
			t.Errorf("portcullis_l4_xdp_attached{mode=%q} = %v, want 1", mode, v)
		}
		// And the kernel agrees (a flagless attach could have fallen
		// back to generic silently).
		if got := xdpAttachMode(t, tp); got != kernelXDPMode[mode] {
			t.Errorf("kernel reports XDP attach mode %d on the LB's eth0, want %d (%s)", got, kernelXDPMode[mode], mode)
		}
	})

	// Connections per backend seen by the client, for the metrics check.
	var balanced map[string]int
	balanceOK := t.Run("hundreds of connections all succeed, balance and never change backend", func(t *testing.T) {
		const n, conc, msgs = 300, 8, 4
		res := e2etest.RunConns(ctx, tp.client, web, n, conc, msgs, dialTimeout)
		balanced = res.PerBackend
		if len(res.Errs) > 0 {
			t.Errorf("%s", res.Failures(n))
		}
		t.Logf("%d connections: %v", n, res.PerBackend)
		for name, c := range res.PerBackend {
			if name != "be1" && name != "be2" {
				t.Errorf("%d connections answered by %q, which is not a backend of the VIP", c, name)
			}
		}
		for _, be := range []string{"be1", "be2"} {
			if share := float64(res.PerBackend[be]) / n; share < 0.30 || share > 0.70 {
				t.Errorf("%s got %.0f%% of the connections, want 30%%-70%%", be, 100*share)
			}
		}
	})

	// Connections per backend over IPv6, for the metrics check.
	var balanced6 map[string]int
	t.Run("IPv6 connections through the VIP balance too", func(t *testing.T) {
		const n = 100
		res := e2etest.RunConns(ctx, tp.client, web6, n, 8, 3, dialTimeout)
		balanced6 = res.PerBackend
		if len(res.Errs) > 0 {
			t.Errorf("%s", res.Failures(n))
		}
		t.Logf("%d connections: %v", n, res.PerBackend)
		for _, be := range []string{"be1", "be2"} {
			// 25%-75%: five standard deviations of a fair split of 100.
			if share := float64(res.PerBackend[be]) / n; share < 0.25 || share > 0.75 {
				t.Errorf("%s got %.0f%% of the connections, want 25%%-75%%", be, 100*share)
			}
		}
	})

	t.Run("a local backend reaches a server on the LB node itself", func(t *testing.T) {
		const n = 20
		before := d.metrics(t)
		res := e2etest.RunConns(ctx, tp.client, local, n, 4, 3, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("%s", res.Failures(n))
		}
		if res.PerBackend["lb"] != n-len(res.Errs) {
			t.Errorf("answered by %v, want only lb", res.PerBackend)
		}
		// The LB holds the address, so its kernel would answer even
		// without XDP: the counters prove the packets took the VIP path
		// (XDP_PASS by the local backend) rather than missing the VIP.
		after := d.metrics(t)
		flows := delta(before, after, "portcullis_l4_backend_new_flows_total", "service=onnode", "backend=lb")
		if flows < n {
			t.Errorf("backend lb of VIP onnode counted %v new flows, want >= %d", flows, n)
		}
	})

	t.Run("metrics count the flows and packets of the VIP", func(t *testing.T) {
		if !balanceOK {
			t.Skip("connections through the VIP failed above")
		}
		m := d.metrics(t)
		total := balanced["be1"] + balanced["be2"]
		newFlows, _ := m.Get("portcullis_l4_service_new_flows_total", "service=web")
		packets, _ := m.Get("portcullis_l4_service_packets_total", "service=web")
		bytes, _ := m.Get("portcullis_l4_service_bytes_total", "service=web")
		if newFlows != float64(total) {
			t.Errorf("service web new_flows = %v, want %d (one per connection)", newFlows, total)
		}
		// SYN, ACK, 4 lines, FIN, last ACK: at least 8 client packets per
		// connection cross the LB (replies go straight to the client).
		if packets < float64(8*total) {
			t.Errorf("service web packets = %v, want >= %d", packets, 8*total)
		}
		if bytes < 54*packets {
			t.Errorf("service web bytes = %v for %v packets, want >= 54 per packet", bytes, packets)
		}
		for _, be := range []string{"be1", "be2"} {
			v, _ := m.Get("portcullis_l4_backend_new_flows_total", "service=web", "backend="+be)
			if v != float64(balanced[be]) {
				t.Errorf("backend %s new_flows = %v, want %d (the connections it answered)", be, v, balanced[be])
			}
			if up, ok := m.Get("portcullis_l4_backend_up", "service=web", "backend="+be); !ok || up != 1 {
				t.Errorf("portcullis_l4_backend_up{backend=%s} = %v (present %v), want 1", be, up, ok)
			}
		}
		for _, drop := range []string{"drop_no_backend", "drop_bad_backend"} {
			if v, _ := m.Get("portcullis_l4_service_"+drop+"_total", "service=web"); v != 0 {
				t.Errorf("service web %s = %v, want 0", drop, v)
			}
		}
		total6 := balanced6["be1"] + balanced6["be2"]
		if v, _ := m.Get("portcullis_l4_service_new_flows_total", "service=web6"); v != float64(total6) {
			t.Errorf("service web6 new_flows = %v, want %d", v, total6)
		}
		if v, ok := m.Get("portcullis_l4_conntrack_capacity"); !ok || v != 16384 {
			t.Errorf("portcullis_l4_conntrack_capacity = %v (present %v), want 16384", v, ok)
		}
	})

	t.Run("removing a backend by reload breaks only its connections", func(t *testing.T) {
		if !balanceOK {
			t.Skip("connections through the VIP failed above")
		}
		open, count := openOnBoth(t, tp, web)
		defer closeAll(open)
		t.Logf("open before reload: %v", count)

		be2Lines := tp.servers["be2"].Lines.Load()
		d.reload(t, daemonConfig(tp, mode, be2Removed))
		st := d.status(t)
		if st.L4 == nil {
			t.Fatal("after reload, /api/v1/status has no l4 section")
		}
		for _, s := range st.L4.Stats.Services {
			if s.Name == "web" && (len(s.Backends) != 1 || s.Backends[0].Name != "be1") {
				t.Errorf("after reload, status shows web's backends as %v, want [be1]", s.Backends)
			}
		}

		// One more line on every open connection, all at once so that the
		// ones that time out share one deadline.
		type outcome struct {
			f   *e2etest.Flow
			err error
		}
		outs := make([]outcome, len(open))
		var wg sync.WaitGroup
		for i, f := range open {
			wg.Go(func() {
				_, err := f.Exchange(2 * time.Second)
				outs[i] = outcome{f, err}
			})
		}
		wg.Wait()
		resets, timeouts := 0, 0
		for _, o := range outs {
			switch o.f.Backend {
			case "be1":
				if o.err != nil {
					t.Errorf("connection on be1 broke after be2 was removed: %v", o.err)
				}
			case "be2":
				switch {
				case o.err == nil:
					t.Errorf("connection %s on removed backend be2 still works", o.f.Conn.LocalAddr())
				case errors.Is(o.err, syscall.ECONNRESET):
					resets++
				case isTimeout(o.err):
					timeouts++
				default:
					t.Errorf("connection %s on be2: want a reset or a timeout, got %v", o.f.Conn.LocalAddr(), o.err)
				}
			}
		}
		t.Logf("be2's %d connections after reload: %d reset, %d timed out", count["be2"], resets, timeouts)
		if got := tp.servers["be2"].Lines.Load(); got != be2Lines {
			t.Errorf("be2 received %d lines after it was removed, want none", got-be2Lines)
		}
		// be1's connections keep going.
		for _, f := range open {
			if f.Backend == "be1" {
				if _, err := f.Exchange(2 * time.Second); err != nil {
					t.Errorf("connection on be1, second line after reload: %v", err)
				}
			}
		}

		const n = 100
		res := e2etest.RunConns(ctx, tp.client, web, n, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("new connections: %s", res.Failures(n))
		}
		if res.PerBackend["be1"] != n {
			t.Errorf("new connections after reload went to %v, want all %d on be1", res.PerBackend, n)
		}

		m := d.metrics(t)
		if v, _ := m.Get("portcullis_l4_service_conntrack_repicks_total", "service=web"); v < float64(count["be2"]) {
			t.Errorf("service web conntrack_repicks = %v, want >= %d (one per be2 connection)", v, count["be2"])
		}
		if _, ok := m.Get("portcullis_l4_backend_new_flows_total", "service=web", "backend=be2"); ok {
			t.Errorf("metrics still list backend be2 after it was removed")
		}
	})

	t.Run("re-adding the backend moves new connections only", func(t *testing.T) {
		if !balanceOK {
			t.Skip("connections through the VIP failed above")
		}
		// All on be1 now. After be2 comes back Maglev would send about
		// half of these tuples to be2; conntrack must keep them on be1.
		var open []*e2etest.Flow
		defer func() { closeAll(open) }()
		for range 16 {
			f, err := e2etest.DialFlow(ctx, tp.client, web, dialTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if f.Backend != "be1" {
				t.Fatalf("connection answered by %s while be2 is out of the config", f.Backend)
			}
			open = append(open, f)
		}
		// This time through the admin API (SIGHUP above).
		d.reloadByAPI(t, daemonConfig(tp, mode, be2Serving))
		for _, f := range open {
			if _, err := f.Exchange(2 * time.Second); err != nil {
				t.Errorf("established connection after be2 was re-added: %v", err)
			}
		}
		const n = 100
		res := e2etest.RunConns(ctx, tp.client, web, n, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("new connections: %s", res.Failures(n))
		}
		t.Logf("%d new connections: %v", n, res.PerBackend)
		for _, be := range []string{"be1", "be2"} {
			if share := float64(res.PerBackend[be]) / n; share < 0.25 || share > 0.75 {
				t.Errorf("%s got %.0f%% of the new connections, want 25%%-75%%", be, 100*share)
			}
		}
	})

	t.Run("draining a backend keeps its connections and sends it no new ones", func(t *testing.T) {
		if !balanceOK {
			t.Skip("connections through the VIP failed above")
		}
		open, count := openOnBoth(t, tp, web)
		defer closeAll(open)
		d.reload(t, daemonConfig(tp, mode, be2Drained))
		for _, f := range open {
			if _, err := f.Exchange(2 * time.Second); err != nil {
				t.Errorf("connection on %s after be2 was drained: %v", f.Backend, err)
			}
		}
		const n = 100
		res := e2etest.RunConns(ctx, tp.client, web, n, 8, 2, dialTimeout)
		if len(res.Errs) > 0 {
			t.Errorf("new connections: %s", res.Failures(n))
		}
		if res.PerBackend["be1"] != n {
			t.Errorf("new connections with be2 drained went to %v, want all %d on be1", res.PerBackend, n)
		}
		m := d.metrics(t)
		if up, _ := m.Get("portcullis_l4_backend_up", "service=web", "backend=be2"); up != 1 {
			t.Errorf("drained be2: portcullis_l4_backend_up = %v, want 1 (drained is not down)", up)
		}
		t.Logf("open across the drain: %v", count)
	})

	// Held across the daemon's stop and restart below.
	var held []*e2etest.Flow
	defer func() { closeAll(held) }()

	t.Run("stopping the daemon detaches XDP", func(t *testing.T) {
		// Back to both backends serving, and connections on both to
		// hold across the restart. Nothing is sent on them while the
		// daemon is down: the LB's own stack would reset them.
		d.reload(t, daemonConfig(tp, mode, be2Serving))
		held, _ = openOnBoth(t, tp, web)
		if err := d.Proc.Stop(5 * time.Second); err != nil {
			t.Errorf("daemon exit after SIGTERM: %v", err)
		}
		if len(d.logLines("XDP detached")) != 1 {
			t.Errorf("no \"XDP detached\" in the daemon's log")
		}
		if got := xdpAttachMode(t, tp); got != 0 {
			t.Errorf("kernel still reports XDP (attach mode %d) on the LB's eth0", got)
		}
		// Without XDP the LB's own stack gets the VIP's SYNs; it holds
		// the address but nothing listens on the port: refused.
		_, err := e2etest.DialFlow(ctx, tp.client, web, dialTimeout)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connection to the VIP with the daemon stopped: %v, want connection refused by the LB", err)
		}
	})

	t.Run("a restarted daemon sends established connections to the same backends", func(t *testing.T) {
		if len(held) == 0 {
			t.Skip("no connections held across the restart")
		}
		// The new program starts with an empty connection table: every
		// held connection's next segment misses it and takes the Maglev
		// table, which the same seed and backends make identical.
		d = startDaemon(t, tp.lb, bin, daemonConfig(tp, mode, be2Serving))
		for _, f := range held {
			if _, err := f.Exchange(2 * time.Second); err != nil {
				t.Errorf("connection on %s after the daemon restarted: %v", f.Backend, err)
			}
		}
		m := d.metrics(t)
		if v, _ := m.Get("portcullis_l4_service_conntrack_misses_non_syn_total", "service=web"); v < float64(len(held)) {
			t.Errorf("service web conntrack_misses_non_syn = %v, want >= %d", v, len(held))
		}
	})
}

// openOnBoth opens connections to addr until at least 20 are open and
// each backend holds 4; with an even split that is nearly always 20, the
// bound of 80 is for safety.
func openOnBoth(t *testing.T, tp *topo, addr string) ([]*e2etest.Flow, map[string]int) {
	t.Helper()
	var open []*e2etest.Flow
	count := map[string]int{}
	for i := 0; i < 80 && (len(open) < 20 || count["be1"] < 4 || count["be2"] < 4); i++ {
		f, err := e2etest.DialFlow(t.Context(), tp.client, addr, dialTimeout)
		if err != nil {
			closeAll(open)
			t.Fatal(err)
		}
		open = append(open, f)
		count[f.Backend]++
	}
	if count["be1"] < 4 || count["be2"] < 4 {
		closeAll(open)
		t.Fatalf("after %d connections: %v, want at least 4 on each backend", len(open), count)
	}
	return open, count
}

func closeAll(fs []*e2etest.Flow) {
	for _, f := range fs {
		f.Close()
	}
}

// kernelXDPMode is IFLA_XDP_ATTACHED's value for each attach mode.
var kernelXDPMode = map[string]uint32{"native": 1 /* XDP_ATTACHED_DRV */, "generic": 2 /* XDP_ATTACHED_SKB */}

// xdpAttachMode is what the kernel says is attached to the LB's eth0
// (0: nothing).
func xdpAttachMode(t *testing.T, tp *topo) uint32 {
	t.Helper()
	lk, err := tp.lb.Handle().LinkByName(tp.lb.Link)
	if err != nil {
		t.Fatal(err)
	}
	if x := lk.Attrs().Xdp; x != nil && x.Attached {
		return x.AttachMode
	}
	return 0
}

func delta(before, after e2etest.Metrics, name string, labels ...string) float64 {
	a, _ := after.Get(name, labels...)
	b, _ := before.Get(name, labels...)
	return a - b
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
