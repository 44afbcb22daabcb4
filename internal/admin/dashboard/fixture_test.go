package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture serves the dashboard with a hand-made document: what the real
// daemon cannot show in a test without root and a second node (cluster
// members, VIPs with traffic, discovery that went stale), and the API
// failing.
type fixture struct {
	mu       sync.Mutex
	doc      Data
	start    time.Time
	fail     bool
	refuse   string // when set, drains fail with this error
	token    string
	drains   []string
	releases []string
}

func newFixture() *fixture {
	now := time.Now().UTC()
	t := func(ago time.Duration) time.Time { return now.Add(-ago) }
	up := func(since time.Duration) Health {
		ok := true
		at := now
		return Health{State: "up", Since: t(since), LastOK: &ok, Detail: "200 OK", LatencyMS: 1.7, CheckedAt: &at, Weight: 100,
			History: []Transition{{At: t(since), From: "unknown", To: "up", Reason: "first check passed: 200 OK", LatencyMS: 1.2}}}
	}
	f := &fixture{start: now, token: "s3cret"}
	f.doc = Data{
		Node: "edge-1", Version: "v1.4.0-test", Ready: true,
		Config: ConfigInfo{Path: "/etc/portcullis/portcullis.yaml", Digest: "sha256:4f2a9c1be07d55aa", LoadedAt: t(3 * time.Hour)},
		Cluster: Cluster{Enabled: true, Members: []Member{
			{Name: "edge-1", Address: "10.0.0.11:7946", State: "alive", Priority: 200, Healthy: true, Digest: "sha256:4f2a9c1be07d55aa", VIPs: []string{"web-vip"}, Self: true},
			{Name: "edge-2", Address: "10.0.0.12:7946", State: "suspect", Priority: 100, Healthy: false, Digest: "sha256:99aa00bb11cc22dd", VIPs: []string{}},
		}},
		BGP: BGP{Enabled: true, ASN: 65001, Peers: []BGPPeer{
			{Address: "10.0.0.1", ASN: 65000, State: "established", Since: t(26 * time.Hour), HoldTime: 9, BFD: "up"},
			{Address: "10.0.0.2", ASN: 65000, State: "active", Since: t(3 * time.Minute), HoldTime: 0, Flaps: 4, LastDisconnect: "hold_timer_expired"},
		}, VIPs: []BGPVIP{
			{VIP: "web-vip", Prefix: "192.0.2.10/32", Announced: true, Reason: "serving", Since: t(26 * time.Hour)},
			{VIP: "dns-vip", Prefix: "192.0.2.53/32", Announced: false, Reason: "no_usable_backend", Since: t(time.Minute)},
		}},
		L4: L4{Attached: true, Mode: "native", Interface: "eth0", ConntrackEntries: 18234, ConntrackCapacity: 1 << 20},
		VIPs: []VIP{{Name: "web-vip", Address: "192.0.2.10", Port: 443, Protocol: "tcp", Owner: "edge-1", Checked: true, CheckName: "web-vip-tcp",
			Backends: []VIPBackend{
				{Name: "be-a", Address: "10.0.1.21", Forwarding: "dsr-l2", Weight: 1, EffectiveWeight: 1, Health: up(2 * time.Hour), Slots: 32768, Share: 0.5},
				{Name: "be-b", Address: "10.0.1.22", Forwarding: "dsr-l2", Weight: 1, EffectiveWeight: 1, Health: up(40 * time.Minute), Slots: 32768, Share: 0.5},
			}}},
		Routes: []Route{{Name: "api", Pool: "api", P50MS: 3.2, P99MS: 48}},
		Pools: []Pool{{Name: "api", Algorithm: "least_request", Checked: true, CheckName: "api-http", Endpoints: []Endpoint{
			{Address: "10.0.2.31:8080", Weight: 2, Health: up(90 * time.Minute)},
			{Address: "10.0.2.32:8080", Weight: 1, Health: up(10 * time.Minute)},
		}}},
		Discovery: []Discovery{
			{Name: "api-etcd", Provider: "etcd", Pool: "api", State: "stale", Error: "context deadline exceeded", Since: t(2 * time.Minute), Updated: t(2 * time.Minute), Endpoints: 2},
		},
	}
	return f
}

// tick advances the counters as traffic would, by elapsed time.
func (f *fixture) tick() Data {
	now := time.Now().UTC()
	s := uint64(now.Sub(f.start).Milliseconds())
	d := f.doc
	d.Time = now
	v := &d.VIPs[0]
	v.Packets, v.Bytes, v.NewFlows = s*12, s*9000, s/2
	for i := range v.Backends {
		v.Backends[i].Packets, v.Backends[i].Bytes, v.Backends[i].NewFlows = s*6, s*4500, s/4
	}
	d.Routes[0].Requests, d.Routes[0].Errors = s, s/100
	for i := range d.Pools[0].Endpoints {
		d.Pools[0].Endpoints[i].Requests = s / 2
		d.Pools[0].Endpoints[i].InFlight = 3
	}
	return d
}

func (f *fixture) setEndpoint(addr string, fn func(*Endpoint)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.doc.Pools[0].Endpoints {
		if f.doc.Pools[0].Endpoints[i].Address == addr {
			fn(&f.doc.Pools[0].Endpoints[i])
		}
	}
}

func (f *fixture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	authed := r.Header.Get("Authorization") == "Bearer "+f.token
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/v1/dashboard":
		if f.fail {
			http.Error(w, "upstream exploded", http.StatusServiceUnavailable)
			return
		}
		d := f.tick()
		d.CanWrite = authed
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	case !authed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"missing or wrong bearer token"}`))
	case r.Method == "POST" && r.URL.Path == "/api/v1/health/drain" && f.refuse != "":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"error": f.refuse})
	case r.Method == "POST" && r.URL.Path == "/api/v1/health/drain":
		var req struct {
			Kind, Group, Name string
			Drained           bool
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.drains = append(f.drains, req.Kind+"/"+req.Group+"/"+req.Name+"="+map[bool]string{true: "drained", false: "undrained"}[req.Drained])
		for i := range f.doc.Pools[0].Endpoints {
			e := &f.doc.Pools[0].Endpoints[i]
			if req.Kind == "pool" && e.Address == req.Name {
				e.Health.Drained = req.Drained
				e.Health.History = append(e.Health.History, Transition{At: time.Now(), From: e.Health.State, To: e.Health.State, Drained: req.Drained, Reason: "drained by admin"})
			}
		}
		w.Write([]byte(`{}`))
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/api/v1/vips/"):
		f.releases = append(f.releases, r.URL.Path)
		w.Write([]byte(`{"result":"released"}`))
	default:
		http.NotFound(w, r)
	}
}

// TestDashboardFixture checks what the real daemon cannot show here: members,
// VIPs with rates, stale discovery, the stale banner when the API fails, a
// wrong token, release, and the narrow layout.
func TestDashboardFixture(t *testing.T) {
	b := newBrowser(t)
	f := newFixture()
	mux := http.NewServeMux()
	mux.Handle("/api/", f)
	mux.Handle("GET /{$}", Handler())
	mux.Handle("GET /assets/", Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b.do(chromedpNavigate(srv.URL + "/"))
	b.waitJS("the node name", `document.getElementById('node').textContent === 'edge-1'`, 10*time.Second)
	b.js(`window.__loaded = 'same page'`)

	// Members, with this node marked and the other's config flagged.
	b.waitJS("two members", `document.querySelectorAll('#cluster-body tbody tr').length === 2`, 5*time.Second)
	if s := b.js(`document.querySelector('#cluster-body tr[data-key="edge-2"]').innerText`); !strings.Contains(s, "suspect") || !strings.Contains(s, "differs") {
		t.Errorf("member edge-2 row = %q, want suspect and a config that differs", s)
	}
	// BGP: sessions with their state and BFD, announcements with the reason.
	if s := b.js(`document.querySelector('#bgp-body tr[data-key="peer/10.0.0.2"]').innerText`); !strings.Contains(s, "active") || !strings.Contains(s, "hold timer expired") || !strings.Contains(s, "4") {
		t.Errorf("BGP peer 10.0.0.2 row = %q, want active, 4 flaps, hold timer expired", s)
	}
	if s := b.js(`document.querySelector('#bgp-body tr[data-key="peer/10.0.0.1"]').innerText`); !strings.Contains(s, "established") || !strings.Contains(s, "up") || !strings.Contains(s, "26 h 0 m") {
		t.Errorf("BGP peer 10.0.0.1 row = %q, want established for 26 h, BFD up", s)
	}
	if s := b.js(`document.querySelector('#bgp-vips-body tr[data-key="vip/dns-vip"]').innerText`); !strings.Contains(s, "withdrawn") || !strings.Contains(s, "no usable backend") {
		t.Errorf("BGP VIP dns-vip row = %q, want withdrawn: no usable backend", s)
	}
	if s := b.js(`[...document.querySelectorAll('#summary-list li')].map((li) => li.innerText).join('\n')`); !strings.Contains(s, "1 of 2 sessions up · 1 of 2 VIPs announced") {
		t.Errorf("summary = %q, want the BGP line", s)
	}
	// VIP: owner, rates from two polls, backends with their Maglev share.
	vip := `document.querySelector('#vips-body article[data-key="web-vip"]')`
	b.waitJS("VIP rates", vip+` && /[0-9.]+k?\/s/.test(`+vip+`.querySelector('.kv').innerText)`, 5*time.Second)
	if s := b.js(vip + `.innerText`); !strings.Contains(s, "edge-1") || !strings.Contains(s, "50%") || !strings.Contains(s, "be-b") || !strings.Contains(s, "9.0 MB/s") || !strings.Contains(s, "12.0k/s") {
		t.Errorf("VIP card = %q", s)
	}
	if s := b.js(`document.getElementById('l4-line').textContent`); !strings.Contains(s, "18,234") {
		t.Errorf("L4 line = %q", s)
	}
	if s := b.js(`document.querySelector('#routes-body tr[data-key="api"]').innerText`); !strings.Contains(s, "48.0 ms") {
		t.Errorf("route row = %q", s)
	}
	if s := b.js(`document.querySelector('#discovery-body tr[data-key="api-etcd"]').innerText`); !strings.Contains(s, "stale") || !strings.Contains(s, "deadline") {
		t.Errorf("discovery row = %q", s)
	}

	// A health flip shows without a reload.
	row := poolRow("api", "10.0.2.32:8080")
	f.setEndpoint("10.0.2.32:8080", func(e *Endpoint) {
		ok := false
		e.Health.State, e.Health.LastOK, e.Health.Detail, e.Health.Since = "down", &ok, "HTTP 503", time.Now()
		e.Health.History = append(e.Health.History, Transition{At: time.Now(), From: "up", To: "down", Reason: "1 failure: HTTP 503"})
	})
	b.waitJS("the endpoint down", rowState(row)+` === 'down'`, 5*time.Second)
	if s := b.js(row + `.innerText`); !strings.Contains(s, "HTTP 503") || !strings.Contains(s, "2 changes") {
		t.Errorf("down row = %q", s)
	}
	b.waitJS("the title counting it", `document.title.startsWith('(1 down)')`, 3*time.Second)

	// The API failing: the page says since when its data is stale.
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	b.waitJS("the stale banner", `!document.getElementById('stale').hidden && /Stale since/.test(document.getElementById('stale').textContent)`, 5*time.Second)
	if s := b.js(`document.getElementById('stale').textContent`); !strings.Contains(s, "503") {
		t.Errorf("stale banner = %q, want the error", s)
	}
	f.mu.Lock()
	f.fail = false
	f.mu.Unlock()
	b.waitJS("fresh data again", `document.getElementById('stale').hidden`, 10*time.Second)

	// Read-only: no buttons. A wrong token says so; the right one adds them.
	if n := b.js(`document.querySelectorAll('button[data-act]').length`); n != "0" {
		t.Errorf("%s action buttons without a token", n)
	}
	b.do(sendKeys("#token", "wrong"), click("#token-use"))
	b.waitJS("the token refused", `/not accepted/.test(document.getElementById('f-access').textContent)`, 5*time.Second)
	b.do(sendKeys("#token", "s3cret"), click("#token-use"))
	b.waitJS("drain buttons", `document.querySelector('button[data-act="drain"][data-name="10.0.2.31:8080"]')`, 5*time.Second)
	if s := b.js(`sessionStorage.getItem('portcullis.adminToken')`); s != "s3cret" {
		t.Errorf("sessionStorage token = %q", s)
	}
	// A refused action says why, plainly.
	f.mu.Lock()
	f.refuse = "unknown target pool/api/10.0.2.32:8080"
	f.mu.Unlock()
	b.do(click(`button[data-act="drain"][data-name="10.0.2.32:8080"]`))
	b.waitJS("the error", `/Could not drain 10.0.2.32:8080 .*HTTP 404 — unknown target/.test(document.getElementById('action-msg').textContent)`, 5*time.Second)
	if role := b.js(`document.getElementById('action-msg').getAttribute('role')`); role != "alert" {
		t.Errorf("error message role = %q, want alert", role)
	}
	f.mu.Lock()
	f.refuse = ""
	f.mu.Unlock()
	b.do(click(`button[data-act="drain"][data-name="10.0.2.31:8080"]`))
	b.waitJS("the endpoint drained", poolRow("api", "10.0.2.31:8080")+`.innerText.includes('drained')`, 5*time.Second)
	// Release asks for a second click.
	b.do(click(`button[data-act="release"]`))
	b.waitJS("release armed", `document.querySelector('button[data-act="release"]').textContent === 'Confirm release'`, 2*time.Second)
	b.do(click(`button[data-act="release"]`))
	b.waitJS("the release confirmed", `/Released VIP web-vip/.test(document.getElementById('action-msg').textContent)`, 5*time.Second)
	f.mu.Lock()
	drains, releases := f.drains, f.releases
	f.mu.Unlock()
	if len(drains) != 1 || drains[0] != "pool/api/10.0.2.31:8080=drained" {
		t.Errorf("drain requests = %v", drains)
	}
	if len(releases) != 1 || releases[0] != "/api/v1/vips/web-vip/release" {
		t.Errorf("release requests = %v", releases)
	}

	if s := b.js(`window.__loaded`); s != "same page" {
		t.Errorf("the page reloaded (%q)", s)
	}
	b.do(colorScheme("light"))
	b.screenshot("dashboard-fixture-wide.png", "/tmp/portcullis-dashboard-fixture.png")
	b.do(colorScheme("dark"))
	b.waitJS("the dark palette", `getComputedStyle(document.body).backgroundColor === 'rgb(15, 19, 24)'`, 5*time.Second)
	b.screenshot("dashboard-fixture-dark.png", "/tmp/portcullis-dashboard-dark.png")
	b.do(colorScheme("light"))

	// 375 px wide: nothing sticks out sideways.
	b.do(emulateViewport(375, 812))
	b.waitJS("the narrow layout", `document.documentElement.clientWidth === 375`, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if w := b.js(`String(document.documentElement.scrollWidth)`); w != "375" {
		t.Errorf("at 375 px the page is %s px wide: %s", w, b.js(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376).slice(0, 5).map(e => e.tagName + '.' + e.className).join(', ')`))
	}
	b.screenshot("dashboard-fixture-375.png", "/tmp/portcullis-dashboard-375.png")
	b.checkClean()
}
