package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	h := Handler()

	page := get(t, h, "GET", "/")
	html := body(t, page)
	if page.StatusCode != 200 || page.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q", page.StatusCode, page.Header.Get("Content-Type"))
	}
	if page.Header.Get("Cache-Control") != "no-cache" || page.Header.Get("ETag") == "" {
		t.Errorf("page caching: Cache-Control %q, ETag %q", page.Header.Get("Cache-Control"), page.Header.Get("ETag"))
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	if strings.Contains(html, "http://") || strings.Contains(html, "https://") {
		t.Errorf("the page refers to another origin; it must work with no internet")
	}

	// Every asset the page names carries its content hash and is served
	// with the right type; with the hash it may be cached for good.
	refs := regexp.MustCompile(`"assets/([a-z.]+)\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(html, -1)
	want := map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}
	if len(refs) != len(want) {
		t.Fatalf("asset references %v, want one each of %v", refs, want)
	}
	for _, ref := range refs {
		name, hash := ref[1], ref[2]
		r := get(t, h, "GET", "/assets/"+name+"?v="+hash)
		b := body(t, r)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != want[name] || len(b) == 0 {
			t.Errorf("%s: %d %q, %d bytes", name, r.StatusCode, r.Header.Get("Content-Type"), len(b))
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s with its hash: Cache-Control %q", name, cc)
		}
		if r.Header.Get("ETag") != `"`+hash+`"` {
			t.Errorf("%s: ETag %q, want the hash %q", name, r.Header.Get("ETag"), hash)
		}
		// Without the hash (or with an old one) it must be revalidated.
		r = get(t, h, "GET", "/assets/"+name+"?v=0000")
		if r.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s with a stale hash: Cache-Control %q", name, r.Header.Get("Cache-Control"))
		}
		r = get(t, h, "GET", "/assets/"+name, "If-None-Match", `"`+hash+`"`)
		if r.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d, want 304", name, r.StatusCode)
		}
	}

	if r := get(t, h, "HEAD", "/"); r.StatusCode != 200 || body(t, r) != "" {
		t.Errorf("HEAD / = %d", r.StatusCode)
	}
	for _, p := range []string{"/assets/", "/assets/nope.js", "/assets/../data.go", "/index.html", "/foo"} {
		if r := get(t, h, "GET", p); r.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, h, "POST", "/"); r.StatusCode != 405 {
		t.Errorf("POST / = %d, want 405", r.StatusCode)
	}
}

// The handler is meant for the admin mux next to /api/: the patterns the
// lead mounts must not conflict with a method-less "/api/" catch-all.
func TestHandlerMountsBesideAPI(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api", 404) })
	mux.Handle("GET /{$}", Handler())
	mux.Handle("GET /assets/", Handler())
	if r := get(t, mux, "GET", "/"); r.StatusCode != 200 {
		t.Errorf("GET / = %d", r.StatusCode)
	}
	if r := get(t, mux, "GET", "/assets/app.js"); r.StatusCode != 200 {
		t.Errorf("GET /assets/app.js = %d", r.StatusCode)
	}
}
