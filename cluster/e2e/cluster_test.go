//go:build linux

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

var (
	webAddr = netip.AddrPortFrom(VIP, VIPPort).String()
)

// within bounds every wait of these tests.
const within = 8 * time.Second

type clusterTest struct {
	t    *testing.T
	lab  *Lab
	a, b *Daemon
	cfg  map[string]NodeConfig
}

func xdpMode() string {
	if m := os.Getenv("PORTCULLIS_E2E_XDP_MODE"); m != "" {
		return m
	}
	return "native"
}

func newClusterTest(t *testing.T) *clusterTest {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP and floating addresses")
	}
	bin := testbin.Portcullis(t)
	nl := netlab.New(t, netlab.Options{Prefix: "clue2e", StopGrace: 3 * time.Second})
	mode := xdpMode()
	dir := t.TempDir()
	if d := os.Getenv("PORTCULLIS_E2E_LOGDIR"); d != "" {
		// Configs and daemon logs are kept there (debugging).
		dir = filepath.Join(d, fmt.Sprintf("%s-%d", t.Name(), time.Now().Unix()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lab, err := Build(nl, Options{Bin: bin, Dir: dir, XDPMode: mode, Backends: true})
	if err != nil {
		e2etest.SkipIfUnsupported(t, "the lab", err)
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	e2etest.RequireXDP(t, lab.A, mode)
	ct := &clusterTest{t: t, lab: lab, cfg: map[string]NodeConfig{
		"a": {Name: "a", Priority: 200, Addr: AAddr.Addr(), KeyFile: lab.KeyFile},
		"b": {Name: "b", Priority: 100, Addr: BAddr.Addr(), KeyFile: lab.KeyFile},
	}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []*Daemon{ct.a, ct.b} {
				if d != nil && !d.Proc.Exited() {
					// A goroutine dump in the log, in case it is stuck.
					d.Proc.Kill(syscall.SIGQUIT)
					d.Proc.Wait()
				}
			}
			for _, d := range []*Daemon{ct.a, ct.b} {
				if d != nil {
					t.Logf("daemon %s log, last 6 KiB:\n%s", d.Name, e2etest.Tail(d.Proc.Logs(), 6144))
				}
			}
		}
		for _, d := range []*Daemon{ct.a, ct.b} {
			if d != nil {
				d.Proc.Stop(3 * time.Second)
			}
		}
	})
	return ct
}

func (ct *clusterTest) start(name string) *Daemon {
	ct.t.Helper()
	h := ct.lab.A
	if name == "b" {
		h = ct.lab.B
	}
	d, err := ct.lab.StartDaemon(h, ct.lab.Config(ct.cfg[name]))
	if err != nil {
		ct.t.Fatal(err)
	}
	if name == "a" {
		ct.a = d
	} else {
		ct.b = d
	}
	return d
}

// settled waits until owner holds the VIP on its eth0, the other node
// does not, and every running daemon's view names owner.
func (ct *clusterTest) settled(owner string) time.Duration {
	ct.t.Helper()
	var last string
	took, ok := WaitFor(within, func() bool {
		var b strings.Builder
		good := true
		for _, d := range []*Daemon{ct.a, ct.b} {
			// A killed node's addresses stay as it left them.
			if d == nil || d.Proc.Exited() {
				continue
			}
			h := d.Host
			has, err := HasVIP(h)
			fmt.Fprintf(&b, "%s holds VIP: %v (%v); ", h.Name, has, err)
			if has != (h.Name == owner) {
				good = false
			}
		}
		for _, d := range []*Daemon{ct.a, ct.b} {
			if d == nil || d.Proc.Exited() {
				continue
			}
			cv, err := d.Cluster()
			fmt.Fprintf(&b, "%s says owner %q (%v); ", d.Name, cv.Owners["web"], err)
			if err != nil || cv.Owners["web"] != owner {
				good = false
			}
		}
		last = b.String()
		return good
	})
	if !ok {
		ct.t.Fatalf("VIP not settled on %q within %s: %s", owner, within, last)
	}
	return took
}

// serves checks that new connections through the VIP reach a backend, on
// the XDP port and the L7 port.
func (ct *clusterTest) serves() {
	ct.t.Helper()
	for i := range 4 {
		f, err := DialFlow(ct.t.Context(), ct.lab.Client, webAddr, 3*time.Second)
		if err != nil {
			ct.t.Fatalf("connection %d through the VIP: %v", i, err)
		}
		if f.Backend != "be1" && f.Backend != "be2" {
			ct.t.Errorf("connection answered by %q, want be1 or be2", f.Backend)
		}
		f.Close()
	}
	// Through the L7 VIP: the owner's XDP spreads new connections over
	// both proxies (Maglev), so several requests reach both, or only the
	// live one when the other node is down.
	for i := range 8 {
		if who, err := ct.httpGet(3 * time.Second); err != nil {
			ct.t.Fatalf("HTTP request %d through the L7 VIP: %v", i, err)
		} else if who != "be1" && who != "be2" {
			ct.t.Errorf("HTTP answered by %q, want be1 or be2", who)
		}
	}
}

// handoffReady checks what the daemon does for the L4 → L7 handoff on a
// running node: the VIP on lo, and ARP settings under which only the
// node holding the address on eth0 answers ARP for it.
func (ct *clusterTest) handoffReady(d *Daemon) {
	ct.t.Helper()
	on, err := hasAddr(d.Host, "lo")
	if err != nil || !on {
		ct.t.Errorf("%s: VIP on lo: %v (%v), want true", d.Name, on, err)
	}
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.eth0.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.eth0.arp_announce", "2"},
	} {
		if v, err := d.Host.SysctlGet(kv[0]); err != nil || v != kv[1] {
			ct.t.Errorf("%s: %s = %q (%v), want %s", d.Name, kv[0], v, err, kv[1])
		}
	}
}

// arpOwner asks for the VIP's MAC from the client (a fresh neighbour
// entry) and returns the host whose eth0 has it.
func (ct *clusterTest) arpOwner() (string, error) {
	c := ct.lab.Client
	lk, err := c.Handle().LinkByName(c.Link)
	if err != nil {
		return "", err
	}
	_ = c.Handle().NeighDel(&netlink.Neigh{LinkIndex: lk.Attrs().Index, IP: net.IP(VIP.AsSlice())})
	if _, err := ct.httpGet(3 * time.Second); err != nil {
		return "", err
	}
	ns, err := c.Handle().NeighList(lk.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == VIP {
			for _, h := range []*netlab.Host{ct.lab.A, ct.lab.B} {
				if n.HardwareAddr.String() == h.MAC.String() {
					return h.Name, nil
				}
			}
			return n.HardwareAddr.String(), nil
		}
	}
	return "", fmt.Errorf("no neighbour entry for the VIP on the client")
}

func (ct *clusterTest) httpGet(timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ct.t.Context(), timeout)
	defer cancel()
	c, err := ct.lab.Client.Dial(ctx, "tcp", netip.AddrPortFrom(VIP, L7Port).String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") {
		return "", fmt.Errorf("HTTP answer %q", e2etest.Tail(string(b), 200))
	}
	return strings.TrimSpace(body), nil
}

func (ct *clusterTest) metric(d *Daemon, name string, labels ...string) float64 {
	ct.t.Helper()
	m, err := d.Metrics()
	if err != nil {
		ct.t.Fatalf("%s /metrics: %v", d.Name, err)
	}
	v, ok := m.Get(name, labels...)
	if !ok {
		ct.t.Fatalf("%s /metrics has no %s%v", d.Name, name, labels)
	}
	return v
}

// memberWatch polls a's and b's GET /api/v1/cluster until stopped and
// records whether they ever listed name.
type memberWatch struct {
	stop   chan struct{}
	done   chan struct{}
	polls  atomic.Int64
	mu     sync.Mutex
	listed []string
}

func (ct *clusterTest) watchMembers(name string) *memberWatch {
	w := &memberWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, d := range []*Daemon{ct.a, ct.b} {
				if d == nil || d.Proc.Exited() {
					continue
				}
				cv, err := d.Cluster()
				if err != nil {
					continue
				}
				w.polls.Add(1)
				if cv.Listed(name) {
					w.mu.Lock()
					w.listed = append(w.listed, fmt.Sprintf("%s at %s", d.Name, time.Now().Format("15:04:05.000")))
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

func (w *memberWatch) finish() ([]string, int64) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.listed, w.polls.Load()
}

// TestClusterFailover runs the pair through every case of issue 5 in one
// lab, in order: each step starts from the state the previous one left.
func TestClusterFailover(t *testing.T) {
	ct := newClusterTest(t)
	ctx := t.Context()
	lab := ct.lab

	// Priority 200 first, so it is a that claims the VIP.
	ct.start("a")
	ct.start("b")

	// Node c has the wrong gossip key and lists a and b as peers; it has
	// no VIP to claim. It runs for the whole test.
	hc, err := lab.AddHostC()
	if err != nil {
		t.Fatal(err)
	}
	cCfg := NodeConfig{Name: "c", Priority: 50, Addr: CAddr.Addr(), KeyFile: lab.WrongKeyFile, NoVIPs: true}
	c, err := lab.StartDaemon(hc, lab.Config(cCfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Proc.Stop(3 * time.Second)
	watch := ct.watchMembers("c")

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow() // the next steps start from this one's state
		}
	}

	step("1 the owner holds the VIP and serves through it", func(t *testing.T) {
		ct.t = t
		took := ct.settled("a")
		t.Logf("VIP on a %s after both nodes were up", took.Round(time.Millisecond))
		_, ok := WaitFor(within, func() bool {
			cv, err := ct.b.Cluster()
			return err == nil && cv.Healthy("a") && cv.Healthy("b")
		})
		if !ok {
			cv, _ := ct.b.Cluster()
			t.Fatalf("b does not see a and b alive and healthy: %+v", cv)
		}
		ct.serves()
		ct.handoffReady(ct.a)
		ct.handoffReady(ct.b)
		if who, err := ct.arpOwner(); err != nil || who != "a" {
			t.Errorf("the client's ARP for the VIP was answered by %q (%v), want a only (b has it on lo, arp_ignore=1)", who, err)
		}
		if v := ct.metric(ct.a, "portcullis_vip_owner", "vip=web"); v != 1 {
			t.Errorf("a: portcullis_vip_owner{vip=web} = %v, want 1", v)
		}
		if v := ct.metric(ct.b, "portcullis_vip_owner", "vip=web"); v != 0 {
			t.Errorf("b: portcullis_vip_owner{vip=web} = %v, want 0", v)
		}
	})

	// Long-lived flows opened before the crash, enough to cover both
	// backends.
	var flows []*Flow
	defer func() {
		for _, f := range flows {
			f.Close()
		}
	}()
	step("2 crash of the owner: b takes the VIP, new connections work again", func(t *testing.T) {
		ct.t = t
		seen := map[string]bool{}
		for i := 0; i < 24 && (len(flows) < 4 || len(seen) < 2); i++ {
			f, err := DialFlow(ctx, lab.Client, webAddr, 3*time.Second)
			if err != nil {
				t.Fatalf("long-lived flow %d: %v", i, err)
			}
			flows = append(flows, f)
			seen[f.Backend] = true
		}
		if len(seen) < 2 {
			t.Logf("the long-lived flows all landed on %v", seen)
		}
		p := StartProber(lab.Client, webAddr, 20*time.Millisecond, 300*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		crashAt := time.Now()
		if err := ct.a.Crash(); err != nil {
			p.Stop()
			t.Fatal(err)
		}
		var vipAt time.Duration
		_, ok := WaitFor(within, func() bool {
			has, _ := HasVIP(lab.B)
			if has && vipAt == 0 {
				vipAt = time.Since(crashAt)
			}
			_, _, served := FirstOKAfter(p.Results(), crashAt)
			return has && served
		})
		time.Sleep(300 * time.Millisecond)
		rs := p.Stop()
		first, gap, served := FirstOKAfter(rs, crashAt)
		if !ok || !served {
			t.Fatalf("no service through the VIP within %s of the crash (VIP on b after %s)", within, vipAt)
		}
		failed, after := 0, 0
		for _, r := range rs {
			if r.Start.Before(crashAt) {
				continue
			}
			if r.Err != nil {
				failed++
				if r.Start.After(first.End) {
					after++
				}
			}
		}
		t.Logf("failover gap (crash → first new connection served): %s; VIP on b's eth0 after %s; %d probes since the crash, %d failed (%d of them started after the first success); first success answered by %s",
			gap.Round(time.Millisecond), vipAt.Round(time.Millisecond), len(rs), failed, after, first.Who)
		if gap > 5*time.Second {
			t.Errorf("failover gap %s, want < 5s", gap)
		}
		ct.settled("b")
	})

	step("3 long-lived flows opened before the crash keep working through b", func(t *testing.T) {
		ct.t = t
		for i, f := range flows {
			if _, err := f.Exchange(3 * time.Second); err != nil {
				t.Errorf("flow %d (on %s): %v", i, f.Backend, err)
				continue
			}
			if _, err := f.Exchange(3 * time.Second); err != nil {
				t.Errorf("flow %d (on %s), second exchange: %v", i, f.Backend, err)
			}
		}
		t.Logf("%d flows exchanged data both ways after the failover", len(flows))
		// New L7 connections: b's Maglev table no longer sends any to
		// a's (dead) proxy.
		for i := range 12 {
			if _, err := ct.httpGet(3 * time.Second); err != nil {
				t.Errorf("L7 request %d after the crash: %v", i, err)
			}
		}
	})

	step("4 a restarted a does not take the VIP back (non-preemptive)", func(t *testing.T) {
		ct.t = t
		if err := lab.A.SetLinkUp(); err != nil {
			t.Fatal(err)
		}
		// kill -9 left the VIP on a's eth0; the new process removes it
		// before it joins.
		ct.start("a")
		if has, _ := HasVIP(lab.A); has {
			t.Errorf("a still has the VIP on eth0 after the restart (left by the killed process)")
		}
		_, ok := WaitFor(within, func() bool {
			cv, err := ct.b.Cluster()
			return err == nil && cv.Healthy("a")
		})
		if !ok {
			t.Fatal("b does not see the restarted a alive and healthy")
		}
		// Give a several probe and gossip rounds to (wrongly) claim it.
		time.Sleep(1500 * time.Millisecond)
		ct.settled("b")
		ct.serves()
	})

	step("5 release through the admin API: 401 without the token, then the VIP moves to a", func(t *testing.T) {
		ct.t = t
		code, body, err := ct.b.Release("web", "")
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusUnauthorized {
			t.Errorf("release without a token: %d %s, want 401", code, body)
		}
		code, body, err = ct.b.Release("web", "wrong-"+AdminToken)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("release with a wrong token: %d %s %v, want 401", code, body, err)
		}
		if has, _ := HasVIP(lab.B); !has {
			t.Fatal("the refused release moved the VIP off b")
		}
		code, body, err = ct.b.Release("web", AdminToken)
		if err != nil || code != http.StatusOK {
			t.Fatalf("release with the token: %d %s %v, want 200", code, body, err)
		}
		took := ct.settled("a")
		t.Logf("VIP on a %s after the release", took.Round(time.Millisecond))
		ct.serves()
	})

	step("6 zero failed requests across a graceful SIGTERM of the owner", func(t *testing.T) {
		ct.t = t
		var (
			stop    atomic.Bool
			mu      sync.Mutex
			errs    []string
			n4, n7  int
			slowest time.Duration
			wg      sync.WaitGroup
		)
		// Two clients: one through the XDP VIP port (echo over DSR), one
		// HTTP through the L7 listener; each request a new connection.
		worker := func(l7 bool) {
			for i := 0; !stop.Load() && i < 100000; i++ {
				start := time.Now()
				var err error
				if l7 {
					_, err = ct.httpGet(5 * time.Second)
				} else {
					var f *Flow
					f, err = DialFlow(ctx, lab.Client, webAddr, 5*time.Second)
					if err == nil {
						f.Close()
					}
				}
				el := time.Since(start)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s l7=%v: %v", start.Format("15:04:05.000"), l7, err))
				} else if l7 {
					n7++
				} else {
					n4++
				}
				slowest = max(slowest, el)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}
		wg.Go(func() { worker(false) })
		wg.Go(func() { worker(true) })
		time.Sleep(500 * time.Millisecond)
		termAt := time.Now()
		if err := ct.a.Proc.Kill(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ct.a.Proc.Done():
		case <-time.After(within):
			t.Errorf("a did not exit within %s of SIGTERM", within)
		}
		exited := time.Since(termAt)
		time.Sleep(time.Second)
		stop.Store(true)
		wg.Wait()
		t.Logf("SIGTERM → a exited in %s; %d XDP and %d L7 requests, slowest %s, %d failed",
			exited.Round(time.Millisecond), n4, n7, slowest.Round(time.Millisecond), len(errs))
		// The L7 VIP is an XDP VIP over both proxies and both nodes
		// hold it on lo: b's XDP sends a's in-flight connections back to
		// a (same Maglev table), which drains them before it exits.
		for _, e := range errs {
			t.Errorf("failed request: %s", e)
		}
		if n4 == 0 || n7 == 0 {
			t.Errorf("no successful requests: XDP %d, L7 %d", n4, n7)
		}
		if recs := ct.a.LogLines("handover done"); len(recs) == 0 {
			t.Errorf("a did not log the handover")
		}
		if on, err := hasAddr(lab.A, "lo"); err != nil || on {
			t.Errorf("a exited and left the VIP on lo: %v (%v)", on, err)
		}
		ct.settled("b")
		if who, err := ct.arpOwner(); err != nil || who != "b" {
			t.Errorf("the client's ARP for the VIP was answered by %q (%v), want b", who, err)
		}
	})

	step("7 witness lost by the owner: it gives the VIP away", func(t *testing.T) {
		ct.t = t
		ct.start("a")
		_, ok := WaitFor(within, func() bool {
			cv, err := ct.b.Cluster()
			return err == nil && cv.Healthy("a")
		})
		if !ok {
			t.Fatal("b does not see the restarted a healthy")
		}
		ct.settled("b")
		if err := BlockWitness(lab.B); err != nil {
			t.Fatal(err)
		}
		took := ct.settled("a")
		t.Logf("VIP on a %s after b lost its witness", took.Round(time.Millisecond))
		if v := ct.metric(ct.b, "portcullis_cluster_witness_up"); v != 0 {
			t.Errorf("b: portcullis_cluster_witness_up = %v, want 0", v)
		}
		if v := ct.metric(ct.a, "portcullis_vip_unowned", "vip=web"); v != 0 {
			t.Errorf("a: portcullis_vip_unowned{vip=web} = %v, want 0", v)
		}
		ct.serves()
	})

	step("8 witness lost by both: nobody holds the VIP, portcullis_vip_unowned is 1", func(t *testing.T) {
		ct.t = t
		if err := BlockWitness(lab.A); err != nil {
			t.Fatal(err)
		}
		ct.settled("")
		// And it stays so: nobody claims it blind.
		time.Sleep(time.Second)
		ct.settled("")
		for _, d := range []*Daemon{ct.a, ct.b} {
			if v := ct.metric(d, "portcullis_vip_unowned", "vip=web"); v != 1 {
				t.Errorf("%s: portcullis_vip_unowned{vip=web} = %v, want 1", d.Name, v)
			}
			if v := ct.metric(d, "portcullis_vip_owner", "vip=web"); v != 0 {
				t.Errorf("%s: portcullis_vip_owner{vip=web} = %v, want 0", d.Name, v)
			}
		}
		// Witness back for b only: b claims it (a still cannot).
		if err := UnblockWitness(lab.B); err != nil {
			t.Fatal(err)
		}
		took := ct.settled("b")
		t.Logf("VIP on b %s after b reached its witness again", took.Round(time.Millisecond))
		if err := UnblockWitness(lab.A); err != nil {
			t.Fatal(err)
		}
		// a's recovery changes only its metadata (no VIP moves): it must
		// still be gossiped at once, not at the next push/pull (30 s).
		took, ok := WaitFor(3*time.Second, func() bool {
			cv, err := ct.b.Cluster()
			return err == nil && cv.Healthy("a")
		})
		if !ok {
			t.Errorf("b still sees a unhealthy 3s after a reached its witness again: a health change was not gossiped")
		} else {
			t.Logf("b sees a healthy %s after a's witness came back", took.Round(time.Millisecond))
		}
		ct.settled("b")
	})

	step("9 preempt: true (reload) moves the VIP back to a", func(t *testing.T) {
		ct.t = t
		for _, name := range []string{"b", "a"} {
			c := ct.cfg[name]
			c.Preempt = true
			ct.cfg[name] = c
		}
		if err := ct.b.Reload(lab.Config(ct.cfg["b"])); err != nil {
			t.Fatal(err)
		}
		if err := ct.a.Reload(lab.Config(ct.cfg["a"])); err != nil {
			t.Fatal(err)
		}
		took := ct.settled("a")
		t.Logf("VIP on a %s after both reloaded with preempt: true", took.Round(time.Millisecond))
		ct.serves()
	})

	step("10 the node with the wrong gossip key is never a member", func(t *testing.T) {
		ct.t = t
		listed, polls := watch.finish()
		if polls < 20 {
			t.Errorf("only %d polls of a's and b's member lists", polls)
		}
		for _, l := range listed {
			t.Errorf("c listed as a member by %s", l)
		}
		if c.Proc.Exited() {
			t.Fatalf("c exited: %v", c.Proc.Wait())
		}
		cv, err := c.Cluster()
		if err != nil {
			t.Fatal(err)
		}
		if cv.Listed("a") || cv.Listed("b") {
			t.Errorf("c lists a or b as members: %+v", cv.Members)
		}
		for _, d := range []*Daemon{ct.a, ct.b} {
			cv, err := d.Cluster()
			if err != nil {
				t.Fatal(err)
			}
			if !cv.Alive("a") || !cv.Alive("b") || cv.Listed("c") {
				t.Errorf("%s's members: %+v, want a and b alive and no c", d.Name, cv.Members)
			}
		}
		// c did try: memberlist on a and b rejected what it sent.
		rejected := len(ct.a.LogLines("no installed keys could decrypt")) + len(ct.b.LogLines("no installed keys could decrypt"))
		if rejected == 0 {
			t.Errorf("neither a nor b logged a message it could not decrypt: did c ever try to join?")
		}
		t.Logf("%d polls of a's and b's GET /api/v1/cluster, c never listed; %d undecryptable messages logged by a and b", polls, rejected)
	})
}
