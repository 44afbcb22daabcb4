package config

import (
	"strings"
	"testing"
)

// withRoute appends a route (YAML lines at the list's indentation) to the
// minimal config, with a second pool "q" to point at.
func withRoute(route string) string {
	return strings.Replace(minimal, "  routes:\n", "    - name: q\n      endpoints:\n        - address: 127.0.0.1:9002\n  routes:\n", 1) + route
}

func TestRouteErrorsNameTheirKeyPath(t *testing.T) {
	tests := []struct {
		name, route, wantPath, wantMsg string
	}{
		{"two path kinds are refused", "    - {name: x, pool: p, match: {path: /a, path_regex: /b}}\n", "l7.routes[1].match", "only one of"},
		{"a bad path regex is refused", "    - {name: x, pool: p, match: {path_regex: '('}}\n", "l7.routes[1].match.path_regex", "missing closing )"},
		{"a template parameter must be a whole segment", "    - {name: x, pool: p, match: {path_template: '/a/x{id}'}}\n", "l7.routes[1].match.path_template", "whole segment"},
		{"a template parameter may not repeat", "    - {name: x, pool: p, match: {path_template: '/{id}/{id}'}}\n", "l7.routes[1].match.path_template", "appears twice"},
		{"a rest parameter must come last", "    - {name: x, pool: p, match: {path_template: '/{a...}/b'}}\n", "l7.routes[1].match.path_template", "last segment"},
		{"a header condition takes one kind", "    - {name: x, pool: p, match: {headers: [{name: A, value: b, absent: true}]}}\n", "l7.routes[1].match.headers[0]", "at most one"},
		{"a header regex must compile", "    - {name: x, pool: p, match: {headers: [{name: A, regex: '['}]}}\n", "l7.routes[1].match.headers[0].regex", "missing closing ]"},
		{"a query condition needs a name", "    - {name: x, pool: p, match: {query: [{value: b}]}}\n", "l7.routes[1].match.query[0].name", "needs a name"},
		{"versioning needs versions", "    - {name: x, pool: p, versioning: {default: '1'}}\n", "l7.routes[1].versioning.versions", "at least one"},
		{"a version pool must exist", "    - {name: x, pool: p, versioning: {versions: [{name: '1', pool: nope}]}}\n", "l7.routes[1].versioning.versions[0].pool", `no pool named "nope"`},
		{"a version is written without its v", "    - {name: x, pool: p, versioning: {versions: [{name: v1}]}}\n", "l7.routes[1].versioning.versions[0].name", "without a leading v"},
		{"the default must be a version", "    - {name: x, pool: p, versioning: {versions: [{name: '1'}], default: '2'}}\n", "l7.routes[1].versioning.default", "not one of"},
		{"an unknown source is refused", "    - {name: x, pool: p, versioning: {versions: [{name: '1'}], sources: [cookie]}}\n", "l7.routes[1].versioning.sources[0]", "header:NAME"},
		{"url versioning cannot follow an exact path", "    - {name: x, pool: p, match: {path: /a}, versioning: {versions: [{name: '1'}]}}\n", "l7.routes[1].versioning.sources", "cannot be used with path"},
		{"url versioning on a template needs {version}", "    - {name: x, pool: p, match: {path_template: '/{id}'}, versioning: {versions: [{name: '1'}]}}\n", "l7.routes[1].versioning.sources", "{version}"},
		{"stripping the version needs the url source", "    - {name: x, pool: p, versioning: {versions: [{name: '1'}], sources: ['header:X-API-Version'], strip_prefix: true}}\n", "l7.routes[1].versioning.strip_prefix", "url source"},
		{"a route needs a pool unless every version has one", "    - {name: x, versioning: {versions: [{name: '1', pool: p}, {name: '2'}]}}\n", "l7.routes[1].pool", "needs a pool"},
		{"path_regex and path_replacement go together", "    - {name: x, pool: p, rewrite: {path_regex: '^/a'}}\n", "l7.routes[1].rewrite", "together"},
		{"a replacement group must exist", "    - {name: x, pool: p, rewrite: {path_regex: '^/(a)', path_replacement: '/${name}'}}\n", "l7.routes[1].rewrite.path_replacement", "no such group"},
		{"$1x is caught as the group 1x", "    - {name: x, pool: p, rewrite: {path_regex: '^/(a)', path_replacement: '/$1x'}}\n", "l7.routes[1].rewrite.path_replacement", "$1x"},
		{"strip_prefix must be a path", "    - {name: x, pool: p, rewrite: {strip_prefix: api}}\n", "l7.routes[1].rewrite.strip_prefix", "must start with /"},
		{"an unknown placeholder is refused", "    - {name: x, pool: p, request_headers: {set: [{name: X-A, value: '{user}'}]}}\n", "l7.routes[1].request_headers.set[0].value", "unknown placeholder {user}"},
		{"a path placeholder needs the parameter", "    - {name: x, pool: p, match: {path_template: '/u/{id}'}, response_headers: {add: [{name: X-A, value: '{path.uid}'}]}}\n", "l7.routes[1].response_headers.add[0].value", `no path parameter "uid"`},
		{"an unclosed placeholder is refused", "    - {name: x, pool: p, rewrite: {host: '{host'}}\n", "l7.routes[1].rewrite.host", "not closed"},
		{"a hop-by-hop header cannot be set", "    - {name: x, pool: p, request_headers: {set: [{name: connection, value: close}]}}\n", "l7.routes[1].request_headers.set[0].name", "hop-by-hop"},
		{"a negative body limit is refused", "    - {name: x, pool: p, max_body_bytes: -1}\n", "l7.routes[1].max_body_bytes", "negative"},
		{"a header name must be a token", "    - {name: x, pool: p, request_headers: {remove: ['a b']}}\n", "l7.routes[1].request_headers.remove[0]", "not a header name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt(t, "t.yaml", withRoute(tt.route), tt.wantPath, tt.wantMsg, true)
		})
	}
}

func TestAFullRouteIsAcceptedWithDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withRoute(`    - name: api
      pool: p
      match:
        hosts: [api.example.com, "*.api.example.com"]
        path_prefix: /api
        methods: [GET, POST]
        headers: [{name: X-Env, value: canary}, {name: User-Agent, regex: ".*Mobile.*"}, {name: Cookie, absent: true}, {name: Authorization}]
        query: [{name: beta, value: "on"}, {name: debug}]
      versioning:
        versions: [{name: "1"}, {name: "2", pool: q}]
        default: "1"
        strip_prefix: true
      rewrite:
        strip_prefix: /api
        path_regex: ^/users/([0-9]+)$
        path_replacement: /u/${1}
        host: "{header.x-tenant}.internal"
      request_headers:
        set: [{name: X-Client, value: "{client_ip}"}, {name: X-Version, value: "v{version} {{literal}}"}]
        add: [{name: X-Trace, value: "{request_id}/{route}/{query.q}"}]
        remove: [X-Secret]
      response_headers:
        set: [{name: Cache-Control, value: no-store}]
    - name: users
      pool: q
      match: {path_template: "/{version}/users/{id}/{rest...}"}
      versioning: {versions: [{name: "3"}], sources: [url, "header:Accept-Version", media_type]}
      request_headers: {set: [{name: X-User, value: "{path.id}:{path.rest}"}]}
    - name: re
      pool: q
      match: {path_regex: "/img/(?P<name>[a-z]+)\\.png"}
      response_headers: {set: [{name: X-Img, value: "{path.name}"}]}
`)))
	if err != nil {
		t.Fatal(err)
	}
	v := c.L7.Routes[1].Versioning
	if len(v.Sources) != 1 || v.Sources[0] != "url" || v.Versions[0].Pool != "p" || v.Versions[1].Pool != "q" {
		t.Errorf("versioning defaults: %+v", v)
	}
}
