package config

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// validateRoutes checks l7.routes against the listeners and pools, and
// returns each route's path parameter names (validateMatch), by index.
func (v *validator) validateRoutes(listeners, pools map[string]bool) []map[string]bool {
	l7 := &v.c.L7
	routes := map[string]bool{}
	all := make([]map[string]bool, len(l7.Routes))
	for i, r := range l7.Routes {
		p := fmt.Sprintf("l7.routes[%d]", i)
		v.name(p+".name", "route", r.Name, routes)
		for j, l := range r.Listeners {
			if !listeners[l] {
				v.errorf(fmt.Sprintf("%s.listeners[%d]", p, j), "no listener named %q", l)
			}
		}
		versionsHavePools := r.Versioning != nil && len(r.Versioning.Versions) > 0
		for _, ver := range versionOf(r) {
			versionsHavePools = versionsHavePools && ver.Pool != ""
		}
		switch {
		case r.Pool == "" && !versionsHavePools && r.Aggregate == nil:
			v.errorf(p+".pool", "route %q needs a pool", r.Name)
		case r.Pool != "" && !pools[r.Pool]:
			v.errorf(p+".pool", "no pool named %q", r.Pool)
		}
		params := v.validateMatch(p+".match", r.Match)
		all[i] = params
		v.validateVersioning(p, r, pools)
		if rw := r.Rewrite; rw != nil {
			rp := p + ".rewrite"
			if rw.StripPrefix != "" && (!strings.HasPrefix(rw.StripPrefix, "/") || rw.StripPrefix == "/") {
				v.errorf(rp+".strip_prefix", "strip_prefix %q must start with / and be more than /", rw.StripPrefix)
			}
			if (rw.PathRegex == "") != (rw.PathReplacement == "") {
				v.errorf(rp, "set path_regex and path_replacement together")
			}
			if rw.PathRegex != "" {
				if re, err := regexp.Compile(rw.PathRegex); err != nil {
					v.errorf(rp+".path_regex", "path_regex %q: %v", rw.PathRegex, reError(err))
				} else {
					v.checkReplacement(rp+".path_replacement", rw.PathReplacement, re)
				}
			}
			if rw.Host != "" {
				v.checkTemplate(rp+".host", rw.Host, params)
			}
		}
		v.validateHeaderOps(p+".request_headers", r.RequestHeaders, params)
		v.validateHeaderOps(p+".response_headers", r.ResponseHeaders, params)
		if r.MaxBodyBytes < 0 {
			v.errorf(p+".max_body_bytes", "max_body_bytes %d is negative (0 is the listener's limit)", r.MaxBodyBytes)
		}
	}
	return all
}

func versionOf(r Route) []APIVersion {
	if r.Versioning == nil {
		return nil
	}
	return r.Versioning.Versions
}

// validateMatch checks a route's conditions and returns the names of the
// path parameters they define, for the templates to check against.
func (v *validator) validateMatch(p string, m Match) map[string]bool {
	params := map[string]bool{}
	kinds := 0
	for _, s := range []string{m.Path, m.PathPrefix, m.PathRegex, m.PathTemplate} {
		if s != "" {
			kinds++
		}
	}
	if kinds > 1 {
		v.errorf(p, "set only one of path, path_prefix, path_regex and path_template")
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		v.errorf(p+".path", "path %q must start with /", m.Path)
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		v.errorf(p+".path_prefix", "path_prefix %q must start with /", m.PathPrefix)
	}
	if m.PathRegex != "" {
		re, err := regexp.Compile(m.PathRegex)
		if err != nil {
			v.errorf(p+".path_regex", "path_regex %q: %v", m.PathRegex, reError(err))
		} else {
			n := 0
			for _, name := range re.SubexpNames() {
				if name != "" {
					params[name] = true
					n++
				}
			}
			if n > MaxPathParams {
				v.errorf(p+".path_regex", "path_regex has %d named groups; at most %d", n, MaxPathParams)
			}
		}
	}
	if m.PathTemplate != "" {
		names, err := ParsePathTemplate(m.PathTemplate)
		if err != nil {
			v.errorf(p+".path_template", "%v", err)
		}
		for _, n := range names {
			params[n] = true
		}
	}
	for j, h := range m.Hosts {
		if !validHostPattern(h) {
			v.errorf(fmt.Sprintf("%s.hosts[%d]", p, j), "%q is not a host name or *.wildcard", h)
		}
	}
	for j, meth := range m.Methods {
		if !methodRE.MatchString(meth) {
			v.errorf(fmt.Sprintf("%s.methods[%d]", p, j), "%q is not an upper-case HTTP method", meth)
		}
	}
	for j, h := range m.Headers {
		hp := fmt.Sprintf("%s.headers[%d]", p, j)
		if !tokenRE.MatchString(h.Name) {
			v.errorf(hp+".name", "%q is not a header name", h.Name)
		}
		if strings.EqualFold(h.Name, "Host") {
			v.errorf(hp+".name", "match the host with hosts, not a header condition")
		}
		set := 0
		if h.Value != "" {
			set++
		}
		if h.Regex != "" {
			set++
			if _, err := regexp.Compile(h.Regex); err != nil {
				v.errorf(hp+".regex", "regex %q: %v", h.Regex, reError(err))
			}
		}
		if h.Absent {
			set++
		}
		if set > 1 {
			v.errorf(hp, "set at most one of value, regex and absent")
		}
	}
	for j, q := range m.Query {
		if q.Name == "" {
			v.errorf(fmt.Sprintf("%s.query[%d].name", p, j), "a query condition needs a name")
		}
	}
	return params
}

func (v *validator) validateVersioning(p string, r Route, pools map[string]bool) {
	vr := r.Versioning
	if vr == nil {
		return
	}
	vp := p + ".versioning"
	if len(vr.Versions) == 0 {
		v.errorf(vp+".versions", "versioning needs at least one version")
	}
	names := map[string]bool{}
	for j, ver := range vr.Versions {
		jp := fmt.Sprintf("%s.versions[%d]", vp, j)
		switch {
		case !versionRE.MatchString(ver.Name) || (len(ver.Name) > 1 && ver.Name[0] == 'v' && ver.Name[1] >= '0' && ver.Name[1] <= '9'):
			v.errorf(jp+".name", "version %q: use letters, digits, '.', '_' and '-', without a leading v", ver.Name)
		case names[ver.Name]:
			v.errorf(jp+".name", "duplicate version %q", ver.Name)
		}
		names[ver.Name] = true
		if ver.Pool != "" && ver.Pool != r.Pool && !pools[ver.Pool] {
			v.errorf(jp+".pool", "no pool named %q", ver.Pool)
		}
	}
	if vr.Default != "" && !names[vr.Default] {
		v.errorf(vp+".default", "default %q is not one of the versions", vr.Default)
	}
	seen := map[string]bool{}
	url := false
	for j, s := range vr.Sources {
		sp := fmt.Sprintf("%s.sources[%d]", vp, j)
		if seen[strings.ToLower(s)] {
			v.errorf(sp, "source %q is listed twice", s)
		}
		seen[strings.ToLower(s)] = true
		switch name, isHeader := strings.CutPrefix(s, "header:"); {
		case s == "url":
			url = true
		case s == "media_type":
		case isHeader:
			if !tokenRE.MatchString(name) {
				v.errorf(sp, "%q is not a header name", name)
			}
		default:
			v.errorf(sp, "source %q: use url, header:NAME or media_type", s)
		}
	}
	m := r.Match
	if url && (m.Path != "" || m.PathRegex != "") {
		v.errorf(vp+".sources", "the url source reads the segment after path_prefix (or the {version} of path_template): it cannot be used with path or path_regex")
	}
	if url && m.PathTemplate != "" && !strings.Contains(m.PathTemplate, "{version}") {
		v.errorf(vp+".sources", "the url source with path_template needs a {version} segment in the template")
	}
	if vr.StripPrefix && !url {
		v.errorf(vp+".strip_prefix", "strip_prefix removes the URL's version segment: add the url source")
	}
}

func (v *validator) validateHeaderOps(p string, ops *HeaderOps, params map[string]bool) {
	if ops == nil {
		return
	}
	for _, list := range []struct {
		key  string
		vals []HeaderValue
	}{{"add", ops.Add}, {"set", ops.Set}} {
		for j, hv := range list.vals {
			hp := fmt.Sprintf("%s.%s[%d]", p, list.key, j)
			if !tokenRE.MatchString(hv.Name) {
				v.errorf(hp+".name", "%q is not a header name", hv.Name)
			} else if hopByHop[http.CanonicalHeaderKey(hv.Name)] {
				v.errorf(hp+".name", "%s is a hop-by-hop header: the proxy manages it", hv.Name)
			}
			v.checkTemplate(hp+".value", hv.Value, params)
		}
	}
	for j, name := range ops.Remove {
		if !tokenRE.MatchString(name) {
			v.errorf(fmt.Sprintf("%s.remove[%d]", p, j), "%q is not a header name", name)
		}
	}
}

// hopByHop headers belong to one connection (RFC 9110 §7.6.1); the proxy
// removes and sets them itself, so a route must not.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// checkTemplate reports unknown placeholders and path parameters the route
// does not define.
func (v *validator) checkTemplate(p, tmpl string, params map[string]bool) {
	names, err := TemplatePlaceholders(tmpl)
	if err != nil {
		v.errorf(p, "%v", err)
		return
	}
	for _, n := range names {
		kind, arg, _ := strings.Cut(n, ".")
		switch {
		case arg == "" && oneOf(n, "client_ip", "host", "path", "version", "request_id", "route"):
		case kind == "path" && arg != "":
			if !params[arg] {
				v.errorf(p, "{%s}: the route's match defines no path parameter %q", n, arg)
			}
		case kind == "header" && arg != "":
			if !tokenRE.MatchString(arg) {
				v.errorf(p, "{%s}: %q is not a header name", n, arg)
			}
		case kind == "query" && arg != "":
		default:
			v.errorf(p, "unknown placeholder {%s}: use client_ip, host, path, path.NAME, version, header.NAME, query.NAME, request_id or route", n)
		}
	}
}

// checkReplacement reports ${name} groups the expression does not have.
func (v *validator) checkReplacement(p, repl string, re *regexp.Regexp) {
	groups := map[string]bool{}
	for i, n := range re.SubexpNames() {
		groups[fmt.Sprint(i)] = true
		if n != "" {
			groups[n] = true
		}
	}
	for _, m := range replacementRE.FindAllStringSubmatch(repl, -1) {
		name := m[1] + m[2]
		if name != "" && !groups[name] {
			v.errorf(p, "$%s: path_regex has no such group", name)
		}
	}
}

// MaxPathParams is how many path parameters a route can capture: the router
// keeps them in a fixed array so matching does not allocate.
const MaxPathParams = 16

// ParsePathTemplate checks a path template (/users/{id}/orders/{order},
// /files/{rest...}) and returns its parameter names in order. The router
// compiles templates itself; this is the one definition of their syntax.
func ParsePathTemplate(t string) ([]string, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("path_template %q must start with /", t)
	}
	var names []string
	segs := strings.Split(t[1:], "/")
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			continue
		}
		if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
			return nil, fmt.Errorf("path_template %q: segment %q: a parameter is a whole segment, {name}", t, s)
		}
		name := s[1 : len(s)-1]
		if rest, ok := strings.CutSuffix(name, "..."); ok {
			if i != len(segs)-1 {
				return nil, fmt.Errorf("path_template %q: {%s} must be the last segment", t, name)
			}
			name = rest
		}
		if !paramRE.MatchString(name) {
			return nil, fmt.Errorf("path_template %q: parameter %q: use letters, digits and _", t, name)
		}
		if slicesContains(names, name) {
			return nil, fmt.Errorf("path_template %q: parameter %q appears twice", t, name)
		}
		names = append(names, name)
	}
	if len(names) > MaxPathParams {
		return nil, fmt.Errorf("path_template %q has %d parameters; at most %d", t, len(names), MaxPathParams)
	}
	return names, nil
}

// TemplatePlaceholders returns the names inside {} of a header template
// ("{{" is a literal brace), or an error for an unclosed or empty one.
func TemplatePlaceholders(t string) ([]string, error) {
	var names []string
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '{':
			if i+1 < len(t) && t[i+1] == '{' {
				i++
				continue
			}
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("template %q: { at %d is not closed (write {{ for a literal brace)", t, i)
			}
			name := t[i+1 : i+end]
			if name == "" || strings.ContainsAny(name, "{ ") {
				return nil, fmt.Errorf("template %q: bad placeholder {%s}", t, name)
			}
			names = append(names, name)
			i += end
		case '}':
			if i+1 < len(t) && t[i+1] == '}' {
				i++
			}
		}
	}
	return names, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// reError strips the "error parsing regexp: " that regexp puts before every
// message: the key path already says what was being parsed.
func reError(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

var (
	methodRE      = regexp.MustCompile(`^[A-Z]{1,20}$`)
	labelRE       = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	tokenRE       = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$") // RFC 9110 §5.6.2
	paramRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	versionRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)
	replacementRE = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))`)
)

func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if !labelRE.MatchString(label) {
			return false
		}
	}
	return true
}
