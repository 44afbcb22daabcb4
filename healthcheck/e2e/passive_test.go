package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// TestPassiveSignalsEjectAndActiveChecksRestore: the proxy's own answers
// (consecutive 5xx) take an endpoint out long before the active check's
// fall threshold would, and only the active check brings it back.
func TestPassiveSignalsEjectAndActiveChecksRestore(t *testing.T) {
	ups := []*upstream{newUpstream(t, "p1", ""), newUpstream(t, "p2", ""), newUpstream(t, "p3", "")}
	// The pool's own outlier ejection and retries are off, so only the
	// health checker's passive thresholds can act.
	d := startLoopDaemon(t, `node:
  name: passive
admin:
  listen: 127.0.0.1:ADMIN
  token: t
shutdown:
  drain: 1s
l7:
  listeners:
    - name: web
      address: 127.0.0.1:WEB
  pools:
    - name: app
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
    path: /ok-always
    interval: 1s
    timeout: 500ms
    fall: 30
    rise: 1
    passive:
      consecutive_5xx: 3
`)
	p2 := ups[1]
	// Everything up first.
	e2etest.Eventually(t, "three endpoints up", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		dash, err := d.dashboard()
		if err != nil {
			return false, err.Error()
		}
		for _, u := range ups {
			if e := poolEndpoint(dash, "app", u.addr()); e == nil || e.Health.State != "up" {
				return false, u.name + " not up yet"
			}
		}
		return true, ""
	})

	// p2 now answers 500 to everything. With fall 30 at a 1 s interval the
	// active check alone would need 30 s to notice; the passive threshold
	// (3 consecutive 5xx seen by the proxy) acts at once.
	p2.failing.Store(true)
	before := p2.served.Load()
	_, byStatus, err := d.requests(60)
	if err != nil {
		t.Fatal(err)
	}
	got := p2.served.Load() - before
	if got > 4 {
		t.Errorf("p2 took %d requests after it started failing; passive ejection should stop it after 3", got)
	}
	if byStatus[500] > 4 {
		t.Errorf("%d clients saw p2's 500s", byStatus[500])
	}
	dash, err := d.dashboard()
	if err != nil {
		t.Fatal(err)
	}
	e := poolEndpoint(dash, "app", p2.addr())
	if e == nil || e.Health.State != "down" || !strings.Contains(historyString(e.Health.History), "passive") {
		t.Fatalf("p2 should be down by a passive signal: %+v", e)
	}

	// Recovery comes from the active check only.
	p2.failing.Store(false)
	e2etest.Eventually(t, "the active check to restore p2", 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		dash, err := d.dashboard()
		if err != nil {
			return false, err.Error()
		}
		e := poolEndpoint(dash, "app", p2.addr())
		return e != nil && e.Health.State == "up", fmt.Sprintf("%+v", e)
	})
	before = p2.served.Load()
	if _, _, err := d.requests(30); err != nil {
		t.Fatal(err)
	}
	if p2.served.Load()-before == 0 {
		t.Error("p2 is up again but gets no requests")
	}
}
