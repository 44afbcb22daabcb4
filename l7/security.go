package l7

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/auth"
	"github.com/portcullis-lb/portcullis/l7/cors"
	"github.com/portcullis-lb/portcullis/l7/ratelimit"
)

// The route-level security middleware, in the order a request meets it:
// CORS preflight (answered here, never forwarded), a rate limit keyed by
// what is known before the credentials are checked (client_ip, header:NAME,
// route), authentication (JWT or API key), a rate limit keyed by who
// authenticated (consumer, claim:NAME). A route has at most one rate limit, so it runs in
// one of the two places. Each is compiled once per generation from the
// route's config; a route with none of them costs the request path one
// length check.

// routeSecurity is one route's middleware.
type routeSecurity struct {
	name  string
	cors  *cors.Policy
	auth  *auth.Authenticator
	limit *ratelimit.Limiter
	// rlKey is what the limit is keyed on; rlHeader the header of
	// header:NAME.
	rlKey    rlKey
	rlHeader string
}

type rlKey uint8

const (
	rlClientIP rlKey = iota
	rlHeader
	rlConsumer
	rlClaim
	rlRoute
)

// secState is the request's security state, kept in reqState so that the
// CORS and RateLimit headers can be put back on any answer (an upstream's,
// or an error written after a retry cleared the header map).
type secState struct {
	rs       *routeSecurity
	origin   string
	consumer string
	rl       ratelimit.Decision
	limited  bool
}

// compileSecurity builds the middleware of every route that has some and
// indexes it by the listeners' route objects.
func compileSecurity(c *config.Config, g *Generation) error {
	g.jwks = auth.NewRegistry(nil)
	g.secByName = map[string]*routeSecurity{}
	for _, rc := range c.L7.Routes {
		if rc.CORS == nil && rc.JWT == nil && rc.APIKeys == nil && rc.RateLimit == nil {
			continue
		}
		s := &routeSecurity{name: rc.Name}
		if rc.CORS != nil {
			s.cors = cors.Compile(rc.CORS)
		}
		rateClaim := ""
		if rl := rc.RateLimit; rl != nil {
			s.limit = ratelimit.New(*rl)
			name, isHeader := strings.CutPrefix(rl.Key, "header:")
			claim, isClaim := strings.CutPrefix(rl.Key, "claim:")
			switch {
			case isHeader:
				s.rlKey, s.rlHeader = rlHeader, http.CanonicalHeaderKey(name)
			case isClaim:
				s.rlKey, rateClaim = rlClaim, claim
			case rl.Key == "consumer":
				s.rlKey = rlConsumer
			case rl.Key == "route":
				s.rlKey = rlRoute
			default:
				s.rlKey = rlClientIP
			}
		}
		a, err := auth.Compile(rc, g.jwks, rateClaim)
		if err != nil {
			return fmt.Errorf("route %q: %w", rc.Name, err)
		}
		s.auth = a
		g.secByName[rc.Name] = s
	}
	for _, lc := range g.byListener {
		for _, rt := range lc.table.Routes() {
			if s := g.secByName[rt.Name]; s != nil {
				g.security[rt] = s
				g.hasCORS = g.hasCORS || s.cors != nil
			}
		}
	}
	return nil
}

// adoptSecurity carries state over from the generation g replaces: rate
// limit buckets of unchanged limits (so a reload is no way around a
// limit). Remote key sets are carried over by startSecurity.
func (g *Generation) adoptSecurity(prev *Generation) {
	if prev == nil {
		return
	}
	for name, s := range g.secByName {
		if old := prev.secByName[name]; old != nil && s.limit != nil && old.limit != nil {
			s.limit.Adopt(old.limit)
		}
	}
}

// preflight answers a CORS preflight when the route that would serve the
// actual request (matched with the method the preflight asks about) has a
// CORS policy. It returns false, with res matched again as the OPTIONS it
// is, when that route has none.
func (p *Proxy) preflight(g *Generation, lc *listenerConf, w http.ResponseWriter, r *http.Request, st *reqState, start time.Time) bool {
	res := &st.match
	m := r.Method
	r.Method = r.Header["Access-Control-Request-Method"][0]
	lc.table.Match(r, res)
	r.Method = m
	var s *routeSecurity
	if res.Route != nil {
		s = g.security[res.Route]
	}
	if s == nil || s.cors == nil {
		lc.table.Match(r, res)
		return false
	}
	rs := g.routeStats[res.Route]
	status := s.cors.Preflight(w.Header(), r)
	if status == http.StatusNoContent {
		w.WriteHeader(status)
	} else {
		writeError(w, status, "CORS preflight refused", st.fwd.id)
	}
	p.finish(r, st, rs, "", "", status, 0, start, 0)
	return true
}

// secure runs the route's CORS, rate limit and authentication on an
// actual request (the rate limit before or after authentication by its
// key, see preAuth). It returns false when it has answered the request.
func (p *Proxy) secure(g *Generation, s *routeSecurity, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, start time.Time) bool {
	ss := &st.sec
	ss.rs = s
	h := w.Header()
	if s.cors != nil {
		if o := r.Header["Origin"]; len(o) == 1 {
			ss.origin = o[0]
		}
		s.cors.Apply(h, ss.origin)
	}
	var now time.Time
	if s.limit != nil && s.rlKey.preAuth() {
		// Keys known before the credentials are checked are counted
		// first: a flood of invented tokens from one address is cut at
		// its bucket instead of costing a signature check each (#7).
		now = time.Now()
		if !p.takeToken(g, s, w, r, st, rs, start, now, "") {
			return false
		}
	}
	rateClaim := ""
	if s.auth != nil {
		if now.IsZero() {
			now = time.Now()
		}
		var ar auth.Result
		s.auth.Check(r, now, &ar)
		if ar.Outcome != auth.Allowed {
			status, msg := http.StatusUnauthorized, "authentication required"
			switch ar.Outcome {
			case auth.Invalid:
				msg = "invalid credentials"
			case auth.Forbidden:
				status, msg = http.StatusForbidden, "forbidden"
			}
			if c := s.auth.Challenge(ar.Outcome); c != nil {
				h["Www-Authenticate"] = c
			}
			p.log.Debug("request refused", "route", s.name, "status", status, "reason", ar.Err)
			writeError(w, status, msg, st.fwd.id)
			p.finish(r, st, rs, "", "", status, 0, start, 0)
			return false
		}
		ss.consumer = ar.Consumer
		rateClaim = ar.RateKey
		if ar.URIChanged {
			st.uri = r.URL.RequestURI()
		}
	}
	if s.limit != nil && !s.rlKey.preAuth() {
		if now.IsZero() {
			now = time.Now()
		}
		if !p.takeToken(g, s, w, r, st, rs, start, now, rateClaim) {
			return false
		}
	}
	return true
}

// preAuth reports whether a limit on this key runs before authentication:
// the client address, a header and the route are known before the
// credentials are checked; a consumer and a claim only after.
func (k rlKey) preAuth() bool { return k == rlClientIP || k == rlHeader || k == rlRoute }

// takeToken takes a token from the request's bucket, puts the RateLimit
// fields on the answer and answers 429 when the bucket is empty (it then
// returns false).
func (p *Proxy) takeToken(g *Generation, s *routeSecurity, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, start, now time.Time, rateClaim string) bool {
	ss := &st.sec
	h := w.Header()
	var key string
	switch s.rlKey {
	case rlClientIP:
		key = clientKey(g, st)
	case rlHeader:
		if v := r.Header[s.rlHeader]; len(v) > 0 {
			key = v[0]
		}
	case rlConsumer:
		key = ss.consumer
	case rlClaim:
		key = rateClaim
	}
	ss.rl, ss.limited = s.limit.Allow(key, now), true
	s.rateHeaders(h, &ss.rl)
	if !ss.rl.Allowed {
		// RFC 6585 §4, RFC 9110 §10.2.3.
		h["Retry-After"] = ratelimit.Seconds(max(ss.rl.RetryAfter, time.Second))
		writeError(w, http.StatusTooManyRequests, "rate limit exceeded", st.fwd.id)
		p.finish(r, st, rs, "", "", http.StatusTooManyRequests, 0, start, 0)
		return false
	}
	return true
}

// rateHeaders are the RateLimit fields of draft-ietf-httpapi-ratelimit-headers.
func (s *routeSecurity) rateHeaders(h http.Header, d *ratelimit.Decision) {
	h["Ratelimit-Limit"] = s.limit.LimitHeader()
	h["Ratelimit-Remaining"] = ratelimit.Count(int64(d.Remaining))
	h["Ratelimit-Reset"] = ratelimit.Seconds(d.Reset)
}

// headers puts the route's CORS and RateLimit fields (back) on an answer.
func (ss *secState) headers(h http.Header) {
	s := ss.rs
	if s == nil {
		return
	}
	if s.cors != nil {
		s.cors.Apply(h, ss.origin)
	}
	if ss.limited {
		s.rateHeaders(h, &ss.rl)
	}
}

// writeFail is writeError for answers after the security middleware ran:
// the route's CORS and RateLimit fields go on the error too.
func writeFail(w http.ResponseWriter, st *reqState, code int, msg string) {
	st.sec.headers(w.Header())
	writeError(w, code, msg, st.fwd.id)
}

// clientKey is the client's address for rate limiting: the peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that
// is not one (the left-most ones are the client's to invent).
func clientKey(g *Generation, st *reqState) string {
	xff := st.fwd.priorXFF
	if len(xff) == 0 {
		return st.fwd.clientIP
	}
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			part := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				// Garbage: the hop that wrote it is the last one known.
				return st.fwd.clientIP
			}
			if !g.trusts(a) {
				return part
			}
		}
	}
	return st.fwd.clientIP
}
