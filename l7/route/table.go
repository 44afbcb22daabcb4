package route

import (
	"net/http"
	"path"
	"slices"
	"strings"
)

// Table is the compiled routes of one listener. Immutable and safe for
// concurrent use.
type Table struct {
	exact map[string]*group // by lower-case host
	wild  map[string]*group // by suffix with its dot: ".example.com"
	any   *group            // routes without hosts
	all   []*Route          // every route, for Routes
}

// group is the routes of one host pattern, in priority order, indexed so a
// request looks at few of them.
type group struct {
	exact   map[string][]*entry // path routes by their path
	bySeg   map[string][]*entry // prefix and template routes by their first literal segment
	generic []*entry            // everything else: no path, regex, "/", templates starting with a parameter
}

type entry struct {
	rt   *Route
	rank int // position in the group's priority order
}

func newTable(routes []*Route) *Table {
	t := &Table{exact: map[string]*group{}, wild: map[string]*group{}, all: routes}
	byPattern := map[string][]*Route{}
	var anyHost []*Route
	for _, rt := range routes {
		if len(rt.hosts) == 0 {
			anyHost = append(anyHost, rt)
		}
		for _, h := range rt.hosts {
			if !slices.Contains(byPattern[h], rt) {
				byPattern[h] = append(byPattern[h], rt)
			}
		}
	}
	for h, rts := range byPattern {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			t.wild[suffix] = newGroup(rts)
		} else {
			t.exact[h] = newGroup(rts)
		}
	}
	if len(anyHost) > 0 {
		t.any = newGroup(anyHost)
	}
	return t
}

func newGroup(rts []*Route) *group {
	sorted := slices.Clone(rts)
	slices.SortStableFunc(sorted, func(a, b *Route) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
	g := &group{exact: map[string][]*entry{}, bySeg: map[string][]*entry{}}
	for i, rt := range sorted {
		e := &entry{rt: rt, rank: i}
		switch {
		case rt.kind == pathExact:
			g.exact[rt.path] = append(g.exact[rt.path], e)
		case rt.kind == pathPrefix:
			g.bySeg[firstSegment(rt.path)] = append(g.bySeg[firstSegment(rt.path)], e)
		case rt.kind == pathTemplate && !rt.tmpl[0].param:
			g.bySeg[rt.tmpl[0].lit] = append(g.bySeg[rt.tmpl[0].lit], e)
		default:
			g.generic = append(g.generic, e)
		}
	}
	return g
}

// Routes returns the table's routes in file order. Do not modify.
func (t *Table) Routes() []*Route { return t.all }

// Result is what Match found. Reuse one per request; Match resets it.
type Result struct {
	// Route is the matched route, nil when nothing matched.
	Route *Route
	// Pool is the pool to use: the version's pool, or the route's.
	Pool string
	// Version is the API version selected ("" when the route has no
	// versioning).
	Version string
	// Allow lists, sorted, the methods that would have matched when Route is
	// nil because only the method was wrong: answer 405 with an Allow
	// header. Empty otherwise.
	Allow []string
	// Versions is set when Route is nil because a versioned route matched
	// but the request named a version it does not serve, or none and it has
	// no default: answer 404 with a JSON body listing these. Do not modify.
	Versions []string
	// RequestedVersion is the unknown version as the client sent it ("" when
	// it sent none); set with Versions.
	RequestedVersion string
	// VersionRoute is the route that refused the version; set with Versions,
	// so the access log can name it.
	VersionRoute *Route
	// RequestID is the request's id for the {request_id} template; the core
	// sets it after Match (which clears it) when the id is not in the
	// X-Request-Id header of the incoming request.
	RequestID string

	path     string // the path matched (cleaned when it had dot segments)
	cleaned  bool
	nparams  uint8
	params   [MaxParams]span
	verSeg   span // the "/v2" segment in path when the version came from the URL
	allowBuf [16]string
}

// span is a substring of Result.path, kept as offsets so that a Result holds
// no pointers into a request beyond the path string itself.
type span struct{ start, end int32 }

func (s span) of(p string) string {
	if s.end <= s.start || int(s.end) > len(p) {
		return ""
	}
	return p[s.start:s.end]
}

// Path returns the path that was matched: the request's, or its cleaned form
// when it had dot segments (which RewriteRequest then sends upstream).
func (r *Result) Path() string { return r.path }

// Param returns a path parameter of the matched route ("" when there is no
// such parameter).
func (r *Result) Param(name string) string {
	if r.Route == nil {
		return ""
	}
	return r.Route.Param(r, name)
}

// Match finds the route for r and fills res. It does not allocate for routes
// on static hosts and paths (exact, prefix, template), unless the Host
// header has upper case letters or the path has dot segments.
func (t *Table) Match(r *http.Request, res *Result) {
	*res = Result{}
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		p = "/" + p // an OPTIONS * or absolute-form oddity; never seen from net/http's server
		res.cleaned = true
	}
	if hasDotSegment(p) {
		// Matching /public/../admin as /public would let a client reach
		// what a route was meant to fence off once the upstream cleans the
		// path; so the cleaned path is matched and sent upstream.
		trailing := strings.HasSuffix(p, "/")
		p = path.Clean(p)
		if trailing && p != "/" {
			p += "/"
		}
		res.cleaned = true
	}
	res.path = p
	host := hostOnly(r.Host)
	seg := firstSegment(p)
	done := false
	if g := t.exact[host]; g != nil {
		done = g.match(r, res, p, seg)
	}
	// Wildcards from the longest suffix to the shortest: for a.b.example.com
	// try .b.example.com, .example.com, .com.
	for i := strings.IndexByte(host, '.'); !done && i > 0 && i < len(host)-1; {
		if g := t.wild[host[i:]]; g != nil {
			done = g.match(r, res, p, seg)
		}
		j := strings.IndexByte(host[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if !done && t.any != nil {
		t.any.match(r, res, p, seg)
	}
	if res.Route != nil || res.Versions != nil {
		res.Allow = nil
	}
}

// match tries the group's candidates in priority order; true when the search
// is over (a hit or a version refusal).
func (g *group) match(r *http.Request, res *Result, p, seg string) bool {
	for _, e := range g.exact[p] {
		if res.try(e.rt, r, p) {
			return true
		}
	}
	// Merge the routes of this first segment with the generic ones by rank.
	a, b := g.bySeg[seg], g.generic
	for len(a) > 0 || len(b) > 0 {
		var e *entry
		if len(b) == 0 || (len(a) > 0 && a[0].rank < b[0].rank) {
			e, a = a[0], a[1:]
		} else {
			e, b = b[0], b[1:]
		}
		if res.try(e.rt, r, p) {
			return true
		}
	}
	return false
}

// try matches one route and records the result; true ends the search.
func (res *Result) try(rt *Route, r *http.Request, p string) bool {
	if !rt.matchPath(res, p) || !rt.matchHeaders(r) || !rt.matchQuery(r) {
		return false
	}
	if len(rt.methods) > 0 && !slices.Contains(rt.methods, r.Method) {
		for _, m := range rt.methods {
			res.addAllow(m)
		}
		return false
	}
	if rt.ver == nil {
		res.Route, res.Pool = rt, rt.Pool
		return true
	}
	v, requested, ok := rt.ver.resolve(r, res, rt, p)
	if !ok {
		res.Versions, res.RequestedVersion, res.VersionRoute = rt.ver.names, requested, rt
		return true
	}
	res.Route, res.Pool, res.Version = rt, v.pool, v.name
	return true
}

func (res *Result) addAllow(m string) {
	n := len(res.Allow)
	i, found := slices.BinarySearch(res.Allow, m)
	if found || n == len(res.allowBuf) {
		return
	}
	buf := res.allowBuf[:n+1]
	copy(buf[i+1:], buf[i:n])
	buf[i] = m
	res.Allow = buf
}

func (rt *Route) matchPath(res *Result, p string) bool {
	switch rt.kind {
	case pathNone:
		return true
	case pathExact:
		return p == rt.path
	case pathPrefix:
		return hasPrefixSegment(p, rt.path)
	case pathTemplate:
		return rt.matchTemplate(res, p)
	case pathRegex:
		if len(rt.params) == 0 {
			return rt.re.MatchString(p)
		}
		m := rt.re.FindStringSubmatchIndex(p)
		if m == nil {
			return false
		}
		for i, g := range rt.reGroup {
			res.params[i] = span{int32(m[2*g]), int32(m[2*g+1])}
		}
		res.nparams = uint8(len(rt.params))
		return true
	}
	return false
}

// matchTemplate walks the path and the template segment by segment; a
// parameter takes one non-empty segment, a rest parameter the remainder.
func (rt *Route) matchTemplate(res *Result, p string) bool {
	pos := 1 // after the leading slash
	n := 0
	for i, s := range rt.tmpl {
		if pos > len(p) {
			return false
		}
		if s.rest {
			if pos >= len(p) {
				return false
			}
			res.params[n] = span{int32(pos), int32(len(p))}
			n++
			pos = len(p) + 1
			break
		}
		end := strings.IndexByte(p[pos:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += pos
		}
		part := p[pos:end]
		if s.param {
			if part == "" {
				return false
			}
			res.params[n] = span{int32(pos), int32(end)}
			n++
		} else if part != s.lit {
			return false
		}
		pos = end + 1
		if i == len(rt.tmpl)-1 && end != len(p) {
			return false // the path has more segments than the template
		}
	}
	if pos <= len(p) {
		return false
	}
	res.nparams = uint8(n)
	return true
}

func (rt *Route) matchHeaders(r *http.Request) bool {
	for i := range rt.headers {
		c := &rt.headers[i]
		vals := r.Header[c.name]
		switch {
		case c.absent:
			if len(vals) > 0 {
				return false
			}
		case c.value != "":
			if !slices.Contains(vals, c.value) {
				return false
			}
		case c.re != nil:
			if !slices.ContainsFunc(vals, c.re.MatchString) {
				return false
			}
		default:
			if len(vals) == 0 {
				return false
			}
		}
	}
	return true
}

func (rt *Route) matchQuery(r *http.Request) bool {
	for _, c := range rt.query {
		v, ok := queryValue(r.URL.RawQuery, c.name)
		if !ok || (c.value != "" && v != c.value) {
			return false
		}
	}
	return true
}

// hasPrefixSegment reports whether p starts with prefix on a segment
// boundary: /api matches /api and /api/x, never /apix.
func hasPrefixSegment(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// firstSegment is the first segment of a path without slashes: "api" for
// /api/x, "" for /.
func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// hasDotSegment reports a "." or ".." segment, which path.Clean would remove.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

// hostOnly lower-cases a Host header and drops its port, brackets and a
// trailing dot; it allocates only when there is upper case to fold.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// queryValue finds the first value of name in a raw query without parsing
// the whole query into a map. It allocates only to unescape.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := unescapeQuery(k); err != nil || uk != name {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			uv, err := unescapeQuery(v)
			if err != nil {
				return "", false
			}
			return uv, true
		}
		return v, true
	}
	return "", false
}
