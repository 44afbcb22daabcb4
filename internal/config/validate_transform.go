package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// validateTransforms checks the routes' compression and body_transform;
// params are the routes' path parameters (validateRoutes).
func (v *validator) validateTransforms(params []map[string]bool) {
	for i, r := range v.c.L7.Routes {
		p := fmt.Sprintf("l7.routes[%d]", i)
		v.validateCompression(p+".compression", r.Compression)
		if t := r.BodyTransform; t != nil {
			tp := p + ".body_transform"
			if t.MaxBytes < 0 {
				v.errorf(tp+".max_bytes", "max_bytes %d is negative", t.MaxBytes)
			}
			if t.Request == nil && t.Response == nil {
				v.errorf(tp, "body_transform needs request or response changes")
			}
			v.validateJSONOps(tp+".request", t.Request, params[i])
			v.validateJSONOps(tp+".response", t.Response, params[i])
		}
	}
}

// CompressionEncodings are the content codings the proxy can produce.
var CompressionEncodings = []string{"zstd", "br", "gzip"}

func (v *validator) validateCompression(p string, c *Compression) {
	if c == nil {
		return
	}
	for j, e := range c.Encodings {
		ep := fmt.Sprintf("%s.encodings[%d]", p, j)
		if !slices.Contains(CompressionEncodings, e) {
			v.errorf(ep, "encoding %q: use zstd, br or gzip", e)
		} else if slices.Index(c.Encodings, e) < j {
			v.errorf(ep, "encoding %q is listed twice", e)
		}
	}
	if c.MinSize < 0 {
		v.errorf(p+".min_size", "min_size %d is negative", c.MinSize)
	}
	for j, ct := range c.ContentTypes {
		if !ValidMediaRange(ct) {
			v.errorf(fmt.Sprintf("%s.content_types[%d]", p, j), "%q: write type/subtype, type/* or +suffix", ct)
		}
	}
}

// ValidMediaRange accepts the forms content_types takes: type/subtype,
// type/* and +suffix, each part a token.
func ValidMediaRange(s string) bool {
	if suf, ok := strings.CutPrefix(s, "+"); ok {
		return tokenRE.MatchString(suf) && !strings.ContainsAny(suf, "/+")
	}
	t, sub, ok := strings.Cut(s, "/")
	return ok && t != "*" && tokenRE.MatchString(t) && tokenRE.MatchString(sub) && !strings.Contains(sub, "/")
}

func (v *validator) validateJSONOps(p string, ops *JSONOps, params map[string]bool) {
	if ops == nil {
		return
	}
	if len(ops.Rename)+len(ops.Remove)+len(ops.Set) == 0 {
		v.errorf(p, "no rename, remove or set")
	}
	for j, rn := range ops.Rename {
		rp := fmt.Sprintf("%s.rename[%d]", p, j)
		v.checkJSONPath(rp+".from", rn.From)
		v.checkJSONPath(rp+".to", rn.To)
		if rn.From != "" && rn.To != "" && (rn.To == rn.From || strings.HasPrefix(rn.To, rn.From+".") || strings.HasPrefix(rn.From, rn.To+".")) {
			v.errorf(rp+".to", "%q and %q overlap: a field cannot be moved into itself or over its parent", rn.From, rn.To)
		}
	}
	for j, path := range ops.Remove {
		v.checkJSONPath(fmt.Sprintf("%s.remove[%d]", p, j), path)
	}
	for j, s := range ops.Set {
		sp := fmt.Sprintf("%s.set[%d]", p, j)
		v.checkJSONPath(sp+".path", s.Path)
		switch {
		case (s.Value == "") == (s.JSON == ""):
			v.errorf(sp, "set exactly one of value and json (an empty string is json: '\"\"')")
		case s.JSON != "" && !json.Valid([]byte(s.JSON)):
			v.errorf(sp+".json", "%q is not a JSON value", s.JSON)
		case s.Value != "":
			v.checkTemplate(sp+".value", s.Value, params)
		}
	}
}

// checkJSONPath accepts a dotted path of non-empty segments.
func (v *validator) checkJSONPath(p, path string) {
	if path == "" {
		v.errorf(p, "the path is empty")
		return
	}
	if slices.Contains(strings.Split(path, "."), "") {
		v.errorf(p, "path %q has an empty segment", path)
	}
}
