package l7

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis-lb/portcullis/l7/cors"
	"github.com/portcullis-lb/portcullis/l7/listen"
	"github.com/portcullis-lb/portcullis/l7/pool"
)

// ServeHTTP is the handler the listeners call. It loads the generation once;
// the request uses it to the end.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serveListener(listen.ListenerName(r.Context()), w, r)
}

// ListenerHandler returns a handler that serves requests as if they came in
// on the named listener, for servers that do not carry listen's per-
// connection context (the lean HTTP/1.1 server, l7/internal/h1).
func (p *Proxy) ListenerHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serveListener(name, w, r)
	})
}

// serveListener serves a request that came in on the named listener.
func (p *Proxy) serveListener(name string, w http.ResponseWriter, r *http.Request) {
	g := p.gen.Load()
	lc := g.byListener[name]
	if lc == nil {
		// The listener is draining after a reload removed it.
		writeError(w, http.StatusServiceUnavailable, "listener is shutting down", nil)
		return
	}
	p.serveRequest(g, lc, w, r)
}

// serveRequest is the request path: match, pick, forward, account.
func (p *Proxy) serveRequest(g *Generation, lc *listenerConf, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := statePool.Get().(*reqState)
	defer func() {
		if st.limBody.rc != nil {
			// The server may close the body after the handler; st is
			// someone else's by then.
			r.Body = st.limBody.rc
		}
		if st.cw != nil || st.xres != nil {
			st.closeWrappers(false) // an answer written before the exchange (a cache hit, an error)
		}
		if st.cache.c != nil {
			p.cacheRelease(st)
		}
		st.reset()
		statePool.Put(st)
	}()
	st.in = r
	p.prepare(g, r, st)
	if p.uriTooLong(lc, w, r, st, start) || p.tooManyHeaders(lc, w, r, st, start) {
		return
	}
	res := &st.match
	lc.table.Match(r, res)
	if g.hasCORS && cors.IsPreflight(r) && p.preflight(g, lc, w, r, st, start) {
		return
	}
	if res.Route == nil {
		p.noRoute(g, w, r, st, start)
		return
	}
	rs := g.routeStats[res.Route]
	if len(g.security) > 0 {
		if s := g.security[res.Route]; s != nil && !p.secure(g, s, w, r, st, rs, start) {
			return
		}
	}
	bm := bodyModeOf(r)
	if !p.limitBody(g, lc, w, r, st, rs, bm, start) {
		return
	}
	// Compression and the response body transformation wrap the writer
	// outside the cache (transforms.go, docs/transform.md).
	var xf *routeXform
	if len(g.xforms) > 0 {
		if xf = g.xforms[res.Route]; xf != nil {
			w = p.wrapResponse(xf, w, r, st)
		}
	}
	if len(g.aggs) > 0 {
		if ag := g.aggs[res.Route]; ag != nil {
			p.serveAggregate(g, ag, w, r, st, rs, start)
			return
		}
	}
	if len(g.caches) > 0 {
		if c := g.caches[res.Route]; c != nil {
			var done bool
			if done, w = p.cacheRequest(g, lc, c, w, r, st, rs, start); done {
				return
			}
		}
	}
	prt := g.pools[res.Pool]
	if prt == nil {
		writeFail(w, st, http.StatusServiceUnavailable, "route has no pool")
		p.finish(r, st, rs, res.Pool, "", http.StatusServiceUnavailable, 0, start, 0)
		return
	}
	templateRequestID(g, r, st)
	if xf != nil && xf.changesRequest() && !p.transformRequest(xf, w, r, st, rs, prt, &bm, start) {
		return
	}
	p.rewriteRequest(r, st)

	up := prt.up
	conf := &prt.conf
	replayable := bm.kind == bodyNone || st.bodyKept
	if !st.bodyKept && bm.kind == bodyLength && bm.n <= maxBufferedBody && conf.Retry.Attempts > 0 && st.upgrade == "" {
		// Small bodies are read whole so that a retry can send them again.
		if cap(st.body) < int(bm.n) {
			st.body = make([]byte, bm.n, max(bm.n, 4096))
		}
		st.body = st.body[:bm.n]
		if _, err := io.ReadFull(r.Body, st.body); err != nil {
			writeFail(w, st, http.StatusBadRequest, "request body incomplete")
			p.finish(r, st, rs, prt.name, "", http.StatusBadRequest, 0, start, 0)
			return
		}
		st.bodyRd.Reset(st.body)
		st.bytesIn = bm.n
		replayable = true
	} else if !st.bodyKept {
		st.body = nil
	}
	// RFC 9110 §9.2.2: only idempotent requests may be sent twice, and a
	// body can be sent twice only when it was kept.
	mayRetryAfterSend := replayable && (isIdempotent(r.Method) || st.body != nil)

	var a attempt
	var addr string
	status := 0
	for n := 0; ; n++ {
		ep, err := prt.p.Pick(r, st.tried[:st.ntried])
		if err != nil {
			switch {
			case errors.Is(err, pool.ErrOverloaded):
				// RFC 9110 §10.2.3: tell clients when to come back.
				w.Header()["Retry-After"] = retryAfter
				status = http.StatusServiceUnavailable
				writeFail(w, st, status, "upstream overloaded")
			case a.err != nil:
				status = a.failStatus()
				writeFail(w, st, status, http.StatusText(status))
			default:
				status = http.StatusServiceUnavailable
				writeFail(w, st, status, "no endpoint available")
			}
			break
		}
		if st.ntried < len(st.tried) {
			st.tried[st.ntried] = ep
			st.ntried++
		}
		if n == 0 {
			prt.p.AfterPick(w, r, ep)
		}
		addr = ep.Address
		mayRetry := n < conf.Retry.Attempts && mayRetryAfterSend
		if up.h2 != nil {
			a = p.forwardH2(w, r, st, prt, addr, bm, mayRetry)
		} else {
			a = p.forwardH1(w, r, st, prt, addr, bm, replayable, mayRetry)
		}
		if st.limBody.over && !a.sent {
			// However the transport reported it (HTTP/1.1 as a bad
			// client body, HTTP/2 wrapped), the body outgrew its limit.
			a.tooLarge, a.badRequest = true, false
			if a.err == nil {
				a.err = errBodyTooLarge
			}
		}
		o := outcomeOf(&a)
		ep.Done(o)
		if f := p.observe.Load(); f != nil {
			(*f)(prt.p.Name(), addr, o)
		}
		if a.badRequest {
			status = http.StatusBadRequest
			writeFail(w, st, status, "malformed request body")
			break
		}
		if a.tooLarge {
			status = http.StatusRequestEntityTooLarge
			writeTooLarge(w, r, st)
			break
		}
		if a.sent || (a.err == nil && !a.retryStatus) {
			status = a.status
			break
		}
		// a.retryStatus: the answer was discarded for a retry the budget
		// already allowed.
		if a.retryStatus || (n < conf.Retry.Attempts && conf.Retry.Retryable(o) && (a.connectErr || mayRetryAfterSend) &&
			!a.clientGone && prt.p.RetryAllowed()) {
			if st.body != nil {
				st.bodyRd.Reset(st.body)
			}
			continue
		}
		status = a.failStatus()
		if a.err != nil {
			p.log.Debug("upstream error", "pool", prt.name, "endpoint", addr, "err", a.err)
		}
		writeFail(w, st, status, http.StatusText(status))
		break
	}
	if st.cache.c != nil {
		p.cacheDone(w, st, status, a.err == nil && !a.abort)
	}
	if st.cw != nil || st.xres != nil {
		st.closeWrappers(a.abort)
	}
	p.finish(r, st, rs, prt.name, addr, status, a.bytesOut, start, a.upstreamDur)
	if a.abort {
		// The upstream cut the body after the head went out: the client
		// must see a broken response, not a complete-looking short one.
		panic(http.ErrAbortHandler)
	}
}

// templateRequestID gives {request_id} templates the request's id when
// the client sent none. A real string: template results may outlive the
// request inside net/http's response buffers.
func templateRequestID(g *Generation, r *http.Request, st *reqState) {
	if len(r.Header[g.idHeader]) == 0 {
		st.match.RequestID = string(st.fwd.id)
	}
}

// rewriteRequest applies the route's request changes. The outgoing request
// is a shallow copy kept in st (no allocation); it shares the incoming
// header map, which the proxy owns for the request's duration.
func (p *Proxy) rewriteRequest(r *http.Request, st *reqState) {
	out := &st.out
	*out = *r
	st.match.Route.RewriteRequest(out, r, &st.match, st.fwd.client)
	if out.URL != r.URL {
		st.uri = out.URL.RequestURI()
	}
	st.outHost = out.Host
}

// noRoute answers 404 or 405 (RFC 9110 §15.5.6: with Allow), or 404 with
// the versions a versioned route serves.
func (p *Proxy) noRoute(g *Generation, w http.ResponseWriter, r *http.Request, st *reqState, start time.Time) {
	res := &st.match
	status := http.StatusNotFound
	rs := p.metrics.unmatched
	switch {
	case len(res.Allow) > 0:
		status = http.StatusMethodNotAllowed
		w.Header()["Allow"] = []string{joinComma(res.Allow)}
		writeError(w, status, "method not allowed", st.fwd.id)
	case res.Versions != nil:
		if s := g.routeStats[res.VersionRoute]; s != nil {
			rs = s
		}
		msg := "unknown API version " + strconv.Quote(res.RequestedVersion) + "; available: " + joinComma(res.Versions)
		if res.RequestedVersion == "" {
			msg = "an API version is required; available: " + joinComma(res.Versions)
		}
		writeError(w, status, msg, st.fwd.id)
	default:
		writeError(w, status, "no route", st.fwd.id)
	}
	p.finish(r, st, rs, "", "", status, 0, start, 0)
}

// finish counts the request and writes its access-log line.
func (p *Proxy) finish(r *http.Request, st *reqState, rs *routeStats, pool, endpoint string, status int, bytesOut int64, start time.Time, upDur time.Duration) {
	if rs == nil {
		rs = p.metrics.unmatched
	}
	d := time.Since(start)
	rs.observe(status, d)
	if al := p.alog.Load(); al != nil {
		al.write(r, st, rs.name, pool, endpoint, status, st.bytesIn, bytesOut, d, upDur)
	}
}

func joinComma(s []string) string {
	n := 0
	for _, x := range s {
		n += len(x) + 2
	}
	b := make([]byte, 0, n)
	for i, x := range s {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, x...)
	}
	return string(b)
}
