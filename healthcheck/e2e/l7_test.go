package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// These tests run the real daemon on loopback, without root.

// loopDaemon is `portcullis run` on loopback.
type loopDaemon struct {
	*e2etest.LoopDaemon
	webBase string
	http    *http.Client
}

// startLoopDaemon writes cfg (with ADMIN and WEB replaced by free ports)
// and runs the daemon until the test ends.
func startLoopDaemon(t *testing.T, cfg string) *loopDaemon {
	t.Helper()
	admin, web := e2etest.FreePort(t), e2etest.FreePort(t)
	cfg = strings.NewReplacer("ADMIN", strconv.Itoa(admin), "WEB", strconv.Itoa(web)).Replace(cfg)
	d := e2etest.StartLoop(t, e2etest.LoopOptions{
		AdminPort:    admin,
		Config:       cfg,
		Args:         []string{"--watch=false"},
		ReadyTimeout: 15 * time.Second,
	})
	return &loopDaemon{LoopDaemon: d, webBase: fmt.Sprintf("http://127.0.0.1:%d", web), http: d.Client}
}

func (d *loopDaemon) dashboard() (*dashboard.Data, error) {
	var out dashboard.Data
	if err := e2etest.GetJSON(d.http, d.AdminBase+"/api/v1/dashboard", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// requests sends n GETs through the daemon's L7 listener and counts the
// answers by body (the upstream's name) and by status.
func (d *loopDaemon) requests(n int) (byBody map[string]int, byStatus map[int]int, err error) {
	byBody, byStatus = map[string]int{}, map[int]int{}
	for i := range n {
		resp, err := d.http.Get(fmt.Sprintf("%s/req/%d", d.webBase, i))
		if err != nil {
			return byBody, byStatus, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return byBody, byStatus, err
		}
		byStatus[resp.StatusCode]++
		byBody[strings.TrimSpace(string(b))]++
	}
	return byBody, byStatus, nil
}

// upstream is an HTTP server in the test that names itself in every
// answer, fails (500) on everything while failing is set, and counts the
// requests that are not health checks.
type upstream struct {
	name    string
	srv     *httptest.Server
	failing atomic.Bool
	served  atomic.Int64 // non-health requests
	checks  atomic.Int64 // health-check requests
}

func newUpstream(t *testing.T, name, addr string) *upstream {
	t.Helper()
	u := &upstream{name: name}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			u.checks.Add(1)
		} else {
			u.served.Add(1)
		}
		if u.failing.Load() {
			http.Error(w, u.name+" failing", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, u.name)
	})
	if addr == "" {
		u.srv = httptest.NewServer(h)
	} else {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		u.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
		u.srv.Start()
	}
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// endpointLines is the YAML list of the upstreams' addresses, indented as
// a pool's endpoints.
func endpointLines(ups []*upstream) string {
	var b strings.Builder
	for _, u := range ups {
		fmt.Fprintf(&b, "        - address: %s\n", u.addr())
	}
	return b.String()
}

// TestL7PoolHealth: an http check on a pool takes an upstream that
// answers 500 out of the daemon's pool, and puts it back when it recovers.
func TestL7PoolHealth(t *testing.T) {
	ups := []*upstream{newUpstream(t, "u1", ""), newUpstream(t, "u2", ""), newUpstream(t, "u3", "")}
	// Outlier ejection and retries off: only the health check may take
	// an upstream out, and a 500 reaches the client as it is.
	d := startLoopDaemon(t, `node:
  name: l7e2e
log:
  format: json
admin:
  listen: 127.0.0.1:ADMIN
  token: l7-token
shutdown:
  drain: 1s
l7:
  listeners:
    - name: web
      address: 127.0.0.1:WEB
  pools:
    - name: app
      algorithm: round_robin
      retries:
        attempts: 0
      outlier:
        consecutive_5xx: 0
        consecutive_gateway_errors: 0
        consecutive_connect_errors: 0
      endpoints:
`+endpointLines(ups)+`  routes:
    - name: all
      pool: app
healthchecks:
  - name: app-check
    pool: app
    type: http
    path: /healthz
    interval: 100ms
    timeout: 80ms
    fall: 1
    rise: 1
`)
	u2 := ups[1].addr()
	// The dashboard lists every endpoint; effective_weight is the weight
	// the pool balances with, absent (or 0) once health took it out.
	state := func(want string) func() (bool, string) {
		return func() (bool, string) {
			dash, err := d.dashboard()
			if err != nil {
				return false, err.Error()
			}
			var bad []string
			for _, u := range ups {
				w := "up"
				if u.addr() == u2 {
					w = want
				}
				e := poolEndpoint(dash, "app", u.addr())
				switch {
				case e == nil:
					bad = append(bad, u.name+" missing")
				case e.Health.State != w || (w == "up") != (e.EffectiveWeight != nil && *e.EffectiveWeight > 0):
					ew := "absent"
					if e.EffectiveWeight != nil {
						ew = strconv.Itoa(*e.EffectiveWeight)
					}
					bad = append(bad, fmt.Sprintf("%s: state %s effective weight %s detail %q", u.name, e.Health.State, ew, e.Health.Detail))
				}
			}
			return len(bad) == 0, strings.Join(bad, "; ")
		}
	}
	e2etest.Eventually(t, "all upstreams checked up", 5*time.Second, 20*time.Millisecond, state("up"))
	for _, u := range ups {
		if u.checks.Load() == 0 {
			t.Errorf("%s got no health check on /healthz", u.name)
		}
	}

	t.Run("all three serve", func(t *testing.T) {
		byBody, byStatus, err := d.requests(30)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("30 requests: %v %v", byBody, byStatus)
		for _, u := range ups {
			if byBody[u.name] < 5 {
				t.Errorf("%s answered %d of 30 requests", u.name, byBody[u.name])
			}
		}
	})

	var flipped time.Time
	t.Run("an upstream answering 500 leaves the pool", func(t *testing.T) {
		flipped = time.Now()
		ups[1].failing.Store(true)
		took := e2etest.Eventually(t, "u2 down and out of the pool", 2*time.Second, 10*time.Millisecond, state("down"))
		t.Logf("u2 out of the pool %v after it started failing (interval 100ms, fall 1)", took.Round(time.Millisecond))
		before := ups[1].served.Load()
		byBody, byStatus, err := d.requests(60)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("u2 failing, 60 requests: %v %v", byBody, byStatus)
		if n := ups[1].served.Load() - before; n != 0 {
			t.Errorf("u2 (down) received %d of 60 requests", n)
		}
		if byStatus[http.StatusOK] != 60 {
			t.Errorf("statuses %v, want 60 × 200", byStatus)
		}
	})

	t.Run("it comes back when it recovers", func(t *testing.T) {
		recovered := time.Now()
		ups[1].failing.Store(false)
		took := e2etest.Eventually(t, "u2 up and back in the pool", 2*time.Second, 10*time.Millisecond, state("up"))
		t.Logf("u2 back in the pool %v after it recovered (rise 1)", took.Round(time.Millisecond))
		before := ups[1].served.Load()
		byBody, byStatus, err := d.requests(60)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("u2 recovered, 60 requests: %v %v", byBody, byStatus)
		if n := ups[1].served.Load() - before; n < 10 {
			t.Errorf("u2 received %d of 60 requests after it came back, want at least 10", n)
		}
		dash, err := d.dashboard()
		if err != nil {
			t.Fatal(err)
		}
		e := poolEndpoint(dash, "app", u2)
		if !hasTransition(e.Health.History, "up", "down", flipped) || !hasTransition(e.Health.History, "down", "up", recovered) {
			t.Errorf("u2's dashboard history lacks up→down and down→up: %s", historyString(e.Health.History))
		}
		if dash.Pools[0].CheckName != "app-check" || !dash.Pools[0].Checked {
			t.Errorf("pool app: checked %v by %q, want app-check", dash.Pools[0].Checked, dash.Pools[0].CheckName)
		}
	})
}

// dnsServer answers A queries for one name with a set that the test
// changes, TTL 1s.
type dnsServer struct {
	name string
	srv  *dns.Server
	addr string
	ips  atomic.Pointer[[]string]
	hits atomic.Int64
}

func startDNS(t *testing.T, name string, ips ...string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{name: dns.Fqdn(name), addr: pc.LocalAddr().String()}
	s.set(ips...)
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			s.hits.Add(1)
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			q := r.Question[0]
			if !strings.EqualFold(q.Name, s.name) {
				m.Rcode = dns.RcodeNameError
			} else if q.Qtype == dns.TypeA {
				for _, ip := range *s.ips.Load() {
					m.Answer = append(m.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: s.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
						A:   net.ParseIP(ip),
					})
				}
			}
			w.WriteMsg(m)
		})}
	go s.srv.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(s.stop)
	return s
}

func (s *dnsServer) set(ips ...string) { s.ips.Store(&ips) }

func (s *dnsServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.ShutdownContext(ctx)
}

// TestDNSDiscoveryThroughTheDaemon: a pool filled by DNS A records follows
// the answer, and keeps its last set (shown as stale) when the DNS server
// is gone.
func TestDNSDiscoveryThroughTheDaemon(t *testing.T) {
	static := newUpstream(t, "static", "")
	// Discovered upstreams share one port (A records carry none) on two
	// loopback addresses.
	d2 := newUpstream(t, "d2", "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(d2.addr())
	var d3 *upstream
	ln, err := net.Listen("tcp", "127.0.0.3:"+port)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3:%s next to 127.0.0.2 (loopback /8 not usable here?): %v", port, err)
	}
	ln.Close()
	d3 = newUpstream(t, "d3", "127.0.0.3:"+port)

	ns := startDNS(t, "app.hc-e2e.test", "127.0.0.2")
	d := startLoopDaemon(t, `node:
  name: dnse2e
log:
  format: json
admin:
  listen: 127.0.0.1:ADMIN
  token: dns-token
shutdown:
  drain: 1s
l7:
  listeners:
    - name: web
      address: 127.0.0.1:WEB
  pools:
    - name: app
      endpoints:
        - address: `+static.addr()+`
  routes:
    - name: all
      pool: app
discovery:
  - name: app-dns
    pool: app
    provider: dns
    dns: app.hc-e2e.test
    record_type: a
    port: `+port+`
    resolvers: [`+ns.addr+`]
    min_refresh: 200ms
    max_refresh: 2s
    throttle: 200ms
    retry_interval: 300ms
`)
	discoveryState := func() (string, string, int, error) {
		dash, err := d.dashboard()
		if err != nil {
			return "", "", 0, err
		}
		for _, ds := range dash.Discovery {
			if ds.Name == "app-dns" {
				return ds.State, ds.Error, ds.Endpoints, nil
			}
		}
		return "", "", 0, fmt.Errorf("no discovery source app-dns in the dashboard: %+v", dash.Discovery)
	}
	// onlyFrom: a batch of requests is answered by name alone, all 200.
	onlyFrom := func(name string) func() (bool, string) {
		return func() (bool, string) {
			byBody, byStatus, err := d.requests(6)
			if err != nil {
				return false, err.Error()
			}
			return byBody[name] == 6 && byStatus[200] == 6, fmt.Sprintf("%v %v", byBody, byStatus)
		}
	}

	t.Run("the discovered set replaces the static endpoints", func(t *testing.T) {
		took := e2etest.Eventually(t, "requests reach d2 only", 5*time.Second, 20*time.Millisecond, onlyFrom("d2"))
		t.Logf("pool on the DNS answer %v after the daemon was ready", took.Round(time.Millisecond))
		st, errText, n, err := discoveryState()
		if err != nil || st != "ok" || n != 1 {
			t.Errorf("discovery app-dns: state %q endpoints %d error %q (%v), want ok with 1", st, n, errText, err)
		}
	})

	staticServed := static.served.Load() // before the first DNS answer, the static endpoint serves

	t.Run("a changed answer moves the pool", func(t *testing.T) {
		ns.set("127.0.0.3")
		took := e2etest.Eventually(t, "requests reach d3 only", 6*time.Second, 50*time.Millisecond, onlyFrom("d3"))
		t.Logf("pool followed the DNS change in %v (TTL 1s, throttle 200ms)", took.Round(time.Millisecond))
		ns.set("127.0.0.2", "127.0.0.3")
		took = e2etest.Eventually(t, "requests reach d2 and d3", 6*time.Second, 50*time.Millisecond, func() (bool, string) {
			byBody, byStatus, err := d.requests(10)
			if err != nil {
				return false, err.Error()
			}
			return byBody["d2"] > 0 && byBody["d3"] > 0 && byStatus[200] == 10, fmt.Sprintf("%v %v", byBody, byStatus)
		})
		t.Logf("pool grew to both in %v", took.Round(time.Millisecond))
		ns.set("127.0.0.3")
		e2etest.Eventually(t, "requests reach d3 only again", 6*time.Second, 50*time.Millisecond, onlyFrom("d3"))
	})

	t.Run("the DNS server gone: the pool keeps its last set, shown stale", func(t *testing.T) {
		ns.stop()
		stopped := time.Now()
		took := e2etest.Eventually(t, "discovery stale", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
			st, errText, n, err := discoveryState()
			if err != nil {
				return false, err.Error()
			}
			return st == "stale" && errText != "" && n == 1, fmt.Sprintf("state %q endpoints %d error %q", st, n, errText)
		})
		t.Logf("discovery stale %v after the DNS server stopped", took.Round(time.Millisecond))
		var hs healthSnapshot
		if err := e2etest.GetJSON(d.http, d.AdminBase+"/api/v1/health", &hs); err != nil {
			t.Fatal(err)
		}
		if len(hs.Discovery) != 1 || hs.Discovery[0].State != "stale" {
			t.Errorf("GET /api/v1/health discovery %+v, want app-dns stale", hs.Discovery)
		}
		// And in the metrics an alert would read.
		m, err := e2etest.Scrape(d.http, d.AdminBase+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := m.Get("portcullis_discovery_up", "name=app-dns", "provider=dns", "pool=app"); !ok || v != 0 {
			t.Errorf("portcullis_discovery_up for the stale source = %v (present %v), want 0", v, ok)
		}
		if v, ok := m.Get("portcullis_discovery_endpoints", "name=app-dns", "provider=dns", "pool=app"); !ok || v != 1 {
			t.Errorf("portcullis_discovery_endpoints = %v (present %v), want the last set's 1", v, ok)
		}
		// Several more lookups fail (retry 300ms) while requests go on.
		d3Before := d3.served.Load()
		for time.Since(stopped) < 2*time.Second {
			if ok, last := onlyFrom("d3")(); !ok {
				t.Fatalf("with the DNS server gone, requests: %s; want all from d3", last)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st, _, n, _ := discoveryState(); st != "stale" || n != 1 {
			t.Errorf("discovery after 2s without DNS: state %q endpoints %d, want stale 1", st, n)
		}
		if n := static.served.Load() - staticServed; n != 0 {
			t.Errorf("the static endpoint, replaced by discovery, served %d requests after the first answer", n)
		}
		if d3.served.Load() == d3Before {
			t.Errorf("d3 served nothing while DNS was down")
		}
	})
}
