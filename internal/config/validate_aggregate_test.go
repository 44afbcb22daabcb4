package config

import (
	"testing"
	"time"
)

func TestAggregateErrorsNameTheirKeyPath(t *testing.T) {
	call := func(extra string) string {
		return "    - {name: x, match: {path_template: '/d/{id}'}, aggregate: {calls: [{name: a, pool: p, path: '/a/{path.id}'}, " + extra + "]}}\n"
	}
	tests := []struct {
		name, route, wantPath, wantMsg string
	}{
		{"no calls", "    - {name: x, aggregate: {calls: []}}\n", "l7.routes[1].aggregate.calls", "at least one call"},
		{"an unknown pool", call("{name: b, pool: nope, path: /b}"), "l7.routes[1].aggregate.calls[1].pool", `no pool named "nope"`},
		{"a call without a pool", call("{name: b, path: /b}"), "l7.routes[1].aggregate.calls[1].pool", "needs a pool"},
		{"a repeated name", call("{name: a, pool: q, path: /b}"), "l7.routes[1].aggregate.calls[1].name", "duplicate call name"},
		{"a call without a name", call("{pool: q, path: /b}"), "l7.routes[1].aggregate.calls[1].name", "needs a name"},
		{"a relative path", call("{name: b, pool: q, path: b}"), "l7.routes[1].aggregate.calls[1].path", "must start with /"},
		{"an unknown path parameter", call("{name: b, pool: q, path: '/b/{path.nope}'}"), "l7.routes[1].aggregate.calls[1].path", "no path parameter"},
		{"a lower-case method", call("{name: b, pool: q, path: /b, method: get}"), "l7.routes[1].aggregate.calls[1].method", "upper-case"},
		{"a negative timeout", call("{name: b, pool: q, path: /b, timeout: -1s}"), "l7.routes[1].aggregate.calls[1].timeout", "negative"},
		{"two renames to one field", call("{name: b, pool: q, path: /b, rename: [{from: x, to: z}, {from: y, to: z}]}"), "l7.routes[1].aggregate.calls[1].rename[1].to", "two renames"},
		{"an empty select", call("{name: b, pool: q, path: /b, select: ['']}"), "l7.routes[1].aggregate.calls[1].select[0]", "empty"},
		{"an unknown merge", "    - {name: x, aggregate: {merge: deep, calls: [{name: a, pool: p, path: /a}]}}\n", "l7.routes[1].aggregate.merge", "named or object"},
		{"an unknown failure mode", "    - {name: x, aggregate: {on_partial_failure: ignore, calls: [{name: a, pool: p, path: /a}]}}\n", "l7.routes[1].aggregate.on_partial_failure", "fail or partial"},
		{"a pool beside aggregate", "    - {name: x, pool: p, aggregate: {calls: [{name: a, pool: p, path: /a}]}}\n", "l7.routes[1].pool", "has no pool"},
		{"a cache beside aggregate", "    - {name: x, cache: {}, aggregate: {calls: [{name: a, pool: p, path: /a}]}}\n", "l7.routes[1].cache", "has no cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e := refusedAt(t, "t.yaml", withRoute(tt.route), tt.wantPath, tt.wantMsg, false); e.File != "t.yaml" || e.Line == 0 {
				t.Errorf("no file:line: %+v", e)
			}
		})
	}
}

func TestAggregateDefaultsAndNoPool(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withRoute("    - {name: x, aggregate: {calls: [{name: a, pool: p, path: /a}, {name: b, pool: q, path: /b, method: POST, timeout: 1s}]}}\n")))
	if err != nil {
		t.Fatal(err)
	}
	a := c.L7.Routes[1].Aggregate
	if a.Merge != "named" || a.OnPartialFailure != "fail" {
		t.Errorf("defaults: %+v", a)
	}
	if a.Calls[0].Method != "GET" || a.Calls[0].Timeout.D() != 5*time.Second || a.Calls[1].Method != "POST" || a.Calls[1].Timeout.D() != time.Second {
		t.Errorf("call defaults: %+v", a.Calls)
	}
}
