package route

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// RequestIDHeader is where {request_id} is read from when the core has not
// put the id in Result.RequestID.
const RequestIDHeader = "X-Request-Id"

type partKind uint8

const (
	partLit partKind = iota
	partClientIP
	partHost
	partPath
	partParam
	partVersion
	partHeader
	partQuery
	partRequestID
	partRoute
)

type part struct {
	kind partKind
	s    string // literal, canonical header name or query name
	idx  int    // parameter index
}

// template is a compiled header template ({client_ip}, {path.id}, ...).
type template struct {
	parts  []part
	static bool // only literals: expanding needs no request
	lit    string
}

func compileTemplate(t string, rt *Route) (*template, error) {
	if _, err := config.TemplatePlaceholders(t); err != nil {
		return nil, err
	}
	tp := &template{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tp.parts = append(tp.parts, part{kind: partLit, s: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c == '{' || c == '}') && i+1 < len(t) && t[i+1] == c {
			lit.WriteByte(c)
			i++
			continue
		}
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		end := strings.IndexByte(t[i:], '}') + i
		name := t[i+1 : end]
		i = end
		flush()
		kind, arg, _ := strings.Cut(name, ".")
		var p part
		switch {
		case name == "client_ip":
			p.kind = partClientIP
		case name == "host":
			p.kind = partHost
		case name == "path":
			p.kind = partPath
		case name == "version":
			p.kind = partVersion
		case name == "request_id":
			p.kind = partRequestID
		case name == "route":
			p.kind = partRoute
		case kind == "path" && arg != "":
			p.kind, p.idx = partParam, slices.Index(rt.params, arg)
			if p.idx < 0 {
				return nil, fmt.Errorf("{%s}: the route has no path parameter %q", name, arg)
			}
		case kind == "header" && arg != "":
			p.kind, p.s = partHeader, http.CanonicalHeaderKey(arg)
		case kind == "query" && arg != "":
			p.kind, p.s = partQuery, arg
		default:
			return nil, fmt.Errorf("unknown placeholder {%s}", name)
		}
		tp.parts = append(tp.parts, p)
	}
	flush()
	tp.static = true
	for _, p := range tp.parts {
		tp.static = tp.static && p.kind == partLit
	}
	if tp.static && len(tp.parts) == 1 {
		tp.lit = tp.parts[0].s
	}
	return tp, nil
}

// expand renders the template for a request. Values come from the incoming
// request, so that removing or setting headers does not change them.
func (tp *template) expand(in *http.Request, res *Result, rt *Route, clientIP netip.Addr) string {
	if tp.static {
		return tp.lit
	}
	var stack [128]byte
	b := stack[:0]
	for _, p := range tp.parts {
		switch p.kind {
		case partLit:
			b = append(b, p.s...)
		case partClientIP:
			if clientIP.IsValid() {
				b = clientIP.Unmap().AppendTo(b)
			}
		case partHost:
			b = append(b, hostOnly(in.Host)...)
		case partPath:
			b = append(b, res.path...)
		case partParam:
			b = append(b, rt.Param(res, rt.params[p.idx])...)
		case partVersion:
			b = append(b, res.Version...)
		case partHeader:
			if v := in.Header[p.s]; len(v) > 0 {
				b = append(b, v[0]...)
			}
		case partQuery:
			v, _ := queryValue(in.URL.RawQuery, p.s)
			b = append(b, v...)
		case partRequestID:
			if res.RequestID != "" {
				b = append(b, res.RequestID...)
			} else if v := in.Header[RequestIDHeader]; len(v) > 0 {
				b = append(b, v[0]...)
			}
		case partRoute:
			b = append(b, rt.Name...)
		}
	}
	return sanitizeHeaderValue(b)
}

// sanitizeHeaderValue drops CR, LF and NUL: a client must not be able to
// inject a header line through a templated value (RFC 9110 §5.5).
func sanitizeHeaderValue(b []byte) string {
	out := b[:0]
	for _, c := range b {
		if c != '\r' && c != '\n' && c != 0 {
			out = append(out, c)
		}
	}
	return string(out)
}

type headerOps struct {
	add, set []namedTemplate
	remove   []string // canonical
}

type namedTemplate struct {
	name string // canonical
	t    *template
}

func compileHeaderOps(c *config.HeaderOps, rt *Route) (*headerOps, error) {
	if c == nil {
		return nil, nil
	}
	ops := &headerOps{}
	for _, list := range []struct {
		in  []config.HeaderValue
		out *[]namedTemplate
	}{{c.Add, &ops.add}, {c.Set, &ops.set}} {
		for _, hv := range list.in {
			t, err := compileTemplate(hv.Value, rt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", hv.Name, err)
			}
			*list.out = append(*list.out, namedTemplate{name: http.CanonicalHeaderKey(hv.Name), t: t})
		}
	}
	for _, n := range c.Remove {
		ops.remove = append(ops.remove, http.CanonicalHeaderKey(n))
	}
	return ops, nil
}

func (ops *headerOps) apply(h http.Header, in *http.Request, res *Result, rt *Route, clientIP netip.Addr) {
	if ops == nil {
		return
	}
	for _, n := range ops.remove {
		delete(h, n)
	}
	for _, s := range ops.set {
		h[s.name] = []string{s.t.expand(in, res, rt, clientIP)}
	}
	for _, a := range ops.add {
		h[a.name] = append(h[a.name], a.t.expand(in, res, rt, clientIP))
	}
}

// RewriteRequest applies the route's request changes to out, the request
// about to be sent upstream (a copy of in whose Header map it may change):
// the path (the cleaned path when the client's had dot segments, then the
// version segment stripped when versioning.strip_prefix, then
// rewrite.strip_prefix, then rewrite.path_regex), the host, then the request
// headers (remove, set, add). Templates read the incoming request in.
//
// A changed path is set on out.URL.Path with RawPath cleared, so an encoded
// slash (%2F) in a rewritten path is sent as "/".
func (rt *Route) RewriteRequest(out *http.Request, in *http.Request, res *Result, clientIP netip.Addr) {
	p, changed := res.path, res.cleaned
	if rt.ver != nil && rt.ver.strip && res.verSeg.end > res.verSeg.start {
		p = p[:res.verSeg.start] + p[res.verSeg.end:]
		changed = true
	}
	if rt.stripPrefix != "" && hasPrefixSegment(p, rt.stripPrefix) {
		p = p[len(rt.stripPrefix):]
		changed = true
	}
	if rt.rewriteRe != nil {
		np := rt.rewriteRe.ReplaceAllString(p, rt.rewriteTo)
		changed = changed || np != p
		p = np
	}
	if changed {
		if p == "" || p[0] != '/' {
			p = "/" + p
		}
		if out.URL == in.URL {
			u := *in.URL
			out.URL = &u
		}
		out.URL.Path, out.URL.RawPath = p, ""
	}
	if rt.host != nil {
		out.Host = rt.host.expand(in, res, rt, clientIP)
	}
	rt.reqOps.apply(out.Header, in, res, rt, clientIP)
}

// RewriteResponse applies the route's response header changes to h, with the
// same templates as RewriteRequest.
func (rt *Route) RewriteResponse(h http.Header, in *http.Request, res *Result, clientIP netip.Addr) {
	rt.respOps.apply(h, in, res, rt, clientIP)
}

func unescapeQuery(s string) (string, error) { return url.QueryUnescape(s) }
