package l7

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/cache"
	"github.com/portcullis-lb/portcullis/l7/route"
	"github.com/prometheus/client_golang/prometheus"
)

// The shared cache's place in the request path (issue #8): after the
// route's security middleware and its body limit, before a pool is picked.
// A hit is answered here without touching the pool; a miss goes on to the
// forwarding code with the ResponseWriter wrapped (cacheWriter), which tees
// a storable response into the route's cache as it streams to the client.
// The wrapper sits between the JSON transform (inside, closer to the
// upstream) and compression (outside, closer to the client), so the cache
// keeps the identity representation and compression happens on the way out.
//
// The hop's own response decoration (the route's response_headers, CORS and
// RateLimit fields, Via, the request id) is applied by the wrapper after it
// has kept the upstream's head, and again on every hit: stored entries hold
// nothing that belongs to one request.

type cacheMode uint8

const (
	cacheStore      cacheMode = iota + 1 // GET: look up, coalesce, store
	cacheLookup                          // HEAD: answered from a stored GET, never stored
	cacheBypass                          // GET/HEAD the cache cannot use (Range, no-store)
	cacheInvalidate                      // unsafe methods: drop what they change
)

// cacheState is the request's cache state, kept in reqState.
type cacheState struct {
	c        *cache.Cache
	mode     cacheMode
	wrapped  bool
	hasAuth  bool
	key      []byte
	keyBuf   [128]byte
	req      cache.Request
	stale    *cache.Entry // the stored entry: validated upstream, or served if the upstream fails
	refresh  *cache.Entry // this request is that entry's background refresh
	flight   *cache.Flight
	validate bool
	inm, ims []string // the client's own conditionals
	// stripped: the client's conditionals were kept from a miss's fetch
	// so that a full answer can be stored; they are evaluated here.
	stripped bool
	reqTime  time.Time
	fwd      string // Cache-Status fwd= of a forwarded request
	w        cacheWriter
}

// refreshKey marks the context of a background refresh (stale-while-revalidate).
type refreshKey struct{}

// compileCaches builds the caches of the routes that have one.
func compileCaches(c *config.Config, g *Generation) error {
	g.caches = map[*route.Route]*cache.Cache{}
	g.cacheByName = map[string]*cache.Cache{}
	for _, rc := range c.L7.Routes {
		if rc.Cache == nil {
			continue
		}
		x, err := cache.New(*rc.Cache)
		if err != nil {
			return fmt.Errorf("route %q: cache: %w", rc.Name, err)
		}
		g.cacheByName[rc.Name] = x
	}
	g.bindCaches()
	return nil
}

func (g *Generation) bindCaches() {
	for _, lc := range g.byListener {
		for _, rt := range lc.table.Routes() {
			if x := g.cacheByName[rt.Name]; x != nil {
				g.caches[rt] = x
			}
		}
	}
}

// adoptCaches keeps the stored entries of routes whose cache settings a
// reload did not change. (Entries of a route whose upstream changed are
// purged with the admin API.)
func (g *Generation) adoptCaches(prev *Generation) {
	if prev == nil || len(g.cacheByName) == 0 {
		return
	}
	for name, x := range g.cacheByName {
		if old := prev.cacheByName[name]; old != nil && old.Config() == x.Config() {
			g.cacheByName[name] = old
		}
	}
	g.bindCaches()
}

// Cache returns the named route's cache, nil when it has none.
func (g *Generation) Cache(route string) *cache.Cache { return g.cacheByName[route] }

// ErrNoCache: the route does not exist or has no cache.
var ErrNoCache = errors.New("no such route with a cache")

// PurgeCache drops the route's entry for one key (host and request target,
// e.g. "example.com/a?b=1") or, with prefix, every entry whose key starts
// with it ("" = all). It returns how many resources it dropped.
func (p *Proxy) PurgeCache(routeName, key, prefix string, byPrefix bool) (int, error) {
	g := p.gen.Load()
	if g == nil {
		return 0, ErrNoCache
	}
	x := g.cacheByName[routeName]
	if x == nil {
		return 0, ErrNoCache
	}
	if byPrefix {
		return x.PurgePrefix(strings.ToLower(prefix)), nil
	}
	if x.Invalidate(lowerHost(key)) {
		return 1, nil
	}
	return 0, nil
}

// lowerHost lower-cases the host part of a key.
func lowerHost(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return strings.ToLower(key)
	}
	return strings.ToLower(key[:i]) + key[i:]
}

// cacheRequest runs the cache step. It returns true when it has answered;
// otherwise the returned writer is the one to forward with.
func (p *Proxy) cacheRequest(g *Generation, lc *listenerConf, c *cache.Cache, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, start time.Time) (bool, http.ResponseWriter) {
	cs := &st.cache
	cs.c = c
	// The key is the target the client sent: the route's rewrite (later)
	// changes st.uri.
	cs.key = cache.AppendKey(cs.keyBuf[:0], r.Host, st.uri)
	switch r.Method {
	case http.MethodGet:
		cs.mode = cacheStore
	case http.MethodHead:
		cs.mode = cacheLookup
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		cs.mode = cacheInvalidate
		return false, w
	default:
		c.Bypass.Add(1)
		return false, w
	}
	if st.upgrade != "" {
		cs.mode = cacheInvalidate // nothing to invalidate for a GET: a plain pass
		c.Bypass.Add(1)
		return false, w
	}
	cs.wrapped = true
	cs.w = cacheWriter{rw: w, p: p, st: st}
	cs.hasAuth = len(r.Header["Authorization"]) > 0
	if s := g.security[st.match.Route]; s != nil && s.auth != nil {
		// Authenticated routes count as Authorization (RFC 9111 §3.5)
		// even when the credential is an API key or was stripped.
		cs.hasAuth = true
	}
	cs.req = cache.ParseRequest(r.Header)
	if len(r.Header["Range"]) > 0 || cs.req.NoStore {
		// Ranges are not combined from stored responses; no-store keeps
		// the request and its answer out of the cache (§5.2.1.5).
		cs.mode, cs.fwd = cacheBypass, "bypass"
		c.Bypass.Add(1)
		return false, &cs.w
	}
	cs.inm, cs.ims = r.Header["If-None-Match"], r.Header["If-Modified-Since"]
	cs.fwd = "miss"
	if e, ok := r.Context().Value(refreshKey{}).(*cache.Entry); ok {
		// A background refresh: straight upstream, validating the entry.
		cs.refresh, cs.stale, cs.fwd = e, e, "stale"
		p.validateWith(r, st, e)
		cs.reqTime = time.Now()
		return false, &cs.w
	}
	now := time.Now()
	e := c.Lookup(cs.key, r.Header)
	if e != nil {
		switch e.Usable(&cs.req, now) {
		case cache.Fresh:
			c.Hits.Add(1)
			p.answerFromCache(w, r, st, rs, e, now, cache.Hit(e.TTL(now), ""), start)
			return true, nil
		case cache.StaleAllowed:
			c.Stale.Add(1)
			p.answerFromCache(w, r, st, rs, e, now, cache.Hit(e.TTL(now), "; detail=max-stale"), start)
			return true, nil
		case cache.StaleRevalidate:
			c.Stale.Add(1)
			p.startRefresh(g, lc, r, e)
			p.answerFromCache(w, r, st, rs, e, now, cache.Hit(e.TTL(now), "; detail=stale-while-revalidate"), start)
			return true, nil
		}
		cs.stale, cs.fwd = e, "stale"
		if cs.req.NoCache {
			cs.fwd = "request"
		}
	}
	if cs.req.OnlyIfCached {
		// §5.2.1.7.
		c.Misses.Add(1)
		w.Header()["Cache-Status"] = []string{cache.Status("fwd=miss; detail=only-if-cached")}
		writeFail(w, st, http.StatusGatewayTimeout, "not in the cache (only-if-cached)")
		p.finish(r, st, rs, "", "", http.StatusGatewayTimeout, 0, start, 0)
		return true, nil
	}
	if cs.mode == cacheStore {
		f, leader := c.Join(cs.key)
		if !leader {
			// Another request is fetching this resource: wait for it
			// (bounded), then answer from what it stored.
			if f.Wait(r.Context(), c.CoalesceTimeout()) {
				now = time.Now()
				if e2 := c.Lookup(cs.key, r.Header); e2 != nil && e2.Usable(&cs.req, now) == cache.Fresh {
					c.Hits.Add(1)
					p.answerFromCache(w, r, st, rs, e2, now, cache.Hit(e2.TTL(now), "; collapsed"), start)
					return true, nil
				}
			}
		} else {
			cs.flight = f
		}
	}
	c.Misses.Add(1)
	if e := cs.stale; e != nil {
		p.validateWith(r, st, e)
	} else if cs.mode == cacheStore && (len(cs.inm) > 0 || len(cs.ims) > 0) {
		// A conditional miss fetches the whole response so that it can be
		// stored; the client still gets its 304 when the answer matches.
		delete(r.Header, "If-None-Match")
		delete(r.Header, "If-Modified-Since")
		cs.stripped = true
	}
	cs.reqTime = time.Now()
	return false, &cs.w
}

// validateWith turns the request into a validation of e (RFC 9111 §4.3.1):
// the client's own conditionals were kept in cs and are evaluated against
// the entry when the upstream answers 304.
func (p *Proxy) validateWith(r *http.Request, st *reqState, e *cache.Entry) {
	if !e.HasValidators() {
		return
	}
	st.cache.validate = true
	h := r.Header
	delete(h, "If-None-Match")
	delete(h, "If-Modified-Since")
	if e.ETag != "" {
		h["If-None-Match"] = []string{e.ETag}
	}
	if e.LastMod != "" {
		h["If-Modified-Since"] = []string{e.LastMod}
	}
}

// startRefresh revalidates e in the background, once at a time per entry:
// a copy of the request runs the whole request path with a context that
// marks it.
func (p *Proxy) startRefresh(g *Generation, lc *listenerConf, r *http.Request, e *cache.Entry) {
	if !e.TryRefresh() {
		return
	}
	h := r.Header.Clone()
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "Cache-Control", "Pragma", "Range"} {
		delete(h, k)
	}
	u := *r.URL
	req := &http.Request{
		Method: http.MethodGet, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS, Body: http.NoBody,
	}
	req = req.WithContext(context.WithValue(context.Background(), refreshKey{}, e))
	go p.serveRequest(g, lc, &discardWriter{h: http.Header{}}, req)
}

// answerFromCache writes a stored response and accounts for it; status is
// a whole Cache-Status member.
func (p *Proxy) answerFromCache(w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, e *cache.Entry, now time.Time, status string, start time.Time) {
	code, n := p.writeEntry(w, r, st, e, now, status)
	p.finish(r, st, rs, "", "", code, n, start, 0)
}

// writeEntry writes e: its header, Age (RFC 9111 §5.1), the hop's
// decoration and member added to Cache-Status; 304 when the client's
// conditionals match (RFC 9110 §13.1.1, §13.1.3).
func (p *Proxy) writeEntry(w http.ResponseWriter, r *http.Request, st *reqState, e *cache.Entry, now time.Time, member string) (int, int64) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h["Age"] = []string{strconv.FormatInt(int64(e.Age(now)/time.Second), 10)}
	p.decorate(h, st)
	h["Cache-Status"] = append(h["Cache-Status"], member)
	if e.Status == http.StatusOK && notModified(&st.cache, e.ETag, e.LastMod) {
		delete(h, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified, 0
	}
	if e.Status != http.StatusNoContent {
		h["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return e.Status, 0
	}
	n, _ := w.Write(e.Body)
	return e.Status, int64(n)
}

// notModified evaluates the client's If-None-Match (weak comparison), or
// without it If-Modified-Since, against a 200's validators.
func notModified(cs *cacheState, etag, lastMod string) bool {
	if len(cs.inm) > 0 {
		if etag == "" {
			return false
		}
		want := strings.TrimPrefix(etag, "W/")
		for _, v := range cs.inm {
			for t := range strings.SplitSeq(v, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || strings.TrimPrefix(t, "W/") == want {
					return true
				}
			}
		}
		return false
	}
	if len(cs.ims) == 1 && lastMod != "" {
		ims, err1 := http.ParseTime(cs.ims[0])
		lm, err2 := http.ParseTime(lastMod)
		return err1 == nil && err2 == nil && !lm.After(ims)
	}
	return false
}

// cacheDone runs after the forwarding loop: it stores the teed response,
// lets coalesced requests go, and invalidates after an unsafe request
// (RFC 9111 §4.4).
func (p *Proxy) cacheDone(w http.ResponseWriter, st *reqState, status int, complete bool) {
	cs := &st.cache
	c := cs.c
	cw := &cs.w
	if cs.mode == cacheInvalidate {
		if status >= 200 && status < 400 && st.in.Method != http.MethodGet {
			p.invalidate(c, st, w.Header())
		}
		return
	}
	if cw.storing && complete && (!cw.swallow || cw.clientDone) {
		e := c.NewEntry(cw.status, cw.head, cw.body, cs.reqTime, time.Now())
		c.Store(string(cs.key), st.in.Header, e)
	}
	p.cacheRelease(st)
}

// cacheRelease ends what the request holds in the cache; it runs on every
// way out of the request (serveRequest's deferred cleanup).
func (p *Proxy) cacheRelease(st *reqState) {
	cs := &st.cache
	if cs.flight != nil {
		cs.c.Finish(cs.key, cs.flight)
		cs.flight = nil
	}
	if cs.refresh != nil {
		cs.refresh.EndRefresh()
		cs.refresh = nil
	}
}

// invalidate drops the request's URI and the same-host URIs of the
// response's Location and Content-Location.
func (p *Proxy) invalidate(c *cache.Cache, st *reqState, h http.Header) {
	r := st.in
	c.Invalidate(string(st.cache.key))
	for _, f := range []string{"Location", "Content-Location"} {
		v := h.Get(f)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			continue
		}
		if u.Host != "" && !strings.EqualFold(u.Host, r.Host) {
			continue // another origin's resource (§4.4)
		}
		if !strings.HasPrefix(u.Path, "/") {
			base := *r.URL
			u = base.ResolveReference(u)
		}
		c.Invalidate(string(cache.AppendKey(nil, r.Host, u.RequestURI())))
	}
}

// cacheWriter tees the upstream's response into the cache and answers
// from a stored entry when the upstream validated it (304) or failed
// within stale-if-error.
type cacheWriter struct {
	rw http.ResponseWriter
	p  *Proxy
	st *reqState
	// upstream: the forwarding code relayed an upstream head
	// (decorateResponse), not an answer of the proxy's own.
	upstream bool
	wrote    bool
	status   int
	storing  bool
	swallow  bool // nothing more goes to the client
	// clientDone: the client got its 304 (a stripped conditional); the
	// body is still read into the store.
	clientDone bool
	head       http.Header
	body       []byte
}

func (cw *cacheWriter) Header() http.Header { return cw.rw.Header() }

// Unwrap is for http.ResponseController.
func (cw *cacheWriter) Unwrap() http.ResponseWriter { return cw.rw }

func (cw *cacheWriter) Flush() {
	if cw.swallow {
		return
	}
	if f, ok := cw.rw.(http.Flusher); ok {
		f.Flush()
	}
}

func (cw *cacheWriter) WriteHeader(code int) {
	if cw.wrote {
		return
	}
	h := cw.rw.Header()
	if code < 200 {
		cw.rw.WriteHeader(code) // 103 Early Hints pass
		return
	}
	cw.wrote, cw.status = true, code
	st := cw.st
	cs := &st.cache
	c := cs.c
	now := time.Now()
	if e := cs.stale; e != nil {
		if cw.upstream && code == http.StatusNotModified && cs.validate {
			// §4.3.4: the 304 refreshes the stored header; the client
			// is answered from the refreshed entry.
			ne := c.Refresh(e, h, cs.reqTime, now)
			c.Revalidated.Add(1)
			clear(h)
			cw.swallow = true
			cw.p.writeEntry(cw.rw, st.in, st, ne, now, cache.Status("fwd=stale; fwd-status=304"+cache.TTLParam(ne.TTL(now))))
			return
		}
		if code >= 500 && e.StaleIfError(now) {
			// RFC 5861 §4.
			c.Stale.Add(1)
			clear(h)
			cw.swallow = true
			cw.p.writeEntry(cw.rw, st.in, st, e, now, cache.Status("fwd=stale; fwd-status="+strconv.Itoa(code)+cache.TTLParam(e.TTL(now))+"; detail=stale-if-error"))
			return
		}
	}
	status := "fwd=" + cs.fwd
	if cw.upstream {
		status += "; fwd-status=" + strconv.Itoa(code)
		if cs.mode == cacheStore {
			v := c.Storable(&cs.req, st.in.Method, cs.hasAuth, code, h)
			if v == cache.Storable {
				n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
				switch {
				case err == nil && n > c.MaxEntryBytes():
					status += "; detail=too-large"
				default:
					cw.storing = true
					cw.head = h.Clone()
					if err == nil {
						cw.body = make([]byte, 0, n)
					}
					status += "; stored"
				}
			} else {
				status += "; detail=" + string(v)
			}
		}
		cw.p.decorate(h, st)
		if cs.stripped && code == http.StatusOK && notModified(cs, h.Get("Etag"), h.Get("Last-Modified")) {
			h["Cache-Status"] = append(h["Cache-Status"], cache.Status(status))
			delete(h, "Content-Length")
			cw.rw.WriteHeader(http.StatusNotModified)
			cw.swallow, cw.clientDone = true, true
			return
		}
	}
	h["Cache-Status"] = append(h["Cache-Status"], cache.Status(status))
	cw.rw.WriteHeader(code)
}

func (cw *cacheWriter) Write(b []byte) (int, error) {
	if cw.swallow && !cw.clientDone {
		return len(b), nil
	}
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.storing {
		if int64(len(cw.body)+len(b)) > cw.st.cache.c.MaxEntryBytes() {
			// Too large after all: it streams on, unstored.
			cw.storing, cw.body = false, nil
		} else {
			cw.body = append(cw.body, b...)
		}
	}
	if cw.clientDone {
		return len(b), nil
	}
	return cw.rw.Write(b)
}

// discardWriter receives a background refresh's answer.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

var (
	descCacheRequests = prometheus.NewDesc("portcullis_cache_requests_total",
		"Requests on routes with a cache, by route and result: hit, stale (served stale), revalidated (a 304 refreshed an entry), miss, bypass.",
		[]string{"route", "result"}, nil)
	descCacheBytes = prometheus.NewDesc("portcullis_cache_bytes",
		"Memory held by a route's cache entries, bytes.", []string{"route"}, nil)
	descCacheEvictions = prometheus.NewDesc("portcullis_cache_evictions_total",
		"Entries evicted to keep a route's cache within max_bytes.", []string{"route"}, nil)
)

// cacheCollector reports the current generation's caches; the request
// path only adds to atomics.
type cacheCollector struct{ p *Proxy }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCacheRequests
	ch <- descCacheBytes
	ch <- descCacheEvictions
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.p.gen.Load()
	if g == nil {
		return
	}
	for name, x := range g.cacheByName {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"hit", x.Hits.Load()}, {"stale", x.Stale.Load()}, {"revalidated", x.Revalidated.Load()}, {"miss", x.Misses.Load()}, {"bypass", x.Bypass.Load()}} {
			ch <- prometheus.MustNewConstMetric(descCacheRequests, prometheus.CounterValue, float64(r.n), name, r.result)
		}
		ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(x.Bytes()), name)
		ch <- prometheus.MustNewConstMetric(descCacheEvictions, prometheus.CounterValue, float64(x.Evictions.Load()), name)
	}
}
