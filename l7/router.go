package l7

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// route is a compiled config.Route.
type route struct {
	name    string
	exact   []string // exact host names, lower case
	suffix  []string // wildcard hosts as ".example.com"
	path    string
	prefix  string
	methods []string
	pool    *Pool
	order   int
}

// specificity orders routes: the most specific first, so that the first
// match in the sorted list is the answer. Host before path before method,
// because a host names a separate site and a path a part of one.
func (r *route) specificity() [4]int {
	host := 0
	switch {
	case len(r.exact) > 0:
		host = 1 << 20
	case len(r.suffix) > 0:
		longest := 0
		for _, s := range r.suffix {
			longest = max(longest, len(s))
		}
		host = longest
	}
	path := 0
	switch {
	case r.path != "":
		path = 1 << 20
	case r.prefix != "":
		path = len(r.prefix)
	}
	methods := 0
	if len(r.methods) > 0 {
		methods = 1
	}
	return [4]int{host, path, methods, -r.order}
}

// Router picks the route for a request. It is immutable once built.
type Router struct {
	routes []*route
}

func newRouter(routes []*route) *Router {
	sorted := slices.Clone(routes)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].specificity(), sorted[j].specificity()
		return slices.Compare(a[:], b[:]) > 0
	})
	return &Router{routes: sorted}
}

func compileRoute(rc config.Route, order int, pool *Pool) *route {
	r := &route{name: rc.Name, path: rc.Match.Path, prefix: strings.TrimSuffix(rc.Match.PathPrefix, "/"), methods: rc.Match.Methods, pool: pool, order: order}
	if rc.Match.PathPrefix == "/" {
		r.prefix = "" // "/" is everything; keep it out of the specificity ranking
	}
	for _, h := range rc.Match.Hosts {
		h = strings.ToLower(h)
		if rest, ok := strings.CutPrefix(h, "*"); ok {
			r.suffix = append(r.suffix, rest)
		} else {
			r.exact = append(r.exact, h)
		}
	}
	return r
}

func (r *route) matchHost(host string) bool {
	if len(r.exact) == 0 && len(r.suffix) == 0 {
		return true
	}
	if slices.Contains(r.exact, host) {
		return true
	}
	for _, s := range r.suffix {
		// "*.example.com" matches a.example.com and a.b.example.com, not
		// example.com itself.
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (r *route) matchPath(p string) bool {
	switch {
	case r.path != "":
		return p == r.path
	case r.prefix != "":
		// Segment boundary: /api matches /api and /api/x, never /apix.
		return strings.HasPrefix(p, r.prefix) && (len(p) == len(r.prefix) || p[len(r.prefix)] == '/')
	}
	return true
}

// Match returns the route for req, or nil and the methods that would have
// matched (for a 405's Allow header) when only the method is wrong.
func (rt *Router) Match(req *http.Request) (*route, []string) {
	host := hostOnly(req.Host)
	var allow []string
	for _, r := range rt.routes {
		if !r.matchHost(host) || !r.matchPath(req.URL.Path) {
			continue
		}
		if len(r.methods) == 0 || slices.Contains(r.methods, req.Method) {
			return r, nil
		}
		allow = append(allow, r.methods...)
	}
	slices.Sort(allow)
	return nil, slices.Compact(allow)
}

// hostOnly lower-cases a Host header and drops its port.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
