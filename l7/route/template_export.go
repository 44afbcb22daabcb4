package route

import (
	"net/http"
	"net/netip"
)

// Template is a compiled header template ({client_ip}, {path.id},
// {request_id}, ...) for other request-path packages (l7/transform's JSON
// values): one syntax and one implementation for every templated value.
type Template struct{ t *template }

// Template compiles s with the route's path parameters.
func (rt *Route) Template(s string) (*Template, error) {
	t, err := compileTemplate(s, rt)
	if err != nil {
		return nil, err
	}
	return &Template{t: t}, nil
}

// Expand renders the template for a request matched to res.Route, as
// RewriteRequest does (values from the incoming request; CR, LF and NUL
// dropped). A Static template needs no request: in and res may be nil.
func (t *Template) Expand(in *http.Request, res *Result, clientIP netip.Addr) string {
	if t.t.static {
		return t.t.lit
	}
	return t.t.expand(in, res, res.Route, clientIP)
}

// Static reports whether the template has no placeholder.
func (t *Template) Static() bool { return t.t.static }
