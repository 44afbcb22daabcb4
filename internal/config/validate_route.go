package config

import (
	"fmt"
	"regexp"
	"strings"
)

// validateRoutes checks l7.routes against the listeners and pools.
func (v *validator) validateRoutes(listeners, pools map[string]bool) {
	l7 := &v.c.L7
	routes := map[string]bool{}
	for i, r := range l7.Routes {
		p := fmt.Sprintf("l7.routes[%d]", i)
		v.name(p+".name", "route", r.Name, routes)
		for j, l := range r.Listeners {
			if !listeners[l] {
				v.errorf(fmt.Sprintf("%s.listeners[%d]", p, j), "no listener named %q", l)
			}
		}
		switch {
		case r.Pool == "":
			v.errorf(p+".pool", "route %q needs a pool", r.Name)
		case !pools[r.Pool]:
			v.errorf(p+".pool", "no pool named %q", r.Pool)
		}
		m := r.Match
		if m.Path != "" && m.PathPrefix != "" {
			v.errorf(p+".match", "set path or path_prefix, not both")
		}
		if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
			v.errorf(p+".match.path", "path %q must start with /", m.Path)
		}
		if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
			v.errorf(p+".match.path_prefix", "path_prefix %q must start with /", m.PathPrefix)
		}
		for j, h := range m.Hosts {
			if !validHostPattern(h) {
				v.errorf(fmt.Sprintf("%s.match.hosts[%d]", p, j), "%q is not a host name or *.wildcard", h)
			}
		}
		for j, meth := range m.Methods {
			if !methodRE.MatchString(meth) {
				v.errorf(fmt.Sprintf("%s.match.methods[%d]", p, j), "%q is not an upper-case HTTP method", meth)
			}
		}
	}
}

var (
	methodRE = regexp.MustCompile(`^[A-Z]{1,20}$`)
	labelRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
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
