package config

import (
	"fmt"
	"strings"
)

// validateAggregates checks the routes' aggregate calls against the pools;
// params are the routes' path parameters (validateRoutes).
func (v *validator) validateAggregates(pools map[string]bool, params []map[string]bool) {
	for i, r := range v.c.L7.Routes {
		a := r.Aggregate
		if a == nil {
			continue
		}
		p := fmt.Sprintf("l7.routes[%d]", i)
		ap := p + ".aggregate"
		for _, x := range []struct {
			set  bool
			name string
		}{
			{r.Pool != "", "pool"}, {r.Versioning != nil, "versioning"}, {r.Rewrite != nil, "rewrite"},
			{r.RequestHeaders != nil, "request_headers"}, {r.Cache != nil, "cache"},
		} {
			if x.set {
				v.errorf(p+"."+x.name, "a route with aggregate has no %s (each call names its pool)", x.name)
			}
		}
		if !oneOf(a.Merge, AggregateMergeNamed, AggregateMergeObject) {
			v.errorf(ap+".merge", "merge %q: use named or object", a.Merge)
		}
		if !oneOf(a.OnPartialFailure, AggregatePartialFail, AggregatePartialAnswer) {
			v.errorf(ap+".on_partial_failure", "on_partial_failure %q: use fail or partial", a.OnPartialFailure)
		}
		if len(a.Calls) == 0 {
			v.errorf(ap+".calls", "aggregate needs at least one call")
		}
		names := map[string]bool{}
		for j, c := range a.Calls {
			cp := fmt.Sprintf("%s.calls[%d]", ap, j)
			v.name(cp+".name", "call", c.Name, names)
			switch {
			case c.Pool == "":
				v.errorf(cp+".pool", "call %q needs a pool", c.Name)
			case !pools[c.Pool]:
				v.errorf(cp+".pool", "no pool named %q", c.Pool)
			}
			if !methodRE.MatchString(c.Method) {
				v.errorf(cp+".method", "method %q: use an upper-case HTTP method", c.Method)
			}
			if !strings.HasPrefix(c.Path, "/") {
				v.errorf(cp+".path", "path %q must start with /", c.Path)
			} else {
				v.checkTemplate(cp+".path", c.Path, params[i])
			}
			if c.Timeout < 0 {
				v.errorf(cp+".timeout", "timeout %s is negative", c.Timeout.D())
			}
			for k, f := range c.Select {
				if f == "" {
					v.errorf(fmt.Sprintf("%s.select[%d]", cp, k), "the field name is empty")
				}
			}
			to := map[string]bool{}
			for k, rn := range c.Rename {
				rp := fmt.Sprintf("%s.rename[%d]", cp, k)
				if rn.From == "" {
					v.errorf(rp+".from", "the field name is empty")
				}
				switch {
				case rn.To == "":
					v.errorf(rp+".to", "the field name is empty")
				case to[rn.To]:
					v.errorf(rp+".to", "%q is the target of two renames", rn.To)
				}
				to[rn.To] = true
			}
		}
	}
}
