package healthcheck

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var ok, fail = Result{OK: true, Detail: "200 OK"}, Result{OK: false, Detail: "refused"}

func state(t *testing.T, s *Store, tg Target) State {
	t.Helper()
	st, found := s.Status(tg)
	if !found {
		t.Fatalf("%s not held", tg)
	}
	return st.State
}

func TestRiseAndFallThresholds(t *testing.T) {
	s := NewStore(nil, 0)
	defer s.Close()
	tg := PoolTarget("p", "10.0.0.1:80")
	s.Ensure(tg, Policy{Active: true, Rise: 2, Fall: 3})
	if state(t, s, tg) != Unknown {
		t.Fatal("a new target is unknown")
	}
	if w, down := s.Effective(tg, 5); w != 5 || down {
		t.Errorf("unknown serves at full weight: %d %v", w, down)
	}
	s.Observe(tg, ok)
	if state(t, s, tg) != Up {
		t.Fatal("the first success decides")
	}
	for i, want := range []State{Up, Up, Down} {
		s.Observe(tg, fail)
		if got := state(t, s, tg); got != want {
			t.Fatalf("after %d failures: %s, want %s", i+1, got, want)
		}
	}
	s.Observe(tg, ok)
	s.Observe(tg, fail) // a failure breaks the run of successes
	s.Observe(tg, ok)
	if state(t, s, tg) != Down {
		t.Fatal("rise 2 needs two successes in a row")
	}
	s.Observe(tg, ok)
	if state(t, s, tg) != Up {
		t.Fatal("two successes in a row bring it back")
	}
	st, _ := s.Status(tg)
	if len(st.History) != 3 || st.History[1].From != Up || st.History[1].To != Down || !strings.Contains(st.History[1].Reason, "3 checks failed") {
		t.Errorf("history %+v", st.History)
	}
	if st.Last == nil || !st.Last.OK {
		t.Errorf("last %+v", st.Last)
	}
}

func TestAFirstFailureTakesAnUnknownTargetDown(t *testing.T) {
	s := NewStore(nil, 0)
	defer s.Close()
	tg := VIPTarget("v", "b1")
	s.Ensure(tg, Policy{Active: true, Rise: 2, Fall: 3})
	s.Observe(tg, fail)
	if _, down := s.Effective(tg, 100); !down {
		t.Error("a target whose first check fails must not get traffic")
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := NewStore(nil, 4)
	defer s.Close()
	tg := PoolTarget("p", "a:1")
	s.Ensure(tg, Policy{Active: true, Rise: 1, Fall: 1})
	for range 10 {
		s.Observe(tg, ok)
		s.Observe(tg, fail)
	}
	st, _ := s.Status(tg)
	if len(st.History) != 4 || st.History[3].To != Down {
		t.Errorf("history %+v", st.History)
	}
}

func TestSlowStartRampsFrom10To100Percent(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := NewStore(clk, 0)
	defer s.Close()
	tg := PoolTarget("p", "a:1")
	s.Ensure(tg, Policy{Active: true, Rise: 1, Fall: 1, SlowStart: 10 * time.Second})
	s.Observe(tg, ok)
	if w, _ := s.Effective(tg, 100); w != 100 {
		t.Errorf("no slow start at start-up: %d", w)
	}
	s.Observe(tg, fail)
	s.Observe(tg, ok) // recovered: the ramp begins
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{0, 10}, {5 * time.Second, 55}, {9 * time.Second, 91}, {10 * time.Second, 100}, {time.Hour, 100}} {
		clk.t = time.Unix(1000, 0).Add(c.after)
		if w, _ := s.Effective(tg, 100); w != c.want {
			t.Errorf("after %s: weight %d, want %d", c.after, w, c.want)
		}
	}
	clk.t = time.Unix(1000, 0)
	if w, _ := s.Effective(tg, 1); w != 1 {
		t.Errorf("slow start never drains a weight-1 endpoint: %d", w)
	}
}

func TestSlowStartStepsArePushed(t *testing.T) {
	s := NewStore(nil, 0)
	defer s.Close()
	tg := PoolTarget("p", "a:1")
	s.Ensure(tg, Policy{Active: true, Rise: 1, Fall: 1, SlowStart: 200 * time.Millisecond})
	var steps atomic.Int32
	done := make(chan struct{})
	s.Subscribe(func(c Change) {
		if strings.HasPrefix(c.Reason, "slow start") {
			steps.Add(1)
		}
		if c.Reason == "slow start done" {
			close(done)
		}
	})
	s.Observe(tg, fail)
	s.Observe(tg, ok)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("slow start never finished")
	}
	if n := steps.Load(); n < 5 || n > 15 {
		t.Errorf("%d slow-start pushes, want about %d", n, rampSteps)
	}
}

func TestPassiveEjectionRecoversOnlyByActiveChecks(t *testing.T) {
	s := NewStore(nil, 0)
	defer s.Close()
	tg := PoolTarget("p", "a:1")
	s.Ensure(tg, Policy{Active: true, Rise: 2, Fall: 3, Passive5xx: 3, PassiveConnect: 2})
	s.Observe(tg, ok)
	s.Report(tg, Outcome{Status: 502})
	s.Report(tg, Outcome{Status: 200}) // a success resets the run
	s.Report(tg, Outcome{Status: 503})
	s.Report(tg, Outcome{Status: 500})
	if state(t, s, tg) != Up {
		t.Fatal("two 5xx in a row are below the threshold")
	}
	s.Report(tg, Outcome{Timeout: true})
	if state(t, s, tg) != Down {
		t.Fatal("three failures in a row eject")
	}
	st, _ := s.Status(tg)
	if r := st.History[len(st.History)-1].Reason; !strings.HasPrefix(r, "passive:") {
		t.Errorf("reason %q", r)
	}
	for range 10 {
		s.Report(tg, Outcome{Status: 200})
	}
	if state(t, s, tg) != Down {
		t.Fatal("proxied successes must not bring it back (it gets no traffic in reality)")
	}
	s.Observe(tg, ok)
	if state(t, s, tg) != Down {
		t.Fatal("rise is 2")
	}
	s.Observe(tg, ok)
	if state(t, s, tg) != Up {
		t.Fatal("active checks bring it back")
	}
	s.Report(tg, Outcome{ConnectError: true})
	s.Report(tg, Outcome{ConnectError: true})
	if state(t, s, tg) != Down {
		t.Fatal("two connect errors eject")
	}
	unchecked := PoolTarget("p", "b:1")
	s.Ensure(unchecked, Policy{})
	for range 10 {
		s.Report(unchecked, Outcome{ConnectError: true})
	}
	if state(t, s, unchecked) != Unknown {
		t.Error("a target without an active check ignores passive signals")
	}
}

func TestDrainIsWeightZeroAndSurvivesRemoval(t *testing.T) {
	s := NewStore(nil, 0)
	defer s.Close()
	tg := VIPTarget("v", "b1")
	s.Ensure(tg, Policy{})
	if err := s.Drain(tg, true); err != nil {
		t.Fatal(err)
	}
	if w, down := s.Effective(tg, 100); w != 0 || down {
		t.Errorf("drained: weight %d down %v; want 0, not down (flows stay)", w, down)
	}
	s.Remove(tg)
	s.Ensure(tg, Policy{})
	if st, _ := s.Status(tg); !st.Drained {
		t.Error("the drain was lost when the target came back")
	}
	s.Drain(tg, false)
	if w, _ := s.Effective(tg, 100); w != 100 {
		t.Errorf("undrained: %d", w)
	}
	if err := s.Drain(VIPTarget("v", "nope"), true); err == nil {
		t.Error("draining an unknown target")
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iv := time.Second
	lo, hi := iv, time.Duration(0)
	for range 10000 {
		d := NextDelay(iv, 10, false, r)
		if d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("delay %s outside ±10%%", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 910*time.Millisecond || hi < 1090*time.Millisecond {
		t.Errorf("jitter does not spread: %s..%s", lo, hi)
	}
	var firsts []time.Duration
	for range 1000 {
		d := NextDelay(iv, 10, true, r)
		if d < 0 || d > iv {
			t.Fatalf("first delay %s outside one interval", d)
		}
		firsts = append(firsts, d)
	}
	var early int
	for _, d := range firsts {
		if d < iv/2 {
			early++
		}
	}
	if early < 400 || early > 600 {
		t.Errorf("first delays are not spread over the interval: %d of 1000 in the first half", early)
	}
	if d := NextDelay(iv, 0, false, r); d != iv {
		t.Errorf("no jitter: %s", d)
	}
}

// waitFor polls cond for up to 5 s: generous, as the machine is shared.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManagerTakesAFailingEndpointOutAndBringsItBack(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(503)
		}
	}))
	defer flaky.Close()
	steady := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer steady.Close()
	fa, sa := flaky.Listener.Addr().String(), steady.Listener.Addr().String()
	j := 10
	cfg := &config.Config{
		L7: config.L7{Pools: []config.Pool{{Name: "web", Endpoints: []config.Endpoint{{Address: fa, Weight: 2}, {Address: sa, Weight: 1}}}}},
		HealthChecks: []config.HealthCheck{{Name: "h", Pool: "web", Type: "http", Path: "/", Method: "GET", ExpectStatus: "200",
			Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(15 * time.Millisecond), Jitter: &j, Rise: 2, Fall: 2,
			Passive: &config.PassiveCheck{ConsecutiveConnectErrors: 1}}},
	}
	m := NewManager(Options{})
	defer m.Close()
	var notified atomic.Int32
	m.Subscribe(func(g Group) {
		if g == (Group{KindPool, "web"}) {
			notified.Add(1)
		}
	})
	if err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	has := func(addr string) bool {
		for _, e := range m.PoolEndpoints("web") {
			if e.Address == addr {
				return true
			}
		}
		return false
	}
	waitFor(t, "both up", func() bool {
		st, _ := m.Store().Status(PoolTarget("web", fa))
		return st.State == Up
	})
	healthy.Store(false)
	waitFor(t, "the flaky endpoint out", func() bool { return !has(fa) && has(sa) })
	if notified.Load() == 0 {
		t.Error("no subscriber notification")
	}
	healthy.Store(true)
	waitFor(t, "the flaky endpoint back", func() bool { return has(fa) })

	// Passive: the proxy reports a connect error; the endpoint is out at
	// once and back after two good checks.
	m.Report("web", fa, Outcome{ConnectError: true})
	if has(fa) {
		t.Error("passive ejection did not take it out")
	}
	waitFor(t, "recovery by active checks", func() bool { return has(fa) })
	st, _ := m.Store().Status(PoolTarget("web", fa))
	var reasons []string
	for _, h := range st.History {
		reasons = append(reasons, h.Reason)
	}
	if !strings.Contains(strings.Join(reasons, "|"), "passive:") {
		t.Errorf("history %q", reasons)
	}

	// Drain by admin: weight 0, still listed.
	if err := m.Drain(PoolTarget("web", sa), true); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.PoolEndpoints("web") {
		if e.Address == sa && e.Weight != 0 {
			t.Errorf("drained endpoint has weight %d", e.Weight)
		}
	}
	// A reload without the check keeps the targets and stops the checks.
	cfg2 := *cfg
	cfg2.HealthChecks = nil
	if err := m.Apply(&cfg2); err != nil {
		t.Fatal(err)
	}
	if snap := m.Snapshot(); len(snap.Targets) != 2 || snap.Targets[0].Checked {
		t.Errorf("snapshot after reload %+v", snap.Targets)
	}
}
