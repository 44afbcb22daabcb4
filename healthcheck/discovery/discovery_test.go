package discovery

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder collects what a Watcher applies.
type recorder struct {
	mu   sync.Mutex
	sets [][]Endpoint
}

func (r *recorder) apply(eps []Endpoint) { r.mu.Lock(); r.sets = append(r.sets, eps); r.mu.Unlock() }
func (r *recorder) n() int               { r.mu.Lock(); defer r.mu.Unlock(); return len(r.sets) }
func (r *recorder) last() []Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

// waitFor polls cond for up to 10 s: generous, as the machine is shared.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func addrs(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Address)
	}
	return out
}

func TestTheWatcherDeduplicatesThrottlesAndNeverBlinks(t *testing.T) {
	r := &recorder{}
	w := NewWatcher("d", "test", "p", Static(nil), 100*time.Millisecond, r.apply)
	a := []Endpoint{{"10.0.0.2:80", 1}, {"10.0.0.1:80", 1}}
	w.Set(a)
	if r.n() != 1 || !slices.Equal(addrs(r.last()), []string{"10.0.0.1:80", "10.0.0.2:80"}) {
		t.Fatalf("first set applied at once, sorted: %v", r.sets)
	}
	w.Set([]Endpoint{{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}})
	if r.n() != 1 {
		t.Error("the same set in another order was applied again")
	}
	// A burst within the throttle window becomes one update: the last.
	for i := range 5 {
		w.Set(append(slices.Clone(a), Endpoint{Address: "10.0.1.0:" + string(rune('1'+i)), Weight: 1}))
	}
	waitFor(t, "the throttled update", func() bool { return r.n() == 2 })
	time.Sleep(150 * time.Millisecond)
	if r.n() != 2 || len(r.last()) != 3 || r.last()[2].Address != "10.0.1.0:5" {
		t.Errorf("burst applied as %d updates, last %v", r.n()-1, r.last())
	}
	w.Fail(errors.New("registry down"))
	st := w.Status()
	if st.State != StateStale || st.Error != "registry down" || len(st.Endpoints) != 3 {
		t.Errorf("status after a failure %+v", st)
	}
	if eps, ok := w.Endpoints(); !ok || len(eps) != 3 {
		t.Errorf("the last set must stay: %v %v", eps, ok)
	}
	w.Set(r.last())
	if st := w.Status(); st.State != StateOK || st.Error != "" {
		t.Errorf("recovered %+v", st)
	}
}
