package route

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
)

type versioning struct {
	versions []version
	names    []string // for the 404 body, in config order
	sources  []source
	def      *version
	strip    bool
	tmplIdx  int // the {version} parameter's index in a template route, or -1
}

type version struct {
	name string
	seg  string // "v" + name, as written in the URL
	pool string
}

type sourceKind uint8

const (
	fromURL sourceKind = iota
	fromHeader
	fromMediaType
)

type source struct {
	kind   sourceKind
	header string // canonical, for fromHeader
}

func compileVersioning(rc config.Route, rt *Route) (*versioning, error) {
	vc := rc.Versioning
	v := &versioning{strip: vc.StripPrefix, tmplIdx: slices.Index(rt.params, "version")}
	if rt.kind != pathTemplate {
		v.tmplIdx = -1
	}
	if len(vc.Versions) == 0 {
		return nil, fmt.Errorf("no versions")
	}
	for _, ver := range vc.Versions {
		pool := ver.Pool
		if pool == "" {
			pool = rc.Pool
		}
		v.versions = append(v.versions, version{name: ver.Name, seg: "v" + ver.Name, pool: pool})
		v.names = append(v.names, ver.Name)
	}
	if vc.Default != "" {
		i := slices.Index(v.names, vc.Default)
		if i < 0 {
			return nil, fmt.Errorf("default %q is not one of the versions", vc.Default)
		}
		v.def = &v.versions[i]
	}
	sources := vc.Sources
	if len(sources) == 0 {
		sources = []string{config.DefaultVersionSource}
	}
	for _, s := range sources {
		switch name, isHeader := strings.CutPrefix(s, "header:"); {
		case s == "url":
			if rt.kind == pathExact || rt.kind == pathRegex || (rt.kind == pathTemplate && v.tmplIdx < 0) {
				return nil, fmt.Errorf("the url source needs path_prefix, a path_template with {version}, or no path condition")
			}
			v.sources = append(v.sources, source{kind: fromURL})
		case s == "media_type":
			v.sources = append(v.sources, source{kind: fromMediaType})
		case isHeader && name != "":
			v.sources = append(v.sources, source{kind: fromHeader, header: http.CanonicalHeaderKey(name)})
		default:
			return nil, fmt.Errorf("unknown source %q", s)
		}
	}
	return v, nil
}

// resolve finds the request's version. ok is false when the request named
// an unknown version (requested says which) or none without a default.
func (v *versioning) resolve(r *http.Request, res *Result, rt *Route, p string) (ver *version, requested string, ok bool) {
	for _, s := range v.sources {
		var cand string
		switch s.kind {
		case fromURL:
			seg, sp, found := v.urlSegment(res, rt, p)
			if !found {
				continue
			}
			for i := range v.versions {
				if v.versions[i].seg == seg || (v.tmplIdx >= 0 && v.versions[i].name == seg) {
					res.verSeg = sp
					return &v.versions[i], "", true
				}
			}
			// Only a segment that looks like a version is one: /api/users
			// names no version, /api/v9 names an unknown one.
			if v.tmplIdx < 0 && !looksLikeVersion(seg) {
				continue
			}
			return nil, strings.TrimPrefix(seg, "v"), false
		case fromHeader:
			vals := r.Header[s.header]
			if len(vals) == 0 {
				continue
			}
			cand = strings.TrimSpace(vals[0])
		case fromMediaType:
			cand = acceptVersion(r.Header["Accept"])
		}
		if cand == "" {
			continue
		}
		if ver := v.lookup(cand); ver != nil {
			return ver, "", true
		}
		return nil, cand, false
	}
	if v.def != nil {
		return v.def, "", true
	}
	return nil, "", false
}

// lookup finds a version by name as a header gives it: "2" or "v2".
func (v *versioning) lookup(s string) *version {
	for i := range v.versions {
		if v.versions[i].name == s {
			return &v.versions[i]
		}
	}
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') {
		return v.lookup(s[1:])
	}
	return nil
}

// urlSegment returns the path segment that carries the version and its span
// (with the leading slash, so stripping it leaves a clean path).
func (v *versioning) urlSegment(res *Result, rt *Route, p string) (string, span, bool) {
	if v.tmplIdx >= 0 {
		if v.tmplIdx >= int(res.nparams) {
			return "", span{}, false
		}
		s := res.params[v.tmplIdx]
		return s.of(p), span{s.start - 1, s.end}, true
	}
	start := 0
	if rt.kind == pathPrefix {
		start = len(rt.path)
	}
	if start >= len(p) || p[start] != '/' {
		return "", span{}, false
	}
	end := strings.IndexByte(p[start+1:], '/')
	if end < 0 {
		end = len(p)
	} else {
		end += start + 1
	}
	return p[start+1 : end], span{int32(start), int32(end)}, true
}

func looksLikeVersion(seg string) bool {
	return len(seg) >= 2 && seg[0] == 'v' && seg[1] >= '0' && seg[1] <= '9'
}

// acceptVersion returns the version parameter of the first media range that
// has one: Accept: application/vnd.acme+json; version=2 gives "2".
func acceptVersion(vals []string) string {
	for _, val := range vals {
		for val != "" {
			var mr string
			mr, val, _ = strings.Cut(val, ",")
			_, params, _ := strings.Cut(mr, ";")
			for params != "" {
				var kv string
				kv, params, _ = strings.Cut(params, ";")
				k, pv, _ := strings.Cut(kv, "=")
				if strings.EqualFold(strings.TrimSpace(k), "version") {
					pv = strings.TrimSpace(pv)
					if len(pv) >= 2 && pv[0] == '"' && pv[len(pv)-1] == '"' {
						pv = pv[1 : len(pv)-1]
					}
					if pv != "" {
						return pv
					}
				}
			}
		}
	}
	return ""
}
