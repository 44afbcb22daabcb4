package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// flipServer is a backend whose every answer (health check or traffic) is
// 200 or, once failing is set, 500.
type flipServer struct {
	*httptest.Server
	failing atomic.Bool
}

func newFlipServer(t *testing.T, name string) *flipServer {
	s := &flipServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.failing.Load() {
			http.Error(w, name+" is failing on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *flipServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// TestDashboardDaemon runs the real daemon (an L7 listener, a pool of two
// backends in this test, an HTTP health check on it) and drives its
// dashboard in headless Chromium: the page shows the node and the endpoints'
// health, a backend that starts failing shows as down without a reload and
// comes back, and a drain through the page reaches the daemon.
func TestDashboardDaemon(t *testing.T) {
	b := newBrowser(t)

	a, c := newFlipServer(t, "backend-a"), newFlipServer(t, "backend-b")
	adminPort, webPort := e2etest.FreePort(t), e2etest.FreePort(t)
	const token = "dashboard-test-token"
	cfg := fmt.Sprintf(`node:
  name: dash-test
admin:
  listen: 127.0.0.1:%d
  token: %s
shutdown:
  drain: 1s
l7:
  listeners:
    - name: web
      address: 127.0.0.1:%d
  pools:
    - name: web
      endpoints:
        - address: %s
        - address: %s
  routes:
    - name: all
      pool: web
healthchecks:
  - name: web-http
    pool: web
    type: http
    path: /healthz
    interval: 200ms
    timeout: 150ms
    rise: 1
    fall: 1
`, adminPort, token, webPort, a.addr(), c.addr())
	d := e2etest.StartLoop(t, e2etest.LoopOptions{
		AdminPort:     adminPort,
		Config:        cfg,
		Client:        http.DefaultClient,
		ReadyTimeout:  15 * time.Second,
		ReadyPoll:     50 * time.Millisecond,
		KillAtCleanup: true,
	})
	cfgPath, admin := d.ConfigPath, d.AdminBase

	// Some traffic through the proxy, so the endpoints show request rates.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		cl := &http.Client{Timeout: time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); traffic.Wait() })

	page := admin + "/"
	if !servesDashboard(admin + "/") {
		// Still check everything else, against the daemon's own API, but
		// fail: the daemon must serve this page itself.
		t.Errorf("the daemon does not serve the dashboard at GET / — mount dashboard.Handler() on the admin mux for \"GET /{$}\" and \"GET /assets/\"; testing the page through a proxy in front of the daemon instead")
		page = proxyDashboard(t, admin) + "/"
	}

	b.do(chromedpNavigate(page))
	b.waitJS("the node name", `document.getElementById('node').textContent === 'dash-test'`, 10*time.Second)
	b.js(`window.__loaded = 'same page'`)
	rowA, rowB := poolRow("web", a.addr()), poolRow("web", c.addr())
	b.waitJS("both endpoints up", rowState(rowA)+` === 'up' && `+rowState(rowB)+` === 'up'`, 10*time.Second)

	// Node facts, and the empty states of what this config leaves out.
	if s := b.js(`document.getElementById('f-ready').textContent`); s != "ready" {
		t.Errorf("readiness shows %q", s)
	}
	if s := b.js(`document.getElementById('f-config').textContent`); !strings.Contains(s, cfgPath) {
		t.Errorf("config fact = %q, want the path %s", s, cfgPath)
	}
	for sel, want := range map[string]string{
		"#cluster-body .empty":   "Clustering is off",
		"#bgp-body .empty":       "BGP is off",
		"#vips-body .empty":      "No VIPs configured",
		"#discovery-body .empty": "No discovery sources",
	} {
		if s := b.js(`(document.querySelector(` + q(sel) + `) || {}).textContent || ''`); !strings.Contains(s, want) {
			t.Errorf("%s = %q, want %q", sel, s, want)
		}
	}
	if s := b.js(`document.querySelector('#pools-body article[data-key="web"] .kv').textContent`); !strings.Contains(s, "web-http") {
		t.Errorf("pool web header = %q, want its check web-http", s)
	}
	if s := b.js(rowA + `.innerText`); !strings.Contains(s, "passed") {
		t.Errorf("endpoint row = %q, want its last check passed", s)
	}

	// Backend A fails: the page shows it down, without a reload.
	a.failing.Store(true)
	b.waitJS("backend A down", rowState(rowA)+` === 'down'`, 10*time.Second)
	if s := b.js(rowA + `.innerText`); !strings.Contains(s, "failed") || !strings.Contains(s, "500") {
		t.Errorf("down row = %q, want a failed check with its status", s)
	}
	b.waitJS("the title counting it", `document.title.startsWith('(1 down)')`, 3*time.Second)
	a.failing.Store(false)
	b.waitJS("backend A up again", rowState(rowA)+` === 'up'`, 10*time.Second)
	b.waitJS("its history", rowA+`.querySelector('details summary') && /[2-9] changes/.test(`+rowA+`.querySelector('details summary').textContent)`, 5*time.Second)

	// Read-only until the token is pasted; then drain B through the page.
	if n := b.js(`String(document.querySelectorAll('button[data-act]').length)`); n != "0" {
		t.Errorf("%s action buttons without the token", n)
	}
	b.do(sendKeys("#token", token), click("#token-use"))
	drainB := `button[data-act="drain"][data-name="` + c.addr() + `"]`
	b.waitJS("the drain buttons", `document.querySelector(`+q(drainB)+`)`, 5*time.Second)
	b.do(click(drainB))
	b.waitJS("backend B drained", rowB+`.innerText.includes('drained')`, 5*time.Second)
	if msg := b.js(`document.getElementById('action-msg').textContent`); !strings.Contains(msg, "Drained "+c.addr()) {
		t.Errorf("action message = %q", msg)
	}
	if !daemonSaysDrained(t, admin, c.addr()) {
		t.Errorf("the page shows %s drained but the daemon's /api/v1/health does not", c.addr())
	}
	if s := b.js(`window.__loaded`); s != "same page" {
		t.Errorf("the page reloaded (%q)", s)
	}
	// Open A's history (it must stay open across polls) for the screenshot.
	b.js(rowA + `.querySelector('details').open = true`)
	time.Sleep(1500 * time.Millisecond) // two more polls: rates on the screenshot
	if s := b.js(rowA + `.querySelector('details').open`); s != "true" {
		t.Errorf("an opened history closed on the next poll")
	}
	if s := b.js(rowA + `.querySelector('details ul').innerText`); !strings.Contains(s, "up → down") || !strings.Contains(s, "down → up") {
		t.Errorf("history of A = %q, want up → down and down → up", s)
	}
	b.screenshot("dashboard.png", "/tmp/portcullis-dashboard.png")

	// And back.
	b.do(click(`button[data-act="drain"][data-name="` + c.addr() + `"]`))
	b.waitJS("backend B undrained", `!`+rowB+`.innerText.includes('drained')`, 5*time.Second)
	if daemonSaysDrained(t, admin, c.addr()) {
		t.Errorf("%s still drained in the daemon after Undrain", c.addr())
	}
	b.checkClean()
}

func servesDashboard(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && bytes.Contains(b, []byte(`id="pools-body"`))
}

// proxyDashboard serves the page from this test and everything else from
// the daemon, for as long as the daemon does not mount the handler itself.
func proxyDashboard(t *testing.T, admin string) string {
	u, _ := url.Parse(admin)
	mux := http.NewServeMux()
	mux.Handle("/", httputil.NewSingleHostReverseProxy(u))
	mux.Handle("GET /{$}", Handler())
	mux.Handle("GET /assets/", Handler())
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// daemonSaysDrained asks the daemon's health API whether the pool endpoint
// is drained.
func daemonSaysDrained(t *testing.T, admin, addr string) bool {
	t.Helper()
	resp, err := http.Get(admin + "/api/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("GET /api/v1/health: %v", err)
	}
	for _, st := range snap.Targets {
		// The target's fields are inlined or nested, depending on how the
		// daemon marshals it; look for the address anywhere in the entry.
		raw, _ := json.Marshal(st)
		if strings.Contains(string(raw), `"`+addr+`"`) {
			d, _ := st["drained"].(bool)
			return d
		}
	}
	t.Fatalf("GET /api/v1/health has no target %s", addr)
	return false
}
