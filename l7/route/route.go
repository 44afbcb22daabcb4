// Package route compiles the configured routes of one listener into an
// immutable Table and matches requests against it: host, path (exact,
// prefix, template, regular expression), method, headers and query
// parameters, with API versioning by URL or header. A matched Route also
// knows how to rewrite the request sent upstream and the response headers.
//
// The priority order of routes is documented on config.Route; the Table keeps
// it while looking at only a few candidates per request: routes are grouped
// by host (exact names in a map, wildcards in a map by suffix, the rest in
// one group), and within a group by exact path and by the first path
// segment, so a table of a thousand routes costs a few map lookups and a
// handful of comparisons.
package route

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// MaxParams is how many path parameters a route can capture; Result keeps
// them in a fixed array so that matching does not allocate.
const MaxParams = config.MaxPathParams

// pathKind ranks path conditions, most specific first (the numbers are
// compared: higher wins).
type pathKind uint8

const (
	pathNone pathKind = iota
	pathRegex
	pathPrefix
	pathTemplate
	pathExact
)

// Route is a compiled config.Route. Immutable.
type Route struct {
	// Name is the route's name from the config.
	Name string
	// Pool is the route's own pool (a version may name another; the pool
	// for a request is Result.Pool).
	Pool string

	order   int
	hosts   []string // lower case; "*.x.com" for wildcards
	kind    pathKind
	path    string // exact path, or prefix without a trailing slash
	re      *regexp.Regexp
	tmpl    []tseg
	params  []string // template parameter or regex group names, in capture order
	reGroup []int    // regex: the submatch index of each name in params
	methods []string
	headers []headerCond
	query   []queryCond
	ver     *versioning

	stripPrefix string
	rewriteRe   *regexp.Regexp
	rewriteTo   string
	host        *template
	reqOps      *headerOps
	respOps     *headerOps
}

// tseg is one segment of a path template: a literal or a parameter.
type tseg struct {
	lit   string
	param bool
	rest  bool // {name...}: the rest of the path
}

type headerCond struct {
	name   string // canonical
	value  string
	re     *regexp.Regexp
	absent bool
}

type queryCond struct {
	name, value string
}

// Param returns the value of the named path parameter in res, or "".
func (rt *Route) Param(res *Result, name string) string {
	for i, n := range rt.params {
		if n == name && i < int(res.nparams) {
			return res.params[i].of(res.path)
		}
	}
	return ""
}

// Methods returns the route's methods (nil: any). Do not modify.
func (rt *Route) Methods() []string { return rt.methods }

// Compile builds the table of one listener: the routes whose listeners list
// is empty or names it. routes should be validated (config.Load does); Compile
// still reports what it cannot build, with the route's name.
func Compile(routes []config.Route, listener string) (*Table, error) {
	var compiled []*Route
	for i, rc := range routes {
		if len(rc.Listeners) > 0 && !slices.Contains(rc.Listeners, listener) {
			continue
		}
		rt, err := compileRoute(rc, i)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Name, err)
		}
		compiled = append(compiled, rt)
	}
	return newTable(compiled), nil
}

func compileRoute(rc config.Route, order int) (*Route, error) {
	rt := &Route{Name: rc.Name, Pool: rc.Pool, order: order, methods: slices.Clone(rc.Match.Methods)}
	m := rc.Match
	for _, h := range m.Hosts {
		rt.hosts = append(rt.hosts, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	switch {
	case m.Path != "":
		rt.kind, rt.path = pathExact, m.Path
	case m.PathPrefix != "":
		rt.kind, rt.path = pathPrefix, strings.TrimRight(m.PathPrefix, "/")
		// "/" (or "//") takes every path: it is no condition, and ranking
		// it as a prefix of length 0 would be the same thing.
		if rt.path == "" {
			rt.kind = pathNone
		}
	case m.PathTemplate != "":
		names, err := config.ParsePathTemplate(m.PathTemplate)
		if err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		rt.kind, rt.path, rt.params = pathTemplate, m.PathTemplate, names
		for _, s := range strings.Split(m.PathTemplate[1:], "/") {
			switch {
			case strings.HasSuffix(s, "...}"):
				rt.tmpl = append(rt.tmpl, tseg{param: true, rest: true})
			case strings.HasPrefix(s, "{"):
				rt.tmpl = append(rt.tmpl, tseg{param: true})
			default:
				rt.tmpl = append(rt.tmpl, tseg{lit: s})
			}
		}
	case m.PathRegex != "":
		re, err := regexp.Compile(`^(?:` + m.PathRegex + `)$`)
		if err != nil {
			return nil, fmt.Errorf("match.path_regex: %w", err)
		}
		rt.kind, rt.path, rt.re = pathRegex, m.PathRegex, re
		for i, n := range re.SubexpNames() {
			if n != "" {
				rt.params = append(rt.params, n)
				rt.reGroup = append(rt.reGroup, i)
			}
		}
		if len(rt.params) > MaxParams {
			return nil, fmt.Errorf("match.path_regex: %d named groups, at most %d", len(rt.params), MaxParams)
		}
	}
	for _, h := range m.Headers {
		hc := headerCond{name: http.CanonicalHeaderKey(h.Name), value: h.Value, absent: h.Absent}
		if h.Regex != "" {
			re, err := regexp.Compile(`^(?:` + h.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("match.headers %s: %w", h.Name, err)
			}
			hc.re = re
		}
		rt.headers = append(rt.headers, hc)
	}
	for _, q := range m.Query {
		rt.query = append(rt.query, queryCond{name: q.Name, value: q.Value})
	}
	if rc.Versioning != nil {
		v, err := compileVersioning(rc, rt)
		if err != nil {
			return nil, fmt.Errorf("versioning: %w", err)
		}
		rt.ver = v
	}
	if rw := rc.Rewrite; rw != nil {
		rt.stripPrefix = strings.TrimRight(rw.StripPrefix, "/")
		if rw.PathRegex != "" {
			re, err := regexp.Compile(rw.PathRegex)
			if err != nil {
				return nil, fmt.Errorf("rewrite.path_regex: %w", err)
			}
			rt.rewriteRe, rt.rewriteTo = re, rw.PathReplacement
		}
		if rw.Host != "" {
			t, err := compileTemplate(rw.Host, rt)
			if err != nil {
				return nil, fmt.Errorf("rewrite.host: %w", err)
			}
			rt.host = t
		}
	}
	var err error
	if rt.reqOps, err = compileHeaderOps(rc.RequestHeaders, rt); err != nil {
		return nil, fmt.Errorf("request_headers: %w", err)
	}
	if rt.respOps, err = compileHeaderOps(rc.ResponseHeaders, rt); err != nil {
		return nil, fmt.Errorf("response_headers: %w", err)
	}
	return rt, nil
}

// literalLen is the number of literal characters of a template, its first
// ranking key among templates: /users/me beats /users/{id}.
func (rt *Route) literalLen() int {
	n := 0
	for _, s := range rt.tmpl {
		n += len(s.lit) + 1
	}
	return n
}

// less orders routes of one host group: most specific first. The host is
// not compared here because the table keeps one group per host pattern.
func less(a, b *Route) bool {
	if a.kind != b.kind {
		return a.kind > b.kind
	}
	switch a.kind {
	case pathTemplate:
		if la, lb := a.literalLen(), b.literalLen(); la != lb {
			return la > lb
		}
		if len(a.tmpl) != len(b.tmpl) {
			return len(a.tmpl) > len(b.tmpl)
		}
	case pathPrefix, pathRegex, pathExact:
		if len(a.path) != len(b.path) {
			return len(a.path) > len(b.path)
		}
	}
	if ca, cb := len(a.headers)+len(a.query), len(b.headers)+len(b.query); ca != cb {
		return ca > cb
	}
	if (len(a.methods) > 0) != (len(b.methods) > 0) {
		return len(a.methods) > 0
	}
	return a.order < b.order
}
