// Package cache is the proxy's shared HTTP cache (RFC 9111), one per route
// with a cache: key. It decides what may be stored and for how long, keeps
// the entries in memory within a byte budget (least recently used out
// first), and coalesces concurrent misses. The request path that uses it is
// in l7 (cachepath.go); see docs/cache.md.
package cache

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// Cache is one route's store.
type Cache struct {
	conf     config.Cache
	maxEntry int64
	heur     float64

	mu    sync.Mutex
	res   map[string]*resource
	lru   Entry // sentinel: lru.next is the most recently used
	bytes int64
	// flights are the upstream fetches in progress, by primary key.
	flights map[string]*Flight

	// Counters for the metrics (read when scraped).
	Hits, Misses, Stale, Revalidated, Bypass, Evictions atomic.Uint64
	size                                                atomic.Int64
}

// resource is everything stored under one primary key: the variants of the
// Vary header fields the latest stored response named.
type resource struct {
	vary     []string // canonical names, sorted
	variants map[string]*Entry
}

// New builds a route's cache from its (defaulted, validated) config.
func New(c config.Cache) (*Cache, error) {
	x := &Cache{conf: c, maxEntry: c.MaxEntryBytes, res: map[string]*resource{}, flights: map[string]*Flight{}}
	if c.Heuristic != "" {
		f, err := config.ParseCacheHeuristic(c.Heuristic)
		if err != nil {
			return nil, err
		}
		x.heur = f
	}
	x.lru.next, x.lru.prev = &x.lru, &x.lru
	return x, nil
}

// Config is the config the cache was built from (a reload keeps a cache
// whose config is unchanged).
func (c *Cache) Config() config.Cache { return c.conf }

// MaxEntryBytes is the largest body stored.
func (c *Cache) MaxEntryBytes() int64 { return c.maxEntry }

// CoalesceTimeout bounds a wait for another request's fetch.
func (c *Cache) CoalesceTimeout() time.Duration { return c.conf.CoalesceTimeout.D() }

// Bytes is what the entries take now.
func (c *Cache) Bytes() int64 { return c.size.Load() }

// AppendKey appends the primary key of a request: the host, lower case,
// and the request target (path and query) as sent.
func AppendKey(b []byte, host, target string) []byte {
	for i := 0; i < len(host); i++ {
		ch := host[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b = append(b, ch)
	}
	return append(b, target...)
}

// Lookup returns the entry stored for the key and the request's header (its
// values of the fields the stored response's Vary names), nil when none.
func (c *Cache) Lookup(key []byte, h http.Header) *Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res[string(key)]
	if r == nil {
		return nil
	}
	var e *Entry
	if len(r.vary) == 0 {
		e = r.variants[""]
	} else {
		e = r.variants[varyKey(r.vary, h)]
	}
	if e != nil {
		c.unlink(e)
		c.pushFront(e)
	}
	return e
}

// varyKey is the secondary key (RFC 9111 §4.1): the request's values of the
// named fields, each list trimmed and lower-cased (the fields caches vary on,
// Accept-Encoding, Accept-Language, Origin, compare case-insensitively).
func varyKey(names []string, h http.Header) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('=')
		for i, v := range h[n] {
			if i > 0 {
				b.WriteByte(',')
			}
			for p := range strings.SplitSeq(v, ",") {
				b.WriteString(strings.ToLower(strings.TrimSpace(p)))
				b.WriteByte(',')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// varyNames reads a response's Vary; star reports Vary: * (never stored).
func varyNames(h http.Header) (names []string, star bool) {
	names = hkey.AppendList(nil, h["Vary"])
	if slices.Contains(names, "*") {
		return nil, true
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// heuristicStatus are the status codes cacheable by default (RFC 9110
// §15.1). 206 is left out: the cache does not combine ranges.
func heuristicStatus(s int) bool {
	switch s {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// Verdict is what Storable decided, for Cache-Status's detail.
type Verdict string

const (
	Storable          Verdict = ""
	NotGET            Verdict = "method"
	RequestNoStore    Verdict = "request-no-store"
	ResponseNoStore   Verdict = "no-store"
	Private           Verdict = "private"
	Authorized        Verdict = "authorization"
	StatusNotCachable Verdict = "status"
	VaryStar          Verdict = "vary-star"
	SetCookie         Verdict = "set-cookie"
	NoLifetime        Verdict = "no-freshness"
)

// Storable decides whether a shared cache may store the response to a GET
// (RFC 9111 §3, §3.5, §5.2.2).
func (c *Cache) Storable(req *Request, method string, hasAuth bool, status int, h http.Header) Verdict {
	if method != http.MethodGet {
		return NotGET
	}
	if req.NoStore {
		return RequestNoStore
	}
	d := parseDirectives(h["Cache-Control"])
	switch {
	case d.noStore:
		return ResponseNoStore
	case d.private:
		return Private
	case hasAuth && !d.public && d.sMaxAge < 0 && !d.mustRevalidate:
		return Authorized
	}
	if _, star := varyNames(h); star {
		return VaryStar
	}
	// A shared cache handing one client's cookie to the next is the classic
	// cache leak: responses that set cookies are never stored.
	if len(h["Set-Cookie"]) > 0 {
		return SetCookie
	}
	explicit := d.public || d.maxAge >= 0 || d.sMaxAge >= 0 || len(h["Expires"]) > 0
	if status == http.StatusPartialContent || status == http.StatusNotModified || status < 200 ||
		(!heuristicStatus(status) && !explicit) {
		return StatusNotCachable
	}
	// Without a lifetime and without a validator an entry could never be
	// used: not worth the memory.
	if !explicit && !d.noCache && h.Get("Last-Modified") == "" && h.Get("Etag") == "" {
		return NoLifetime
	}
	return Storable
}

// NewEntry makes an entry of a response received at respTime for a request
// sent at reqTime. The header is copied.
func (c *Cache) NewEntry(status int, h http.Header, body []byte, reqTime, respTime time.Time) *Entry {
	e := &Entry{Status: status, Header: storedHeader(h), Body: body}
	c.setTimes(e, h, reqTime, respTime)
	return e
}

// setTimes computes the entry's age and lifetime (RFC 9111 §4.2) from the
// header of the response (or of the 304 that refreshed it).
func (c *Cache) setTimes(e *Entry, h http.Header, reqTime, respTime time.Time) {
	d := parseDirectives(e.Header["Cache-Control"])
	date := respTime
	if t, err := http.ParseTime(e.Header.Get("Date")); err == nil {
		date = t
	}
	// §4.2.3.
	ageValue := time.Duration(0)
	if a := h.Get("Age"); a != "" {
		ageValue = seconds(a)
	}
	apparent := max(0, respTime.Sub(date))
	corrected := ageValue + max(0, respTime.Sub(reqTime))
	e.respTime = respTime
	e.initialAge = max(apparent, corrected)
	// §4.2.1: s-maxage, then max-age, then Expires - Date; §4.2.2:
	// heuristic only when configured, for default-cacheable statuses.
	switch {
	case d.sMaxAge >= 0:
		e.lifetime = d.sMaxAge
	case d.maxAge >= 0:
		e.lifetime = d.maxAge
	case len(e.Header["Expires"]) > 0:
		if t, err := http.ParseTime(e.Header.Get("Expires")); err == nil {
			e.lifetime = max(0, t.Sub(date))
		} else {
			e.lifetime = 0 // §5.3: an invalid Expires is in the past
		}
	case c.heur > 0 && heuristicStatus(e.Status):
		if lm, err := http.ParseTime(e.Header.Get("Last-Modified")); err == nil && lm.Before(date) {
			e.lifetime = min(time.Duration(float64(date.Sub(lm))*c.heur), c.conf.HeuristicMax.D())
		}
	}
	e.noCache = d.noCache
	e.noStale = d.mustRevalidate || d.proxyRevalidate || d.sMaxAge >= 0
	e.swr, e.sie = c.conf.StaleWhileRevalidate.D(), c.conf.StaleIfError.D()
	if d.swr >= 0 {
		e.swr = d.swr
	}
	if d.sie >= 0 {
		e.sie = d.sie
	}
	e.ETag = e.Header.Get("Etag")
	e.LastMod = e.Header.Get("Last-Modified")
}

// Refresh makes the entry that replaces e after a 304 (RFC 9111 §4.3.4):
// the 304's fields replace the stored ones (§3.2), except the framing
// fields; the body stays. The new entry is stored in e's place.
func (c *Cache) Refresh(e *Entry, h304 http.Header, reqTime, respTime time.Time) *Entry {
	ne := &Entry{Status: e.Status, Body: e.Body, Header: e.Header.Clone()}
	var vary []string
	if e.res != nil {
		vary = e.res.vary
	}
	for k, v := range storedHeader(h304) {
		switch k {
		case "Content-Type", "Content-Encoding", "Content-Range":
			continue
		}
		ne.Header[k] = v
	}
	c.setTimes(ne, h304, reqTime, respTime)
	c.put(e.key, vary, e.vkey, ne, e)
	return ne
}

// Store stores e under the primary key for a request with header reqH.
// A response whose Vary differs from what the resource had replaces all of
// its variants.
func (c *Cache) Store(key string, reqH http.Header, e *Entry) {
	names, _ := varyNames(e.Header)
	vkey := ""
	if len(names) > 0 {
		vkey = varyKey(names, reqH)
	}
	c.put(key, names, vkey, e, nil)
}

func (c *Cache) put(key string, vary []string, vkey string, e, replaces *Entry) {
	e.key, e.vkey = key, vkey
	e.size = int64(len(e.Body)+2*len(key)+len(vkey)) + 256
	for k, vv := range e.Header {
		e.size += int64(len(k)) + 16
		for _, v := range vv {
			e.size += int64(len(v)) + 16
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if replaces != nil && (replaces.res == nil || replaces.res.variants[replaces.vkey] != replaces) {
		// Purged or replaced meanwhile: the refreshed entry is still
		// served to this request, not stored.
		return
	}
	r := c.res[key]
	if r != nil && !slices.Equal(r.vary, vary) {
		c.dropLocked(key, r)
		r = nil
	}
	if r == nil {
		r = &resource{vary: vary, variants: map[string]*Entry{}}
		c.res[key] = r
	}
	if old := r.variants[vkey]; old != nil {
		c.removeLocked(old)
	}
	e.res = r
	r.variants[vkey] = e
	c.res[key] = r // removing the old variant may have dropped the resource
	c.pushFront(e)
	c.bytes += e.size
	for c.bytes > c.conf.MaxBytes && c.lru.prev != &c.lru {
		c.removeLocked(c.lru.prev)
		c.Evictions.Add(1)
	}
	c.size.Store(c.bytes)
}

func (c *Cache) pushFront(e *Entry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

func (c *Cache) unlink(e *Entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *Cache) removeLocked(e *Entry) {
	if e.prev == nil {
		return
	}
	c.unlink(e)
	c.bytes -= e.size
	r := e.res
	if r.variants[e.vkey] == e {
		delete(r.variants, e.vkey)
	}
	if len(r.variants) == 0 && c.res[e.key] == r {
		delete(c.res, e.key)
	}
}

func (c *Cache) dropLocked(key string, r *resource) {
	for _, e := range r.variants {
		c.removeLocked(e)
	}
	delete(c.res, key)
}

// Invalidate drops every variant stored under the primary key.
func (c *Cache) Invalidate(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res[key]
	if r == nil {
		return false
	}
	c.dropLocked(key, r)
	c.size.Store(c.bytes)
	return true
}

// PurgePrefix drops every resource whose primary key starts with prefix
// ("" drops everything) and returns how many it dropped.
func (c *Cache) PurgePrefix(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, r := range c.res {
		if strings.HasPrefix(k, prefix) {
			c.dropLocked(k, r)
			n++
		}
	}
	c.size.Store(c.bytes)
	return n
}

// Len is the number of stored entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.res {
		n += len(r.variants)
	}
	return n
}

// Flight is an upstream fetch other requests for the same key wait for.
type Flight struct{ done chan struct{} }

// Join returns the fetch in progress for key, or starts one: leader is
// true when the caller must fetch and then call Finish.
func (c *Cache) Join(key []byte) (f *Flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[string(key)]; f != nil {
		return f, false
	}
	f = &Flight{done: make(chan struct{})}
	c.flights[string(key)] = f
	return f, true
}

// Finish ends the leader's fetch: the waiters look the key up again.
func (c *Cache) Finish(key []byte, f *Flight) {
	c.mu.Lock()
	if c.flights[string(key)] == f {
		delete(c.flights, string(key))
	}
	c.mu.Unlock()
	close(f.done)
}

// Wait waits for the fetch to end, at most d or until ctx ends; it reports
// whether the fetch ended.
func (f *Flight) Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Status renders a Cache-Status member (RFC 9211 §2) for this cache.
func Status(params string) string { return "Portcullis; " + params }

// TTLParam is "; ttl=N" (seconds; negative when stale, §2.5).
func TTLParam(ttl time.Duration) string {
	return string(appendTTL(nil, ttl))
}

func appendTTL(b []byte, ttl time.Duration) []byte {
	s := int64(ttl / time.Second)
	if ttl < 0 && ttl%time.Second != 0 {
		s--
	}
	return strconv.AppendInt(append(b, "; ttl="...), s, 10)
}

// Hit is the whole member of an answer from the cache, built with one
// allocation: "Portcullis; hit; ttl=N" and extra.
func Hit(ttl time.Duration, extra string) string {
	var buf [96]byte
	b := append(buf[:0], "Portcullis; hit"...)
	b = appendTTL(b, ttl)
	return string(append(b, extra...))
}
