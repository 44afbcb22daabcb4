package cache

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestDirectivesAreParsedAsRFC9111Writes(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   func(d directives) bool
	}{
		{"names are case-insensitive", "Max-Age=60, NO-CACHE", func(d directives) bool { return d.maxAge == time.Minute && d.noCache }},
		{"a quoted argument", `max-age="30"`, func(d directives) bool { return d.maxAge == 30*time.Second }},
		{"a comma inside quotes does not split", `private="a, b", s-maxage=5`, func(d directives) bool { return d.private && d.sMaxAge == 5*time.Second }},
		{"an invalid max-age is stale", "max-age=soon", func(d directives) bool { return d.maxAge == 0 }},
		{"an overflowing value is capped at 2^31", "max-age=99999999999999999999", func(d directives) bool { return d.maxAge == maxDelta*time.Second }},
		{"max-stale without a value takes any staleness", "max-stale", func(d directives) bool { return d.maxStaleAny && d.maxStale < 0 }},
		{"absent directives are -1", "public", func(d directives) bool { return d.public && d.maxAge < 0 && d.sMaxAge < 0 && d.swr < 0 }},
		{"RFC 5861 windows", "stale-while-revalidate=10, stale-if-error=20", func(d directives) bool { return d.swr == 10*time.Second && d.sie == 20*time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := parseDirectives([]string{tc.in}); !tc.ok(d) {
				t.Errorf("%q → %+v", tc.in, d)
			}
		})
	}
}

func TestPragmaNoCacheCountsOnlyWithoutCacheControl(t *testing.T) {
	if !ParseRequest(http.Header{"Pragma": {"no-cache"}}).NoCache {
		t.Error("Pragma: no-cache alone is no-cache (RFC 9111 §5.4)")
	}
	if ParseRequest(http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=5"}}).NoCache {
		t.Error("Cache-Control wins over Pragma")
	}
}

func newTestCache(t *testing.T, maxBytes int64) *Cache {
	c, err := New(config.Cache{MaxBytes: maxBytes, MaxEntryBytes: maxBytes / 2})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func store(c *Cache, key string, reqH http.Header, h http.Header, body string) *Entry {
	now := time.Now()
	e := c.NewEntry(200, h, []byte(body), now, now)
	c.Store(key, reqH, e)
	return e
}

func TestVariantsAreKeyedByNormalisedValuesAndReplacedWithTheVarySet(t *testing.T) {
	c := newTestCache(t, 1<<20)
	resp := http.Header{"Cache-Control": {"max-age=60"}, "Vary": {"accept-encoding, Accept-Language"}}
	store(c, "h/a", http.Header{"Accept-Language": {"en, DE"}, "Accept-Encoding": {"gzip"}}, resp, "1")
	if e := c.Lookup([]byte("h/a"), http.Header{"Accept-Language": {" EN,de "}, "Accept-Encoding": {"GZIP"}}); e == nil || string(e.Body) != "1" {
		t.Fatal("a request differing in case and spaces found no variant")
	}
	if c.Lookup([]byte("h/a"), http.Header{"Accept-Language": {"fr"}, "Accept-Encoding": {"gzip"}}) != nil {
		t.Fatal("another language found the variant")
	}
	store(c, "h/a", http.Header{"Accept-Language": {"fr"}, "Accept-Encoding": {"gzip"}}, resp, "2")
	if c.Len() != 2 {
		t.Fatalf("%d variants, want 2", c.Len())
	}
	store(c, "h/a", nil, http.Header{"Cache-Control": {"max-age=60"}}, "3")
	if c.Len() != 1 {
		t.Fatalf("a new Vary set kept %d entries, want 1", c.Len())
	}
}

func TestTheLeastRecentlyUsedEntryIsEvictedFirst(t *testing.T) {
	c := newTestCache(t, 4096)
	h := http.Header{"Cache-Control": {"max-age=60"}}
	body := strings.Repeat("x", 1000)
	store(c, "h/1", nil, h, body)
	store(c, "h/2", nil, h, body)
	store(c, "h/3", nil, h, body)
	c.Lookup([]byte("h/1"), nil)
	store(c, "h/4", nil, h, body)
	if c.Lookup([]byte("h/2"), nil) != nil || c.Lookup([]byte("h/1"), nil) == nil || c.Evictions.Load() != 1 {
		t.Fatalf("evictions %d; h/2 should be gone and h/1 kept", c.Evictions.Load())
	}
	if c.Bytes() > 4096 {
		t.Fatalf("%d bytes held, budget 4096", c.Bytes())
	}
	if n := c.PurgePrefix("h/"); n != 3 || c.Bytes() != 0 {
		t.Fatalf("purged %d, %d bytes left", n, c.Bytes())
	}
}

func TestA304RefreshesTheStoredHeader(t *testing.T) {
	c := newTestCache(t, 1<<20)
	t0 := time.Now().Add(-time.Minute)
	e := c.NewEntry(200, http.Header{"Cache-Control": {"max-age=10"}, "Etag": {`"a"`}, "Content-Type": {"text/plain"}, "X-V": {"1"}}, []byte("b"), t0, t0)
	c.Store("h/r", nil, e)
	if e.TTL(time.Now()) > 0 {
		t.Fatal("the entry should be stale")
	}
	ne := c.Refresh(e, http.Header{"Cache-Control": {"max-age=100"}, "X-V": {"2"}, "Content-Type": {"bogus"}, "Connection": {"close"}}, time.Now(), time.Now())
	if ne.Header.Get("X-V") != "2" || ne.Header.Get("Content-Type") != "text/plain" || ne.Header.Get("Connection") != "" || ne.TTL(time.Now()) < 99*time.Second {
		t.Fatalf("refreshed header %v ttl %v", ne.Header, ne.TTL(time.Now()))
	}
	if got := c.Lookup([]byte("h/r"), nil); got != ne {
		t.Fatal("the refreshed entry does not replace the stale one")
	}
}

func TestHitStatus(t *testing.T) {
	if got := Hit(12500*time.Millisecond, ""); got != "Portcullis; hit; ttl=12" {
		t.Error(got)
	}
	if got := Hit(-1500*time.Millisecond, "; detail=x"); got != "Portcullis; hit; ttl=-2; detail=x" {
		t.Error(got)
	}
}

// TestTheByteBudgetHoldsUnderAChurnOfLargeObjects stores thousands of
// large objects (and Vary variants of them) from several goroutines into a
// 4 MiB cache while checking, all along, that what it holds never exceeds
// the budget, and that its byte count matches the entries it keeps.
func TestTheByteBudgetHoldsUnderAChurnOfLargeObjects(t *testing.T) {
	const budget = 4 << 20
	c := newTestCache(t, budget)
	h := http.Header{"Cache-Control": {"max-age=600"}, "Vary": {"Accept-Language"}}
	var over atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if b := c.Bytes(); b > budget {
				over.Store(b)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1500 {
				size := 64<<10 + (i*7919+g)%(512<<10) // 64 KiB .. 576 KiB
				key := fmt.Sprintf("h/obj/%d", (i*31+g)%700)
				lang := http.Header{"Accept-Language": {[]string{"en", "de", "fr"}[i%3]}}
				store(c, key, lang, h, strings.Repeat("x", size))
				c.Lookup([]byte(key), lang)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	if b := over.Load(); b != 0 {
		t.Fatalf("the cache held %d bytes, over its budget of %d", b, budget)
	}
	if c.Bytes() > budget || c.Bytes() <= 0 || c.Evictions.Load() == 0 {
		t.Fatalf("%d bytes held, %d evictions", c.Bytes(), c.Evictions.Load())
	}
	if n := c.PurgePrefix("h/"); n == 0 || c.Bytes() != 0 {
		t.Fatalf("purged %d entries, %d bytes left: the count drifted from the entries", n, c.Bytes())
	}
}
