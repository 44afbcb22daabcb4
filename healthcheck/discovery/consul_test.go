package discovery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeConsul implements GET /v1/health/service/<name> as documented: the
// X-Consul-Index header on every answer, and a request with index=N blocks
// until the index passes N or wait runs out.
type fakeConsul struct {
	mu      sync.Mutex
	index   uint64
	entries []map[string]any
	changed chan struct{}
	reqs    int
	*httptest.Server
}

func newFakeConsul(t *testing.T) *fakeConsul {
	f := &fakeConsul{index: 10, changed: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeConsul) set(instances ...[3]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = nil
	for _, in := range instances {
		f.entries = append(f.entries, map[string]any{
			"Node":    map[string]any{"Node": "n", "Address": "192.0.2.1"},
			"Service": map[string]any{"Service": "web", "Address": in[0], "Port": in[1], "Weights": map[string]any{"Passing": in[2], "Warning": 1}},
			"Checks":  []any{},
		})
	}
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeConsul) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/health/service/web" || r.URL.Query().Get("passing") == "" {
		http.Error(w, "unexpected "+r.URL.String(), 400)
		return
	}
	f.mu.Lock()
	f.reqs++
	idx, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	if wait == 0 {
		wait = 5 * time.Minute
	}
	ch := f.changed
	cur := f.index
	f.mu.Unlock()
	if idx > 0 && idx >= cur {
		select {
		case <-ch:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Consul-Index", fmt.Sprint(f.index))
	w.Header().Set("Content-Type", "application/json")
	if f.entries == nil {
		w.Write([]byte("[]"))
		return
	}
	json.NewEncoder(w).Encode(f.entries)
}

func TestConsulFollowsBlockingQueries(t *testing.T) {
	f := newFakeConsul(t)
	f.set([3]any{"10.0.0.1", 8080, 3}, [3]any{"", 8081, 0})
	r := &recorder{}
	p := &Consul{Agents: []string{f.URL}, Service: "web", Weight: 1, Wait: 2 * time.Second, Retry: 50 * time.Millisecond}
	w := NewWatcher("c", "consul", "web", p, 10*time.Millisecond, r.apply)
	w.Start()
	defer w.Stop()
	waitFor(t, "the first set", func() bool { return r.n() == 1 })
	want := []Endpoint{{"10.0.0.1:8080", 3}, {"192.0.2.1:8081", 1}}
	if !slices.Equal(r.last(), want) {
		t.Fatalf("got %v, want %v (empty service address means the node's)", r.last(), want)
	}
	// Blocking: while nothing changes the client waits instead of polling.
	time.Sleep(300 * time.Millisecond)
	f.mu.Lock()
	n := f.reqs
	f.mu.Unlock()
	if n > 3 {
		t.Errorf("%d requests in 300ms without a change: not blocking", n)
	}
	start := time.Now()
	f.set([3]any{"10.0.0.1", 8080, 3})
	waitFor(t, "the change", func() bool { return len(r.last()) == 1 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("change took %s: the blocking query did not return on it", d)
	}
	// The agent goes away: the set stays, the state says stale.
	f.Server.CloseClientConnections()
	f.Server.Close()
	waitFor(t, "stale", func() bool { return w.Status().State == StateStale })
	if eps, _ := w.Endpoints(); len(eps) != 1 {
		t.Errorf("set after the outage %v", eps)
	}
	if st := w.Status(); st.Error == "" || st.Since.IsZero() {
		t.Errorf("status %+v", st)
	}
}
