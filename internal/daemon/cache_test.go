package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// TestTheAdminAPIPurgesARoutesCache runs the real daemon with a cached
// route and purges through the admin API, as an operator would.
func TestTheAdminAPIPurgesARoutesCache(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, r.URL.Path)
	}))
	defer up.Close()
	ports := e2etest.FreePorts(t, 2)
	cfg := fmt.Sprintf(`node: {name: test}
admin: {listen: "127.0.0.1:%d", token: test-token}
l7:
  listeners: [{name: web, address: "127.0.0.1:%d"}]
  pools: [{name: p, endpoints: [{address: %q}]}]
  routes:
    - name: cached
      pool: p
      cache: {max_bytes: 1048576}
`, ports[0], ports[1], strings.TrimPrefix(up.URL, "http://"))
	d := e2etest.StartLoop(t, e2etest.LoopOptions{AdminPort: ports[0], Config: cfg})
	web := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	get := func(path string) {
		t.Helper()
		res, err := d.Client.Get(web + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	purge := func(token, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", d.AdminBase+"/api/v1/cache/purge", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := d.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	host := fmt.Sprintf("127.0.0.1:%d", ports[1])
	for _, p := range []string{"/a", "/b/1", "/b/2"} {
		get(p)
		get(p)
	}
	if hits.Load() != 3 {
		t.Fatalf("upstream saw %d requests before any purge, want 3", hits.Load())
	}
	steps := []struct {
		name   string
		token  string
		body   string
		status int
		fetch  string
		hits   int32
	}{
		{"without the token the purge is refused", "", `{"route":"cached","key":"` + host + `/a"}`, 401, "/a", 3},
		{"a purge of one key drops it", "test-token", `{"route":"cached","key":"` + host + `/a"}`, 200, "/a", 4},
		{"a prefix purge drops what starts with it", "test-token", `{"route":"cached","prefix":"` + host + `/b/"}`, 200, "/b/2", 5},
		{"a route without a cache is 404", "test-token", `{"route":"nope","prefix":""}`, 404, "/b/1", 6},
		{"key and prefix together are refused", "test-token", `{"route":"cached","key":"x","prefix":"y"}`, 400, "/a", 6},
	}
	for _, s := range steps {
		if got := purge(s.token, s.body); got != s.status {
			t.Errorf("%s: status %d, want %d", s.name, got, s.status)
		}
		get(s.fetch)
		if got := hits.Load(); got != s.hits {
			t.Errorf("%s: upstream saw %d requests, want %d", s.name, got, s.hits)
		}
	}
}
