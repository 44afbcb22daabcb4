package l7

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Response aggregation (issue #8) through real sockets: two upstream pools,
// p and q, behind one aggregate route.

type aggUpstreams struct {
	p, q      *httptest.Server
	mu        sync.Mutex
	paths     []string
	inFlight  atomic.Int32
	maxFlight atomic.Int32
}

func newAggUpstreams(t testing.TB, h func(w http.ResponseWriter, r *http.Request)) *aggUpstreams {
	u := &aggUpstreams{}
	wrap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.inFlight.Add(1)
		defer u.inFlight.Add(-1)
		for {
			m := u.maxFlight.Load()
			if n <= m || u.maxFlight.CompareAndSwap(m, n) {
				break
			}
		}
		u.mu.Lock()
		u.paths = append(u.paths, r.URL.RequestURI())
		u.mu.Unlock()
		h(w, r)
	})
	u.p, u.q = httptest.NewServer(wrap), httptest.NewServer(wrap)
	t.Cleanup(u.p.Close)
	t.Cleanup(u.q.Close)
	return u
}

// seen is a copy of the request targets the upstreams got so far.
func (u *aggUpstreams) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...)
}

// start runs a proxy whose only route is the aggregate (indented as a
// route list item's keys, 6 spaces).
func (u *aggUpstreams) start(t testing.TB, aggregate string) string {
	_, addr := startProxy(t, []string{upstreamAddr(u.p)}, proxyOpts{
		pool:   fmt.Sprintf("    - name: q\n      endpoints:\n        - {address: %q}\n", upstreamAddr(u.q)),
		routes: "    - name: agg\n      match: {path_template: '/dash/{id}'}\n" + aggregate,
	})
	return addr
}

func writeJSON(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, s)
}

// userOrders answers /users/ID and /orders/ID, and /slow/MS after MS ms.
func userOrders(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/users/"):
		writeJSON(w, `{"id":"`+strings.TrimPrefix(r.URL.Path, "/users/")+`","name":"Ann","secret":"s3"}`)
	case strings.HasPrefix(r.URL.Path, "/orders/"):
		writeJSON(w, `{"orders":[1,2],"id":"order-list"}`)
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		var ms int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/slow/"), &ms)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, `{"slept":`+fmt.Sprint(ms)+`}`)
	case r.URL.Path == "/html":
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html></html>")
	default:
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	}
}

func getAgg(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, b := get(t, url, nil)
	return resp, string(b)
}

func TestAggregateNamedMergeWithSelectRenameAndTemplate(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	addr := u.start(t, `      aggregate:
        calls:
          - {name: user, pool: p, path: '/users/{path.id}?v={query.v}', select: [id, name], rename: [{from: name, to: full_name}]}
          - {name: orders, pool: q, path: '/orders/{path.id}'}
`)
	resp, body := getAgg(t, "http://"+addr+"/dash/42?v=2")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if want := `{"user":{"id":"42","full_name":"Ann"},"orders":{"orders":[1,2],"id":"order-list"}}`; body != want {
		t.Errorf("body %s\nwant %s", body, want)
	}
	if resp.Header.Get("X-Portcullis-Completed") != "" {
		t.Errorf("a complete answer says X-Portcullis-Completed: %q", resp.Header.Get("X-Portcullis-Completed"))
	}
	paths := strings.Join(u.seen(), " ")
	if !strings.Contains(paths, "/users/42?v=2") || !strings.Contains(paths, "/orders/42") {
		t.Errorf("upstream paths: %s", paths)
	}
}

func TestAggregateObjectMerge(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	addr := u.start(t, `      aggregate:
        merge: object
        calls:
          - {name: user, pool: p, path: '/users/{path.id}', select: [id, name]}
          - {name: orders, pool: q, path: '/orders/{path.id}'}
`)
	resp, body := getAgg(t, "http://"+addr+"/dash/7")
	if resp.StatusCode != 200 {
		t.Fatalf("%d: %s", resp.StatusCode, body)
	}
	// The later call's id replaces the earlier one's, in its place.
	if want := `{"id":"order-list","name":"Ann","orders":[1,2]}`; body != want {
		t.Errorf("body %s\nwant %s", body, want)
	}
}

func TestAggregateFailureModes(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	calls := `        calls:
          - {name: user, pool: p, path: '/users/{path.id}'}
          - {name: broken, pool: q, path: /fail}
          - {name: html, pool: q, path: /html}
`
	t.Run("fail", func(t *testing.T) {
		addr := u.start(t, "      aggregate:\n"+calls)
		resp, body := getAgg(t, "http://"+addr+"/dash/1")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var e struct {
			Error  string
			Failed []string
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if strings.Join(e.Failed, ",") != "broken,html" || !strings.Contains(e.Error, "broken, html") {
			t.Errorf("error body: %s", body)
		}
	})
	t.Run("partial", func(t *testing.T) {
		addr := u.start(t, "      aggregate:\n        on_partial_failure: partial\n"+calls)
		resp, body := getAgg(t, "http://"+addr+"/dash/1")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Portcullis-Completed"); got != "false" {
			t.Errorf("X-Portcullis-Completed: %q", got)
		}
		if got := resp.Header.Get("X-Portcullis-Failed"); got != "broken, html" {
			t.Errorf("X-Portcullis-Failed: %q", got)
		}
		if want := `{"user":{"id":"1","name":"Ann","secret":"s3"}}`; body != want {
			t.Errorf("body %s\nwant %s", body, want)
		}
	})
	t.Run("partial with nothing arrived", func(t *testing.T) {
		addr := u.start(t, "      aggregate:\n        on_partial_failure: partial\n        calls:\n          - {name: broken, pool: q, path: /fail}\n")
		if resp, body := getAgg(t, "http://"+addr+"/dash/1"); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("a value cannot climb out of the path", func(t *testing.T) {
		addr := u.start(t, "      aggregate:\n        calls:\n          - {name: user, pool: p, path: '/users/{path.id}/{query.sub}'}\n")
		for _, target := range []string{"/dash/x?sub=..%2F..%2Fadmin", "/dash/x%3Fadmin=1?sub=a", "/dash/x?sub=a%23b"} {
			if resp, body := getAgg(t, "http://"+addr+target); resp.StatusCode != http.StatusBadGateway {
				t.Errorf("%s: status %d: %s", target, resp.StatusCode, body)
			}
		}
		for _, p := range u.seen() {
			if strings.Contains(p, "admin") || strings.Contains(p, "#") {
				t.Errorf("an upstream got %s", p)
			}
		}
	})
}

func TestAggregateCallTimeout(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	addr := u.start(t, `      aggregate:
        on_partial_failure: partial
        calls:
          - {name: user, pool: p, path: '/users/{path.id}'}
          - {name: slow, pool: q, path: /slow/3000, timeout: 150ms}
`)
	start := time.Now()
	resp, body := getAgg(t, "http://"+addr+"/dash/1")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the slow call was waited for: %v", d)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Portcullis-Failed") != "slow" || !strings.HasPrefix(body, `{"user":`) {
		t.Errorf("%d failed=%q: %s", resp.StatusCode, resp.Header.Get("X-Portcullis-Failed"), body)
	}
}

func TestAggregateCallsRunInParallel(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	addr := u.start(t, `      aggregate:
        merge: object
        calls:
          - {name: a, pool: p, path: /slow/200, rename: [{from: slept, to: a}]}
          - {name: b, pool: q, path: /slow/200, rename: [{from: slept, to: b}]}
`)
	start := time.Now()
	resp, body := getAgg(t, "http://"+addr+"/dash/1")
	d := time.Since(start)
	if resp.StatusCode != 200 || body != `{"a":200,"b":200}` {
		t.Fatalf("%d: %s", resp.StatusCode, body)
	}
	if m := u.maxFlight.Load(); m != 2 {
		t.Errorf("at most %d calls were in flight at once; want 2", m)
	}
	if !raceEnabled && d > 390*time.Millisecond {
		t.Errorf("two 200 ms calls took %v", d)
	}
}

func TestAggregateCallsEndWithTheClientsRequest(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	u := newAggUpstreams(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(5 * time.Second):
		}
	})
	addr := u.start(t, "      aggregate:\n        calls:\n          - {name: a, pool: p, path: /a, timeout: 10s}\n")
	c := &http.Client{Timeout: 200 * time.Millisecond}
	if resp, err := c.Get("http://" + addr + "/dash/1"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d", resp.StatusCode)
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream call went on after the client left")
	}
}

func TestAggregateAnswerGoesThroughTheRoutesResponseSteps(t *testing.T) {
	u := newAggUpstreams(t, userOrders)
	addr := u.start(t, `      response_headers: {set: [{name: X-Route, value: '{route}'}]}
      compression: {min_size: 1}
      body_transform: {response: {remove: [user.secret]}}
      aggregate:
        calls:
          - {name: user, pool: p, path: '/users/{path.id}'}
`)
	req, _ := http.NewRequest("GET", "http://"+addr+"/dash/5", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(decode(t, resp.Header.Get("Content-Encoding"), b))
	if resp.StatusCode != 200 || resp.Header.Get("X-Route") != "agg" || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
	if body != `{"user":{"id":"5","name":"Ann"}}` {
		t.Errorf("body %s", body)
	}
}

// BenchmarkAggregateOverhead: an aggregation of three calls (10, 20 and
// 30 ms) against the slowest call asked directly; the bound is the
// slowest call plus 1 ms. Reported as overhead-µs per request.
func BenchmarkAggregateOverhead(b *testing.B) {
	u := newAggUpstreams(b, userOrders)
	addr := u.start(b, `      aggregate:
        calls:
          - {name: a, pool: p, path: /slow/10}
          - {name: b, pool: q, path: /slow/20}
          - {name: c, pool: p, path: /slow/30}
`)
	get := func(url string) {
		resp, err := plainClient.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
	}
	direct := u.p.URL + "/slow/30"
	get(direct)
	get("http://" + addr + "/dash/1")
	var tDirect, tAgg time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		get(direct)
		t1 := time.Now()
		get("http://" + addr + "/dash/1")
		tAgg += time.Since(t1)
		tDirect += t1.Sub(t0)
	}
	b.ReportMetric(float64((tAgg-tDirect).Microseconds())/float64(b.N), "overhead-µs")
}
