// Package cors answers a route's cross-origin requests by the Fetch
// standard's CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol):
// preflights are answered by the proxy, and every other response of the
// route gets the CORS headers for an allowed origin. A Policy is compiled
// once per route and generation and is immutable.
package cors

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/internal/hkey"
)

// Policy is one route's CORS configuration, compiled.
type Policy struct {
	any       bool
	exact     map[string]bool
	wild      []wildcard
	methods   map[string]bool
	allowM    []string // Access-Control-Allow-Methods
	headers   map[string]bool
	anyHeader bool
	expose    []string // Access-Control-Expose-Headers, nil for none
	creds     bool
	maxAge    []string // nil: no Access-Control-Max-Age
	// vary: the answer depends on Origin. Only a policy for any origin
	// without credentials answers every origin alike ("*").
	vary bool
}

// wildcard is https://*.example.com[:port]: prefix "https://", suffix
// ".example.com[:port]"; the * is one or more DNS labels.
type wildcard struct{ prefix, suffix string }

var (
	star       = []string{"*"}
	trueVal    = []string{"true"}
	varyOrigin = []string{"Origin"}
)

// Compile builds a policy from a validated config.
func Compile(c *config.CORS) *Policy {
	p := &Policy{exact: map[string]bool{}, methods: map[string]bool{}, headers: map[string]bool{}, creds: c.AllowCredentials}
	for _, o := range c.AllowedOrigins {
		switch {
		case o == "*":
			p.any = true
		case strings.Contains(o, "*"):
			scheme, rest, _ := strings.Cut(o, "://")
			p.wild = append(p.wild, wildcard{prefix: scheme + "://", suffix: strings.TrimPrefix(rest, "*")})
		default:
			p.exact[o] = true
		}
	}
	for _, m := range c.AllowedMethods {
		p.methods[m] = true
	}
	p.allowM = []string{strings.Join(c.AllowedMethods, ", ")}
	for _, h := range c.AllowedHeaders {
		if h == "*" {
			p.anyHeader = true
		}
		p.headers[strings.ToLower(h)] = true
	}
	if len(c.ExposeHeaders) > 0 {
		p.expose = []string{strings.Join(c.ExposeHeaders, ", ")}
	}
	if c.MaxAge > 0 {
		p.maxAge = []string{strconv.FormatInt(int64(c.MaxAge.D().Seconds()), 10)}
	}
	p.vary = !p.any || p.creds
	return p
}

// Allowed reports whether origin may read the route's responses.
func (p *Policy) Allowed(origin string) bool {
	if origin == "" {
		return false
	}
	if p.any || p.exact[origin] {
		return true
	}
	for _, w := range p.wild {
		if len(origin) > len(w.prefix)+len(w.suffix) && strings.HasPrefix(origin, w.prefix) && strings.HasSuffix(origin, w.suffix) &&
			labels(origin[len(w.prefix):len(origin)-len(w.suffix)]) {
			return true
		}
	}
	return false
}

// labels reports whether s is one or more DNS labels (what a * in an
// origin pattern may stand for): no port, path or other separator.
func labels(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') || (c == '.' && s[i-1] == '.') {
			return false
		}
	}
	return true
}

// token reports whether s is an RFC 9110 §5.6.2 token.
func token(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// IsPreflight reports whether r is a CORS preflight: OPTIONS with Origin
// and Access-Control-Request-Method.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Origin"]) > 0 && len(r.Header["Access-Control-Request-Method"]) > 0
}

// Preflight writes the CORS headers of a preflight's answer into h and
// returns the status: 204 when the origin, method and headers asked for
// are allowed, 403 (without CORS headers, so the browser refuses) when not.
func (p *Policy) Preflight(h http.Header, r *http.Request) int {
	p.addVary(h)
	origin := r.Header.Get("Origin")
	if !p.Allowed(origin) {
		return http.StatusForbidden
	}
	m := r.Header.Get("Access-Control-Request-Method")
	if !p.methods[m] {
		return http.StatusForbidden
	}
	var names []string
	for _, line := range r.Header["Access-Control-Request-Headers"] {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !p.anyHeader && !p.headers[name] || !token(name) {
				return http.StatusForbidden
			}
			names = append(names, name)
		}
	}
	p.setOrigin(h, origin)
	h["Access-Control-Allow-Methods"] = p.allowM
	if len(names) > 0 {
		// Echo the names asked for: every one was checked above, and "*"
		// would not cover Authorization (Fetch §3.2.3).
		h["Access-Control-Allow-Headers"] = []string{strings.Join(names, ", ")}
	}
	if p.maxAge != nil {
		h["Access-Control-Max-Age"] = p.maxAge
	}
	return http.StatusNoContent
}

// Apply sets the CORS headers of an actual (non-preflight) response. The
// policy replaces whatever CORS headers the upstream sent.
func (p *Policy) Apply(h http.Header, origin string) {
	delete(h, "Access-Control-Allow-Origin")
	delete(h, "Access-Control-Allow-Credentials")
	delete(h, "Access-Control-Expose-Headers")
	p.addVary(h)
	if !p.Allowed(origin) {
		return
	}
	p.setOrigin(h, origin)
	if p.expose != nil {
		h["Access-Control-Expose-Headers"] = p.expose
	}
}

func (p *Policy) setOrigin(h http.Header, origin string) {
	if p.any && !p.creds {
		h["Access-Control-Allow-Origin"] = star
		return
	}
	h["Access-Control-Allow-Origin"] = []string{origin}
	if p.creds {
		h["Access-Control-Allow-Credentials"] = trueVal
	}
}

// addVary adds Origin to Vary, once, keeping the upstream's values: a cache
// must not serve one origin's answer to another.
func (p *Policy) addVary(h http.Header) {
	if !p.vary {
		return
	}
	hkey.AddVary(h, varyOrigin)
}
