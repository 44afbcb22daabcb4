package l7

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// cacheUpstream is a recording upstream: it counts requests per path and
// keeps the last request's header; the test decides the answers.
type cacheUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
	h    atomic.Pointer[http.HandlerFunc]
}

func newCacheUpstream(t testing.TB, h http.HandlerFunc) *cacheUpstream {
	u := &cacheUpstream{hits: map[string]int{}}
	u.h.Store(&h)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits[r.URL.Path]++
		u.mu.Unlock()
		(*u.h.Load())(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *cacheUpstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

// startCacheProxy serves route "c" with the given cache settings (a YAML
// flow mapping) over the upstream.
func startCacheProxy(t testing.TB, u *cacheUpstream, cacheConf string) (*Proxy, string) {
	routes := "    - name: c\n      pool: p\n      cache: " + cacheConf + "\n"
	p, addr := startProxy(t, []string{upstreamAddr(u.srv)}, proxyOpts{routes: routes})
	return p, "http://" + addr
}

var cacheClient = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func cget(t testing.TB, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := cacheClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// ttlOf reads Cache-Status's ttl parameter (the last member is ours).
func ttlOf(t testing.TB, res *http.Response) int {
	t.Helper()
	cs := res.Header.Values("Cache-Status")
	if len(cs) == 0 {
		t.Fatal("no Cache-Status")
	}
	_, v, ok := strings.Cut(cs[len(cs)-1], "ttl=")
	if !ok {
		t.Fatalf("no ttl in %q", cs)
	}
	v, _, _ = strings.Cut(v, ";")
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func cacheStatus(res *http.Response) string {
	cs := res.Header.Values("Cache-Status")
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1]
}

// RFC 9111 §3 (storing), §3.5 (Authorization), §5.2 (Cache-Control); each case names its section.
func TestWhatTheSharedCacheStores(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		name    string
		status  int
		resp    map[string]string
		req     []string
		method  string
		stored  bool
		explain string
	}{
		{"§3, §4.2.1: a 200 with max-age is stored", 200, map[string]string{"Cache-Control": "max-age=60"}, nil, "GET", true, ""},
		{"§3, §5.3: a 200 with Expires in the future is stored", 200, map[string]string{"Expires": future}, nil, "GET", true, ""},
		{"§3: a 404 with max-age is stored", 404, map[string]string{"Cache-Control": "max-age=60"}, nil, "GET", true, ""},
		{"§3: a 301 with max-age is stored", 301, map[string]string{"Cache-Control": "max-age=60", "Location": "/x"}, nil, "GET", true, ""},
		{"§3: a 500 with explicit max-age is stored", 500, map[string]string{"Cache-Control": "max-age=60"}, nil, "GET", true, ""},
		{"§3, §4.2.2: a 500 without freshness is not stored", 500, nil, nil, "GET", false, "status"},
		{"§3, §4.2.2: a 302 without freshness is not stored", 302, map[string]string{"Location": "/x"}, nil, "GET", false, "status"},
		{"§3.3: a 206 is not stored", 206, map[string]string{"Cache-Control": "max-age=60", "Content-Range": "bytes 0-1/10"}, nil, "GET", false, "status"},
		{"§4.2.2: a 200 without lifetime or validator is not stored", 200, nil, nil, "GET", false, "no-freshness"},
		{"§5.2.2.5: no-store is not stored", 200, map[string]string{"Cache-Control": "max-age=60, no-store"}, nil, "GET", false, "no-store"},
		{"§5.2.2.7: private is not stored", 200, map[string]string{"Cache-Control": "private, max-age=60"}, nil, "GET", false, "private"},
		{"§5.2.2.7: a qualified private is not stored either", 200, map[string]string{"Cache-Control": `private="X-User", max-age=60`}, nil, "GET", false, "private"},
		{"§4.1: Vary: * is not stored", 200, map[string]string{"Cache-Control": "max-age=60", "Vary": "*"}, nil, "GET", false, "vary-star"},
		{"§7.3: a response setting a cookie is not stored", 200, map[string]string{"Cache-Control": "max-age=60", "Set-Cookie": "a=b"}, nil, "GET", false, "set-cookie"},
		{"§5.2.1.5: a request with no-store is not stored", 200, map[string]string{"Cache-Control": "max-age=60"}, []string{"Cache-Control", "no-store"}, "GET", false, "bypass"},
		{"§3.5: an authorized request's answer is not stored by max-age alone", 200, map[string]string{"Cache-Control": "max-age=60"}, []string{"Authorization", "Bearer x"}, "GET", false, "authorization"},
		{"§3.5, §5.2.2.9: an authorized request's answer with public is stored", 200, map[string]string{"Cache-Control": "public, max-age=60"}, []string{"Authorization", "Bearer x"}, "GET", true, ""},
		{"§3.5, §5.2.2.10: an authorized request's answer with s-maxage is stored", 200, map[string]string{"Cache-Control": "s-maxage=60"}, []string{"Authorization", "Bearer x"}, "GET", true, ""},
		{"§3.5, §5.2.2.2: an authorized request's answer with must-revalidate is stored", 200, map[string]string{"Cache-Control": "max-age=60, must-revalidate"}, []string{"Authorization", "Bearer x"}, "GET", true, ""},
		{"§3 (RFC 9110 §9.2.3): a POST's answer is not stored", 200, map[string]string{"Cache-Control": "max-age=60"}, nil, "POST", false, ""},
		{"§3.3: a ranged request bypasses the cache", 200, map[string]string{"Cache-Control": "max-age=60"}, []string{"Range", "bytes=0-1"}, "GET", false, "bypass"},
	}
	byPath := map[string]int{}
	for i := range cases {
		byPath["/case"+strconv.Itoa(i)] = i
	}
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		tc := cases[byPath[r.URL.Path]]
		for k, v := range tc.resp {
			w.Header().Set(k, v)
		}
		w.WriteHeader(tc.status)
		io.WriteString(w, "body of "+r.URL.Path)
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "/case" + strconv.Itoa(i)
			res, _ := cget(t, tc.method, base+path, tc.req...)
			if tc.explain != "" && !strings.Contains(cacheStatus(res), tc.explain) {
				t.Errorf("Cache-Status %q does not say %q", cacheStatus(res), tc.explain)
			}
			res2, body := cget(t, "GET", base+path, tc.req...)
			want := 2
			if tc.stored {
				want = 1
				if !strings.HasPrefix(cacheStatus(res2), "Portcullis; hit") {
					t.Errorf("second answer's Cache-Status %q, want a hit", cacheStatus(res2))
				}
			}
			if got := u.count(path); got != want {
				t.Errorf("upstream saw %d requests, want %d", got, want)
			}
			if res2.StatusCode != tc.status || body != "body of "+path {
				t.Errorf("second answer %d %q", res2.StatusCode, body)
			}
		})
	}
}

// RFC 9111 §4.2 (freshness), §5.1 (Age), §5.3 (Expires).
func TestFreshnessLifetimeAndAge(t *testing.T) {
	now := time.Now().UTC()
	date := now.Format(http.TimeFormat)
	cases := []struct {
		name    string
		resp    map[string]string
		ttl     int // expected remaining freshness, seconds (±2)
		minAge  int
		conf    string
		noStore bool
	}{
		{"§4.2.1, §5.2.2.10: s-maxage wins over max-age", map[string]string{"Cache-Control": "max-age=200, s-maxage=100"}, 100, 0, "", false},
		{"§4.2.1: max-age wins over Expires", map[string]string{"Cache-Control": "max-age=200", "Date": date, "Expires": now.Add(1000 * time.Second).Format(http.TimeFormat)}, 200, 0, "", false},
		{"§4.2.1, §5.3: Expires minus Date without max-age", map[string]string{"Date": date, "Expires": now.Add(300 * time.Second).Format(http.TimeFormat)}, 300, 0, "", false},
		{"§5.3: an invalid Expires is already stale", map[string]string{"Date": date, "Expires": "0", "Etag": `"e"`}, 0, 0, "", false},
		{"§4.2.3, §5.1: the upstream's Age is counted", map[string]string{"Cache-Control": "max-age=200", "Age": "50"}, 150, 50, "", false},
		{"§4.2.3: an Age older than the lifetime is stale at once", map[string]string{"Cache-Control": "max-age=20", "Age": "50", "Etag": `"e"`}, -30, 50, "", false},
		{"§4.2.2: heuristic freshness is a share of the Last-Modified age", map[string]string{"Date": date, "Last-Modified": now.Add(-1000 * time.Second).Format(http.TimeFormat)}, 100, 0, ", heuristic: 10%", false},
		{"§4.2.2: heuristic freshness is capped", map[string]string{"Date": date, "Last-Modified": now.Add(-100000 * time.Second).Format(http.TimeFormat)}, 60, 0, ", heuristic: 10%, heuristic_max: 1m", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.resp {
					w.Header().Set(k, v)
				}
				if r.Header.Get("If-None-Match") != "" {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				io.WriteString(w, "x")
			})
			p, base := startCacheProxy(t, u, "{max_bytes: 1048576"+tc.conf+"}")
			cget(t, "GET", base+"/r")
			if n := p.Generation().Cache("c").Len(); n != 1 {
				t.Fatalf("%d entries stored, want 1", n)
			}
			res, _ := cget(t, "GET", base+"/r")
			ttl := ttlOf(t, res)
			if ttl < tc.ttl-2 || ttl > tc.ttl {
				t.Errorf("ttl %d, want about %d (%s)", ttl, tc.ttl, cacheStatus(res))
			}
			age, _ := strconv.Atoi(res.Header.Get("Age"))
			if res.Header.Get("Age") == "" || age < tc.minAge {
				t.Errorf("Age %q, want at least %d", res.Header.Get("Age"), tc.minAge)
			}
		})
	}
}

// RFC 9111 §4.1 (Vary: secondary keys, normalised).
func TestVaryKeepsOneVariantPerNormalisedRequestValue(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	steps := []struct {
		lang, body string
		upstream   int
	}{
		{"en", "lang=en", 1},
		{" EN ", "lang=en", 1},
		{"de", "lang=de", 2},
		{"en", "lang=en", 2},
		{"de", "lang=de", 2},
	}
	for i, s := range steps {
		_, body := cget(t, "GET", base+"/v", "Accept-Language", s.lang)
		if body != s.body || u.count("/v") != s.upstream {
			t.Errorf("step %d (%q): body %q, upstream %d; want %q, %d", i, s.lang, body, u.count("/v"), s.body, s.upstream)
		}
	}
}

// RFC 9111 §4.3.1 (sending a validation request), §4.3.4 (updating stored headers on 304).
func TestStaleEntriesAreRevalidatedWithTheirValidators(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		name      string
		validator [2]string // response field, value
		cond      string    // the conditional the upstream must get
	}{
		{"with an ETag", [2]string{"Etag", `"v1"`}, "If-None-Match"},
		{"with Last-Modified", [2]string{"Last-Modified", lm}, "If-Modified-Since"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = nil
				if n.Add(1) == 1 {
					w.Header().Set("Cache-Control", "max-age=1")
					w.Header().Set(tc.validator[0], tc.validator[1])
					w.Header().Set("X-Version", "1")
					io.WriteString(w, "the body")
					return
				}
				if r.Header.Get(tc.cond) != tc.validator[1] {
					t.Errorf("revalidation sent %s %q", tc.cond, r.Header.Get(tc.cond))
				}
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("X-Version", "2")
				w.WriteHeader(http.StatusNotModified)
			})
			_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
			cget(t, "GET", base+"/r")
			time.Sleep(1100 * time.Millisecond)
			res, body := cget(t, "GET", base+"/r")
			if res.StatusCode != 200 || body != "the body" || res.Header.Get("X-Version") != "2" ||
				!strings.Contains(cacheStatus(res), "fwd=stale; fwd-status=304") {
				t.Errorf("after revalidation: %d %q X-Version %q, Cache-Status %q", res.StatusCode, body, res.Header.Get("X-Version"), cacheStatus(res))
			}
			res, body = cget(t, "GET", base+"/r")
			if u.count("/r") != 2 || body != "the body" || res.Header.Get("X-Version") != "2" || ttlOf(t, res) < 55 {
				t.Errorf("the refreshed entry: upstream %d, %q, X-Version %q, %q", u.count("/r"), body, res.Header.Get("X-Version"), cacheStatus(res))
			}
		})
	}
}

// RFC 9111 §4.3.2 (handling a received validation request).
func TestAClientsConditionalRequestIsAnswered304FromAFreshEntry(t *testing.T) {
	lm := time.Now().Add(-time.Hour).UTC()
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
		io.WriteString(w, "body")
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	cget(t, "GET", base+"/r")
	cases := []struct {
		name string
		hdr  []string
		want int
	}{
		{"a matching If-None-Match", []string{"If-None-Match", `"v1"`}, 304},
		{"a weak matching If-None-Match", []string{"If-None-Match", `"x", W/"v1"`}, 304},
		{"a different If-None-Match", []string{"If-None-Match", `"v0"`}, 200},
		{"If-Modified-Since at Last-Modified", []string{"If-Modified-Since", lm.Format(http.TimeFormat)}, 304},
		{"If-Modified-Since before Last-Modified", []string{"If-Modified-Since", lm.Add(-time.Minute).Format(http.TimeFormat)}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := cget(t, "GET", base+"/r", tc.hdr...)
			if res.StatusCode != tc.want || res.Header.Get("Etag") != `"v1"` {
				t.Errorf("%d (ETag %q), want %d", res.StatusCode, res.Header.Get("Etag"), tc.want)
			}
		})
	}
	if u.count("/r") != 1 {
		t.Errorf("upstream saw %d requests, want 1", u.count("/r"))
	}
}

// RFC 9111 §4.3.2 with §4.3.1: the cache asks for the full response to store it.
func TestAConditionalMissIsStoredWholeAndStillAnswered304(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" {
			t.Errorf("the fetch for the store carried If-None-Match %q", r.Header.Get("If-None-Match"))
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"v1"`)
		io.WriteString(w, "body")
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	steps := []struct {
		hdr    []string
		code   int
		body   string
		status string
	}{
		{[]string{"If-None-Match", `"v1"`}, 304, "", "Portcullis; fwd=miss; fwd-status=200; stored"},
		{nil, 200, "body", "Portcullis; hit"},
		{[]string{"If-None-Match", `"v1"`}, 304, "", "Portcullis; hit"},
		{[]string{"If-None-Match", `"v0"`}, 200, "body", "Portcullis; hit"},
	}
	for i, s := range steps {
		res, body := cget(t, "GET", base+"/c", s.hdr...)
		if res.StatusCode != s.code || body != s.body || !strings.HasPrefix(cacheStatus(res), s.status) {
			t.Errorf("step %d: %d %q %q", i, res.StatusCode, body, cacheStatus(res))
		}
	}
	if u.count("/c") != 1 {
		t.Errorf("upstream saw %d requests, want 1", u.count("/c"))
	}
}

// RFC 9111 §4 (a cache MAY collapse requests): coalescing.
func TestConcurrentMissesWaitForOneUpstreamRequest(t *testing.T) {
	release := map[string]chan struct{}{"/shared": make(chan struct{}), "/private": make(chan struct{})}
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release[r.URL.Path]
		if r.URL.Path == "/private" {
			w.Header().Set("Cache-Control", "private")
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		io.WriteString(w, "shared")
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	for _, tc := range []struct {
		name string
		path string
		want int
	}{
		{"a cacheable answer serves every waiter", "/shared", 1},
		{"after an uncacheable answer the waiters go upstream themselves", "/private", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, body := cget(t, "GET", base+tc.path); body != "shared" {
						t.Errorf("body %q", body)
					}
				})
			}
			// Let every request reach the proxy before the upstream answers.
			deadline := time.Now().Add(5 * time.Second)
			for u.count(tc.path) < 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			close(release[tc.path])
			wg.Wait()
			if got := u.count(tc.path); got != tc.want {
				t.Errorf("upstream saw %d requests, want %d", got, tc.want)
			}
		})
	}
}

// RFC 5861 §3 (stale-while-revalidate), RFC 9111 §4.2.4 (serving stale).
func TestStaleWhileRevalidateAnswersAtOnceAndRefreshesOnce(t *testing.T) {
	var n atomic.Int32
	block := make(chan struct{})
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		v := n.Add(1)
		if v > 1 {
			<-block
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		io.WriteString(w, "version "+strconv.Itoa(int(v)))
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	cget(t, "GET", base+"/r")
	time.Sleep(1100 * time.Millisecond)
	for i := range 3 {
		// The upstream is blocked: these answers cannot have waited for it.
		res, body := cget(t, "GET", base+"/r")
		if body != "version 1" || !strings.Contains(cacheStatus(res), "stale-while-revalidate") {
			t.Errorf("stale answer %d: %q %q", i, body, cacheStatus(res))
		}
	}
	// The refresh runs in the background: wait for it to reach the
	// upstream (bounded), then there must be exactly one.
	for deadline := time.Now().Add(5 * time.Second); u.count("/r") < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := u.count("/r"); got != 2 {
		t.Errorf("upstream saw %d requests, want 2 (one refresh)", got)
	}
	close(block)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := cget(t, "GET", base+"/r")
		if body == "version 2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refresh never landed: %q", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := u.count("/r"); got != 2 {
		t.Errorf("upstream saw %d requests, want 2", got)
	}
}

// RFC 5861 §4 (stale-if-error), RFC 9111 §4.2.4.
func TestStaleIfErrorServesTheStaleEntryWhenTheUpstreamFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(u *cacheUpstream)
		want string
	}{
		{"the upstream answers 503", func(u *cacheUpstream) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
			u.h.Store(&h)
		}, "fwd-status=503"},
		{"the upstream is down", func(u *cacheUpstream) { u.srv.Close() }, "fwd-status=502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = nil
				w.Header().Set("Cache-Control", "max-age=1, stale-if-error=60")
				io.WriteString(w, "good")
			})
			_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
			cget(t, "GET", base+"/r")
			tc.fail(u)
			time.Sleep(1100 * time.Millisecond)
			res, body := cget(t, "GET", base+"/r")
			if res.StatusCode != 200 || body != "good" || !strings.Contains(cacheStatus(res), "stale-if-error") || !strings.Contains(cacheStatus(res), tc.want) {
				t.Errorf("%d %q %q", res.StatusCode, body, cacheStatus(res))
			}
		})
	}
}

// RFC 9111 §4.4 (invalidating the target URI, Location and Content-Location).
func TestUnsafeRequestsInvalidateWhatTheyChange(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && r.URL.Path == "/items":
			w.Header().Set("Location", "/items/2")
			w.Header().Set("Content-Location", "http://elsewhere.test/items/3")
			w.WriteHeader(201)
		case r.Method == "POST":
			w.WriteHeader(500)
		default:
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, r.URL.Path)
		}
	})
	p, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	for _, path := range []string{"/items", "/items/2", "/items/3", "/other"} {
		cget(t, "GET", base+path)
	}
	if n := p.Generation().Cache("c").Len(); n != 4 {
		t.Fatalf("%d stored, want 4", n)
	}
	cget(t, "POST", base+"/items")
	cget(t, "POST", base+"/other") // a 500 invalidates nothing
	for _, tc := range []struct {
		path string
		want int
	}{{"/items", 3}, {"/items/2", 2}, {"/items/3", 1}, {"/other", 2}} { // the POSTs count too
		cget(t, "GET", base+tc.path)
		if got := u.count(tc.path); got != tc.want {
			t.Errorf("%s: upstream saw %d requests, want %d", tc.path, got, tc.want)
		}
	}
}

func TestInvalidationUsesTheClientsURIOnARewritingRoute(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.WriteHeader(200)
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}\n      rewrite: {strip_prefix: /api}")
	cget(t, "GET", base+"/api/doc")
	cget(t, "PUT", base+"/api/doc")
	cget(t, "GET", base+"/api/doc")
	if got := u.count("/doc"); got != 3 {
		t.Errorf("upstream saw %d requests for /doc, want 3 (GET, PUT, GET after invalidation)", got)
	}
}

// RFC 9211 (Cache-Status), RFC 9111 §4 (HEAD from a stored GET), §5.2.1.7 (only-if-cached → 504).
func TestCacheStatusAndHeadAndOnlyIfCached(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "0123456789")
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	steps := []struct {
		method string
		path   string
		hdr    []string
		code   int
		status string
	}{
		{"GET", "/only", []string{"Cache-Control", "only-if-cached"}, 504, "Portcullis; fwd=miss; detail=only-if-cached"},
		{"GET", "/a", nil, 200, "Portcullis; fwd=miss; fwd-status=200; stored"},
		{"GET", "/a", nil, 200, "Portcullis; hit; ttl="},
		{"HEAD", "/a", nil, 200, "Portcullis; hit; ttl="},
		{"GET", "/a", []string{"Cache-Control", "only-if-cached"}, 200, "Portcullis; hit"},
		{"GET", "/a", []string{"Cache-Control", "no-cache"}, 200, "Portcullis; fwd=request; fwd-status=200; stored"},
		{"GET", "/a", []string{"Cache-Control", "max-age=0"}, 200, "Portcullis; fwd=stale; fwd-status=200; stored"},
		{"GET", "/a", []string{"Range", "bytes=0-1"}, 200, "Portcullis; fwd=bypass; fwd-status=200"},
		{"HEAD", "/b", nil, 200, "Portcullis; fwd=miss; fwd-status=200"},
	}
	for i, s := range steps {
		res, body := cget(t, s.method, base+s.path, s.hdr...)
		if res.StatusCode != s.code || !strings.HasPrefix(cacheStatus(res), s.status) {
			t.Errorf("step %d: %d %q, want %d %q", i, res.StatusCode, cacheStatus(res), s.code, s.status)
		}
		if s.method == "HEAD" && (body != "" || res.ContentLength != 10) {
			t.Errorf("step %d: HEAD body %q, length %d", i, body, res.ContentLength)
		}
	}
	if u.count("/a") != 4 {
		t.Errorf("upstream saw %d requests for /a, want 4", u.count("/a"))
	}
}

func TestTheByteBudgetEvictsTheLeastRecentlyUsed(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		n := 3000
		if r.URL.Path == "/big" {
			n = 5000
		}
		io.WriteString(w, strings.Repeat("x", n))
	})
	p, base := startCacheProxy(t, u, "{max_bytes: 8192, max_entry_bytes: 4096}")
	c := p.Generation().Cache("c")
	cget(t, "GET", base+"/1")
	cget(t, "GET", base+"/2")
	cget(t, "GET", base+"/1") // /1 is now the most recent
	cget(t, "GET", base+"/3") // evicts /2
	if c.Evictions.Load() != 1 || c.Len() != 2 || c.Bytes() > 8192 {
		t.Fatalf("evictions %d, entries %d, bytes %d", c.Evictions.Load(), c.Len(), c.Bytes())
	}
	cget(t, "GET", base+"/1")
	cget(t, "GET", base+"/2")
	if u.count("/1") != 1 || u.count("/2") != 2 {
		t.Errorf("upstream: /1 %d (want 1), /2 %d (want 2)", u.count("/1"), u.count("/2"))
	}
	for range 2 {
		if _, body := cget(t, "GET", base+"/big"); len(body) != 5000 {
			t.Errorf("big body %d bytes", len(body))
		}
	}
	if u.count("/big") != 2 {
		t.Errorf("a body over max_entry_bytes was stored")
	}
}

func TestCacheMetricsAreExported(t *testing.T) {
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "x")
	})
	p, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	cget(t, "GET", base+"/m")
	cget(t, "GET", base+"/m")
	rec := httptest.NewRecorder()
	reg := newTestRegistry(p)
	reg.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{`portcullis_cache_requests_total{result="hit",route="c"} 1`, `portcullis_cache_requests_total{result="miss",route="c"} 1`, `portcullis_cache_bytes{route="c"}`, `portcullis_cache_evictions_total{route="c"} 0`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// maxAllocsCacheHit is the budget of a request answered from the cache with
// the lean server: the request head, the request id string, the Age and
// Content-Length values and the Cache-Status member.
const maxAllocsCacheHit = 5

func TestAllocationBudgetOfACacheHit(t *testing.T) {
	skipAllocMeasurement(t)
	u := newCacheUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		io.WriteString(w, strings.Repeat("x", 64))
	})
	_, base := startCacheProxy(t, u, "{max_bytes: 1048576}")
	rc := newRawClient(t, strings.TrimPrefix(base, "http://"))
	n := allocsPerRequest(t, rc, 100, 2000, 0)
	t.Logf("%.1f allocations per cache hit", n)
	if n > maxAllocsCacheHit || u.count("/bench") != 1 {
		t.Errorf("%.1f allocations per hit (budget %d), upstream saw %d", n, maxAllocsCacheHit, u.count("/bench"))
	}
}

// BenchmarkCacheHit is one request answered from the cache over a
// keep-alive connection (the listener's default server, the lean one).
func BenchmarkCacheHit(b *testing.B) {
	u := newCacheUpstream(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("x", 64))
	})
	_, base := startCacheProxy(b, u, "{max_bytes: 1048576}")
	rc := newRawClient(b, strings.TrimPrefix(base, "http://"))
	rc.do(b)
	benchRequests(b, rc)
	if u.count("/bench") != 1 {
		b.Fatalf("upstream saw %d requests", u.count("/bench"))
	}
}

func newTestRegistry(p *Proxy) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collectors()...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
