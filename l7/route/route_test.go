package route

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// req builds a request: "GET http://host/path?q" plus headers as "Name: value".
func req(method, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	return r
}

type want struct {
	route    string // "" = no route
	pool     string
	version  string
	allow    []string
	versions []string // a version refusal
	params   map[string]string
}

type matchCase struct {
	name   string
	routes []config.Route
	req    *http.Request
	want   want
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.routes {
				if tc.routes[i].Pool == "" {
					tc.routes[i].Pool = "pool-" + tc.routes[i].Name
				}
			}
			tab, err := Compile(tc.routes, "web")
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			tab.Match(tc.req, &res)
			got := ""
			if res.Route != nil {
				got = res.Route.Name
			}
			if got != tc.want.route {
				t.Fatalf("route %q, want %q (allow %v, versions %v)", got, tc.want.route, res.Allow, res.Versions)
			}
			wantPool := tc.want.pool
			if wantPool == "" && tc.want.route != "" {
				wantPool = "pool-" + tc.want.route
			}
			if res.Pool != wantPool {
				t.Errorf("pool %q, want %q", res.Pool, wantPool)
			}
			if res.Version != tc.want.version {
				t.Errorf("version %q, want %q", res.Version, tc.want.version)
			}
			if !slices.Equal(res.Allow, tc.want.allow) {
				t.Errorf("allow %v, want %v", res.Allow, tc.want.allow)
			}
			if !slices.Equal(res.Versions, tc.want.versions) {
				t.Errorf("versions %v, want %v", res.Versions, tc.want.versions)
			}
			for k, v := range tc.want.params {
				if got := res.Param(k); got != v {
					t.Errorf("param %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func r(name string, m config.Match) config.Route { return config.Route{Name: name, Match: m} }

func TestEachMatcher(t *testing.T) {
	hosts := []config.Route{r("exact", config.Match{Hosts: []string{"www.example.com"}}), r("wild", config.Match{Hosts: []string{"*.example.com"}})}
	runMatchCases(t, []matchCase{
		{"an exact host matches whatever its case and port", hosts, req("GET", "http://WWW.Example.com:8080/"), want{route: "exact"}},
		{"a wildcard host matches a subdomain", hosts, req("GET", "http://api.example.com/"), want{route: "wild"}},
		{"a wildcard host matches a deeper subdomain", hosts, req("GET", "http://a.b.example.com/"), want{route: "wild"}},
		{"a wildcard host does not match the bare domain", hosts, req("GET", "http://example.com/"), want{}},
		{"a host with a trailing dot is the same host", hosts, req("GET", "http://www.example.com./"), want{route: "exact"}},
		{"an exact path matches only itself", []config.Route{r("x", config.Match{Path: "/health"})}, req("GET", "/health/"), want{}},
		{"an exact path matches", []config.Route{r("x", config.Match{Path: "/health"})}, req("GET", "/health"), want{route: "x"}},
		{"a prefix matches itself", []config.Route{r("api", config.Match{PathPrefix: "/api"})}, req("GET", "/api"), want{route: "api"}},
		{"a prefix matches below itself", []config.Route{r("api", config.Match{PathPrefix: "/api/"})}, req("GET", "/api/users"), want{route: "api"}},
		{"a prefix does not match inside a segment", []config.Route{r("api", config.Match{PathPrefix: "/api"})}, req("GET", "/apix"), want{}},
		{"a regex matches the whole path", []config.Route{r("re", config.Match{PathRegex: `/img/[0-9]+\.png`})}, req("GET", "/img/12.png"), want{route: "re"}},
		{"a regex is anchored at both ends", []config.Route{r("re", config.Match{PathRegex: `/img/[0-9]+`})}, req("GET", "/x/img/12.png"), want{}},
		{"a regex's named groups are path parameters", []config.Route{r("re", config.Match{PathRegex: `/u/(?P<id>[0-9]+)/(?P<tab>[a-z]+)`})}, req("GET", "/u/7/posts"), want{route: "re", params: map[string]string{"id": "7", "tab": "posts"}}},
		{"a template captures named parameters", []config.Route{r("t", config.Match{PathTemplate: "/users/{id}/orders/{order}"})}, req("GET", "/users/42/orders/abc"), want{route: "t", params: map[string]string{"id": "42", "order": "abc"}}},
		{"a template parameter does not match an empty segment", []config.Route{r("t", config.Match{PathTemplate: "/users/{id}/orders"})}, req("GET", "/users//orders"), want{}},
		{"a template does not match a longer path", []config.Route{r("t", config.Match{PathTemplate: "/users/{id}"})}, req("GET", "/users/42/x"), want{}},
		{"a template does not match a shorter path", []config.Route{r("t", config.Match{PathTemplate: "/users/{id}"})}, req("GET", "/users"), want{}},
		{"a rest parameter takes the remainder of the path", []config.Route{r("t", config.Match{PathTemplate: "/files/{rest...}"})}, req("GET", "/files/a/b.txt"), want{route: "t", params: map[string]string{"rest": "a/b.txt"}}},
		{"a template may start with a parameter", []config.Route{r("t", config.Match{PathTemplate: "/{tenant}/home"})}, req("GET", "/acme/home"), want{route: "t", params: map[string]string{"tenant": "acme"}}},
		{"a method list takes its methods", []config.Route{r("m", config.Match{Methods: []string{"GET", "HEAD"}})}, req("HEAD", "/"), want{route: "m"}},
		{"a header with a value matches that value", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "x-env", Value: "canary"}}})}, req("GET", "/", "X-Env: canary"), want{route: "h"}},
		{"a header with a value does not match another value", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "x-env", Value: "canary"}}})}, req("GET", "/", "X-Env: prod"), want{}},
		{"a header sent twice matches on either value", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "x-env", Value: "canary"}}})}, req("GET", "/", "X-Env: prod", "X-Env: canary"), want{route: "h"}},
		{"a header regex matches the whole value", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "User-Agent", Regex: ".*Mobile.*"}}})}, req("GET", "/", "User-Agent: x Mobile y"), want{route: "h"}},
		{"a header that must be present matches any value", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "Authorization"}}})}, req("GET", "/", "Authorization: x"), want{route: "h"}},
		{"a header that must be present misses without it", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "Authorization"}}})}, req("GET", "/"), want{}},
		{"a header that must be absent misses when it is sent", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "Cookie", Absent: true}}})}, req("GET", "/", "Cookie: a=b"), want{}},
		{"a header that must be absent matches without it", []config.Route{r("h", config.Match{Headers: []config.HeaderMatch{{Name: "Cookie", Absent: true}}})}, req("GET", "/"), want{route: "h"}},
		{"a query parameter with a value matches that value", []config.Route{r("q", config.Match{Query: []config.QueryMatch{{Name: "beta", Value: "on"}}})}, req("GET", "/?a=1&beta=on"), want{route: "q"}},
		{"a query parameter value is compared decoded", []config.Route{r("q", config.Match{Query: []config.QueryMatch{{Name: "q", Value: "a b"}}})}, req("GET", "/?q=a+b"), want{route: "q"}},
		{"a query parameter with a value misses another value", []config.Route{r("q", config.Match{Query: []config.QueryMatch{{Name: "beta", Value: "on"}}})}, req("GET", "/?beta=off"), want{}},
		{"a query parameter that must be present matches without a value", []config.Route{r("q", config.Match{Query: []config.QueryMatch{{Name: "debug"}}})}, req("GET", "/?debug"), want{route: "q"}},
		{"a query parameter that must be present misses without it", []config.Route{r("q", config.Match{Query: []config.QueryMatch{{Name: "debug"}}})}, req("GET", "/?debugx=1"), want{}},
		{"an empty match takes everything", []config.Route{r("all", config.Match{})}, req("DELETE", "http://any.host/x/y"), want{route: "all"}},
		{"a path with dot segments is matched cleaned", []config.Route{r("public", config.Match{PathPrefix: "/public"}), r("admin", config.Match{PathPrefix: "/admin"})}, req("GET", "/public/../admin/x"), want{route: "admin"}},
	})
}

func TestThePriorityOrder(t *testing.T) {
	runMatchCases(t, []matchCase{
		{"an exact host beats a wildcard written first", []config.Route{r("wild", config.Match{Hosts: []string{"*.example.com"}}), r("exact", config.Match{Hosts: []string{"www.example.com"}})}, req("GET", "http://www.example.com/"), want{route: "exact"}},
		{"a longer wildcard beats a shorter one", []config.Route{r("short", config.Match{Hosts: []string{"*.example.com"}}), r("long", config.Match{Hosts: []string{"*.eu.example.com"}})}, req("GET", "http://a.eu.example.com/"), want{route: "long"}},
		{"a wildcard beats a route without hosts even with a better path", []config.Route{r("nohost", config.Match{Path: "/x"}), r("wild", config.Match{Hosts: []string{"*.example.com"}})}, req("GET", "http://a.example.com/x"), want{route: "wild"}},
		{"the host group falls through to routes without hosts", []config.Route{r("host", config.Match{Hosts: []string{"a.com"}, Path: "/only"}), r("nohost", config.Match{PathPrefix: "/"})}, req("GET", "http://a.com/other"), want{route: "nohost"}},
		{"an exact path beats a template", []config.Route{r("tmpl", config.Match{PathTemplate: "/users/{id}"}), r("exact", config.Match{Path: "/users/me"})}, req("GET", "/users/me"), want{route: "exact"}},
		{"a template beats a prefix", []config.Route{r("prefix", config.Match{PathPrefix: "/users/x"}), r("tmpl", config.Match{PathTemplate: "/users/{id}"})}, req("GET", "/users/x"), want{route: "tmpl"}},
		{"a template with more literal characters wins", []config.Route{r("loose", config.Match{PathTemplate: "/{a}/{b}"}), r("tight", config.Match{PathTemplate: "/users/{b}"})}, req("GET", "/users/9"), want{route: "tight"}},
		{"a prefix beats a regex", []config.Route{r("re", config.Match{PathRegex: "/api/.*"}), r("prefix", config.Match{PathPrefix: "/api"})}, req("GET", "/api/x"), want{route: "prefix"}},
		{"a regex beats no path", []config.Route{r("none", config.Match{}), r("re", config.Match{PathRegex: "/a.*"})}, req("GET", "/abc"), want{route: "re"}},
		{"a longer prefix beats a shorter one", []config.Route{r("short", config.Match{PathPrefix: "/api"}), r("long", config.Match{PathPrefix: "/api/v1"})}, req("GET", "/api/v1/x"), want{route: "long"}},
		{"the shorter prefix takes what the longer does not", []config.Route{r("short", config.Match{PathPrefix: "/api"}), r("long", config.Match{PathPrefix: "/api/v1"})}, req("GET", "/api/v2/x"), want{route: "short"}},
		{"more header and query conditions win", []config.Route{r("one", config.Match{PathPrefix: "/", Headers: []config.HeaderMatch{{Name: "A"}}}), r("two", config.Match{PathPrefix: "/", Headers: []config.HeaderMatch{{Name: "A"}}, Query: []config.QueryMatch{{Name: "b"}}})}, req("GET", "/?b", "A: 1"), want{route: "two"}},
		{"a route with methods beats one without", []config.Route{r("any", config.Match{Path: "/x"}), r("get", config.Match{Path: "/x", Methods: []string{"GET"}})}, req("GET", "/x"), want{route: "get"}},
		{"the route written first wins a tie", []config.Route{r("first", config.Match{PathPrefix: "/t"}), r("second", config.Match{PathPrefix: "/t"})}, req("GET", "/t"), want{route: "first"}},
		{"a route listing several hosts ranks by the one that matched", []config.Route{r("multi", config.Match{Hosts: []string{"*.example.com", "a.example.com"}}), r("wild", config.Match{Hosts: []string{"*.example.com"}, Path: "/x"})}, req("GET", "http://a.example.com/x"), want{route: "multi"}},
	})
}

func TestWrongMethodsAnswer405WithAllow(t *testing.T) {
	two := []config.Route{
		r("a", config.Match{Path: "/x", Methods: []string{"PUT", "POST"}}),
		r("b", config.Match{Path: "/x", Methods: []string{"DELETE", "POST"}}),
	}
	runMatchCases(t, []matchCase{
		{"only the method was wrong: Allow lists every method that would match, sorted, once", two, req("GET", "/x"), want{allow: []string{"DELETE", "POST", "PUT"}}},
		{"the path was wrong too: plain 404", two, req("GET", "/y"), want{}},
		{"a method mismatch falls through to a route without methods", append(two, r("any", config.Match{PathPrefix: "/"})), req("GET", "/x"), want{route: "any"}},
	})
}

func TestAPIVersioning(t *testing.T) {
	url := func(def string, strip bool) []config.Route {
		return []config.Route{{Name: "api", Pool: "legacy", Match: config.Match{PathPrefix: "/api"}, Versioning: &config.Versioning{
			Versions: []config.APIVersion{{Name: "1", Pool: "a"}, {Name: "2", Pool: "b"}, {Name: "beta"}}, Default: def, StripPrefix: strip,
		}}}
	}
	headers := func(sources ...string) []config.Route {
		return []config.Route{{Name: "api", Pool: "legacy", Match: config.Match{PathPrefix: "/api"}, Versioning: &config.Versioning{
			Versions: []config.APIVersion{{Name: "1", Pool: "a"}, {Name: "2", Pool: "b"}}, Sources: sources, Default: "1",
		}}}
	}
	versions := []string{"1", "2", "beta"}
	runMatchCases(t, []matchCase{
		{"/api/v1 goes to version 1's pool", url("", false), req("GET", "/api/v1/users"), want{route: "api", pool: "a", version: "1"}},
		{"/api/v2 goes to version 2's pool", url("", false), req("GET", "/api/v2"), want{route: "api", pool: "b", version: "2"}},
		{"a version without a pool uses the route's", url("", false), req("GET", "/api/vbeta/x"), want{route: "api", pool: "legacy", version: "beta"}},
		{"an unknown URL version is refused with the supported versions", url("1", false), req("GET", "/api/v9/users"), want{versions: versions}},
		{"a segment that is no version takes the default", url("2", false), req("GET", "/api/users"), want{route: "api", pool: "b", version: "2"}},
		{"no version and no default is refused", url("", false), req("GET", "/api/users"), want{versions: versions}},
		{"a route without a path reads the first segment", []config.Route{{Name: "root", Pool: "p", Versioning: &config.Versioning{Versions: []config.APIVersion{{Name: "1", Pool: "a"}, {Name: "2", Pool: "b"}}}}}, req("GET", "/v2/x"), want{route: "root", pool: "b", version: "2"}},
		{"a template reads its {version} parameter", []config.Route{{Name: "t", Pool: "p", Match: config.Match{PathTemplate: "/{version}/users/{id}"}, Versioning: &config.Versioning{Versions: []config.APIVersion{{Name: "1", Pool: "a"}, {Name: "2", Pool: "b"}}}}}, req("GET", "/v2/users/7"), want{route: "t", pool: "b", version: "2", params: map[string]string{"id": "7"}}},
		{"Accept-Version names the version", headers("header:Accept-Version"), req("GET", "/api/x", "Accept-Version: 2"), want{route: "api", pool: "b", version: "2"}},
		{"X-API-Version names the version, with or without a v", headers("header:X-API-Version"), req("GET", "/api/x", "X-API-Version: v2"), want{route: "api", pool: "b", version: "2"}},
		{"a media-type parameter names the version", headers("media_type"), req("GET", "/api/x", "Accept: text/html, application/vnd.acme+json; charset=utf-8; version=2"), want{route: "api", pool: "b", version: "2"}},
		{"a quoted media-type parameter names the version", headers("media_type"), req("GET", "/api/x", `Accept: application/vnd.acme+json;version="2"`), want{route: "api", pool: "b", version: "2"}},
		{"an unknown header version is refused", headers("header:Accept-Version"), req("GET", "/api/x", "Accept-Version: 3"), want{versions: []string{"1", "2"}}},
		{"no header takes the default", headers("header:Accept-Version", "media_type"), req("GET", "/api/x", "Accept: */*"), want{route: "api", pool: "a", version: "1"}},
		{"the first source that names a version decides", headers("header:X-API-Version", "url"), req("GET", "/api/v1/x", "X-API-Version: 2"), want{route: "api", pool: "b", version: "2"}},
		{"a later source is read when the first names nothing", headers("header:X-API-Version", "url"), req("GET", "/api/v2/x"), want{route: "api", pool: "b", version: "2"}},
	})
}

func TestAVersionRefusalNamesWhatTheCoreNeeds(t *testing.T) {
	tab, err := Compile([]config.Route{{Name: "api", Pool: "p", Match: config.Match{PathPrefix: "/api"}, Versioning: &config.Versioning{
		Versions: []config.APIVersion{{Name: "1"}}, Sources: []string{"header:X-API-Version"}}}}, "web")
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	tab.Match(req("GET", "/api/x", "X-API-Version: 7"), &res)
	if res.Route != nil || res.RequestedVersion != "7" || res.VersionRoute == nil || res.VersionRoute.Name != "api" || len(res.Allow) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestRoutesAreCompiledPerListener(t *testing.T) {
	routes := []config.Route{
		{Name: "admin", Pool: "p", Listeners: []string{"internal"}},
		{Name: "all", Pool: "p"},
	}
	for listener, want := range map[string][]string{"internal": {"admin", "all"}, "web": {"all"}} {
		tab, err := Compile(routes, listener)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, rt := range tab.Routes() {
			names = append(names, rt.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("listener %s: %v, want %v", listener, names, want)
		}
	}
}

func TestCompileNamesTheRouteInErrors(t *testing.T) {
	_, err := Compile([]config.Route{{Name: "bad", Pool: "p", Match: config.Match{PathRegex: "("}}}, "web")
	if err == nil || !strings.Contains(err.Error(), `route "bad"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRewrites(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	cases := []struct {
		name    string
		route   config.Route
		req     *http.Request
		path    string
		host    string
		headers map[string][]string // nil value: must be absent
	}{
		{
			name:  "strip_prefix removes the prefix on a segment boundary",
			route: config.Route{Match: config.Match{PathPrefix: "/api"}, Rewrite: &config.Rewrite{StripPrefix: "/api"}},
			req:   req("GET", "/api/users?x=1"), path: "/users",
		},
		{
			name:  "strip_prefix of the whole path leaves /",
			route: config.Route{Match: config.Match{PathPrefix: "/api"}, Rewrite: &config.Rewrite{StripPrefix: "/api/"}},
			req:   req("GET", "/api"), path: "/",
		},
		{
			name:  "a regex replacement uses numbered and named groups",
			route: config.Route{Match: config.Match{PathPrefix: "/old"}, Rewrite: &config.Rewrite{PathRegex: `^/old/(?P<kind>[a-z]+)/([0-9]+)$`, PathReplacement: "/new/${kind}/item-$2"}},
			req:   req("GET", "/old/books/42"), path: "/new/books/item-42",
		},
		{
			name:  "a regex replacement that drops the slash still yields an absolute path",
			route: config.Route{Rewrite: &config.Rewrite{PathRegex: `^/`, PathReplacement: ""}},
			req:   req("GET", "/x"), path: "/x",
		},
		{
			name: "the version segment is stripped before strip_prefix",
			route: config.Route{Match: config.Match{PathPrefix: "/api"}, Rewrite: &config.Rewrite{StripPrefix: "/api"},
				Versioning: &config.Versioning{Versions: []config.APIVersion{{Name: "2"}}, StripPrefix: true}},
			req: req("GET", "/api/v2/users"), path: "/users",
		},
		{
			name:  "a cleaned path is sent upstream cleaned",
			route: config.Route{Match: config.Match{PathPrefix: "/a"}},
			req:   req("GET", "/a/b/../c"), path: "/a/c",
		},
		{
			name:  "the host is rewritten from a template",
			route: config.Route{Match: config.Match{PathTemplate: "/t/{tenant}/x"}, Rewrite: &config.Rewrite{Host: "{path.tenant}.internal"}},
			req:   req("GET", "http://public.example.com/t/acme/x"), path: "/t/acme/x", host: "acme.internal",
		},
		{
			name: "request headers are removed, set and added with templates",
			route: config.Route{Name: "users", Match: config.Match{PathTemplate: "/users/{id}"},
				Versioning: &config.Versioning{Versions: []config.APIVersion{{Name: "3"}}, Sources: []string{"header:Accept-Version"}},
				RequestHeaders: &config.HeaderOps{
					Remove: []string{"x-secret"},
					Set: []config.HeaderValue{
						{Name: "X-User", Value: "user-{path.id}"},
						{Name: "X-Client", Value: "{client_ip}"},
						{Name: "X-Where", Value: "{host}{path}?q={query.q}"},
						{Name: "X-Meta", Value: "v={version} r={route} id={request_id} ua={header.user-agent} {{lit}}"},
					},
					Add: []config.HeaderValue{{Name: "X-Tag", Value: "b"}},
				}},
			req:  req("GET", "http://Api.Example.com:8443/users/42?q=a%20b", "X-Secret: s", "Accept-Version: 3", "X-Request-Id: rid-1", "User-Agent: ua/1", "X-Tag: a"),
			path: "/users/42",
			headers: map[string][]string{
				"X-Secret": nil, "X-User": {"user-42"}, "X-Client": {"192.0.2.7"}, "X-Where": {"api.example.com/users/42?q=a b"},
				"X-Meta": {"v=3 r=users id=rid-1 ua=ua/1 {lit}"}, "X-Tag": {"a", "b"},
			},
		},
		{
			name:  "a templated value cannot inject a header line",
			route: config.Route{RequestHeaders: &config.HeaderOps{Set: []config.HeaderValue{{Name: "X-Q", Value: "{query.q}"}}}},
			req:   req("GET", "/?q=a%0d%0aEvil:%201"), path: "/",
			headers: map[string][]string{"X-Q": {"aEvil: 1"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.route.Name == "" {
				tc.route.Name = "r"
			}
			tc.route.Pool = "p"
			tab, err := Compile([]config.Route{tc.route}, "web")
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			tab.Match(tc.req, &res)
			if res.Route == nil {
				t.Fatalf("no match: %+v", res)
			}
			out := tc.req.Clone(tc.req.Context())
			res.Route.RewriteRequest(out, tc.req, &res, ip)
			if out.URL.Path != tc.path {
				t.Errorf("path %q, want %q", out.URL.Path, tc.path)
			}
			if tc.host != "" && out.Host != tc.host {
				t.Errorf("host %q, want %q", out.Host, tc.host)
			}
			for k, v := range tc.headers {
				if got := out.Header[k]; !slices.Equal(got, v) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.req.URL.Path == out.URL.Path && tc.req.URL != out.URL && tc.path != tc.req.URL.Path {
				t.Error("the incoming request was changed")
			}
		})
	}
}

func TestResponseHeadersAreRewritten(t *testing.T) {
	tab, err := Compile([]config.Route{{Name: "r", Pool: "p", Match: config.Match{PathTemplate: "/{id}"}, ResponseHeaders: &config.HeaderOps{
		Remove: []string{"Server"}, Set: []config.HeaderValue{{Name: "X-Id", Value: "{path.id}"}}, Add: []config.HeaderValue{{Name: "Vary", Value: "Accept-Version"}},
	}}}, "web")
	if err != nil {
		t.Fatal(err)
	}
	in := req("GET", "/9")
	var res Result
	tab.Match(in, &res)
	h := http.Header{"Server": {"x"}, "Vary": {"Accept"}}
	res.Route.RewriteResponse(h, in, &res, netip.Addr{})
	if h.Get("Server") != "" || h.Get("X-Id") != "9" || !slices.Equal(h["Vary"], []string{"Accept", "Accept-Version"}) {
		t.Fatalf("%v", h)
	}
}

func staticTable(tb testing.TB, hosts, prefixes int) *Table {
	tb.Helper()
	var routes []config.Route
	for h := range hosts {
		for p := range prefixes {
			routes = append(routes, config.Route{
				Name: fmt.Sprintf("r%d-%d", h, p), Pool: "p",
				Match: config.Match{Hosts: []string{fmt.Sprintf("svc%d.example.com", h)}, PathPrefix: fmt.Sprintf("/api%d", p)},
			})
		}
	}
	routes = append(routes,
		config.Route{Name: "wild", Pool: "p", Match: config.Match{Hosts: []string{"*.example.org"}, PathPrefix: "/x"}},
		config.Route{Name: "users", Pool: "p", Match: config.Match{PathTemplate: "/users/{id}"}},
		config.Route{Name: "fallback", Pool: "p"},
	)
	tab, err := Compile(routes, "web")
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

func TestMatchDoesNotAllocateForStaticRoutes(t *testing.T) {
	tab := staticTable(t, 10, 10)
	for _, target := range []string{"http://svc3.example.com/api7/x", "http://a.example.org/x/y", "http://other/users/7", "http://svc3.example.com/none"} {
		r := req("GET", target)
		var res Result
		tab.Match(r, &res)
		if res.Route == nil {
			t.Fatalf("%s: no match", target)
		}
		if n := testing.AllocsPerRun(100, func() { tab.Match(r, &res) }); n != 0 {
			t.Errorf("%s: %v allocations per Match", target, n)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	tab := staticTable(b, 100, 10) // 1003 routes
	for _, bc := range []struct{ name, target string }{
		{"exact-host-prefix", "http://svc57.example.com/api7/users"},
		{"wildcard-host", "http://a.b.example.org/x/1"},
		{"template-fallthrough", "http://unknown.example.net/users/42"},
		{"miss-to-catch-all", "http://svc57.example.com/other"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := req("GET", bc.target)
			var res Result
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(r, &res)
			}
			if res.Route == nil {
				b.Fatal("no match")
			}
		})
	}
}

// BenchmarkLinearScan is the baseline the index is measured against: the
// same 1003 routes tried one by one in priority order.
func BenchmarkLinearScan(b *testing.B) {
	tab := staticTable(b, 100, 10)
	var all []*Route
	for _, g := range tab.exact {
		for _, es := range g.bySeg {
			for _, e := range es {
				all = append(all, e.rt)
			}
		}
	}
	r := req("GET", "http://svc57.example.com/api7/users")
	host := hostOnly(r.Host)
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		for _, rt := range all {
			if slices.Contains(rt.hosts, host) && res.try(rt, r, r.URL.Path) {
				break
			}
		}
	}
}

func FuzzMatchAndRewrite(f *testing.F) {
	routes := []config.Route{
		{Name: "api", Pool: "p", Match: config.Match{PathPrefix: "/api"}, Versioning: &config.Versioning{Versions: []config.APIVersion{{Name: "1"}, {Name: "2"}}, Sources: []string{"header:X-API-Version", "url", "media_type"}, Default: "1", StripPrefix: true},
			Rewrite: &config.Rewrite{StripPrefix: "/api", Host: "{header.x-h}"}},
		{Name: "t", Pool: "p", Match: config.Match{PathTemplate: "/u/{id}/{rest...}"}, RequestHeaders: &config.HeaderOps{Set: []config.HeaderValue{{Name: "X-A", Value: "{path.id}{path.rest}{query.q}{host}"}}}},
		{Name: "re", Pool: "p", Match: config.Match{PathRegex: `/r/(?P<x>[^/]*)(/.*)?`}, Rewrite: &config.Rewrite{PathRegex: `^/r/([^/]*)`, PathReplacement: "$1"}},
		{Name: "w", Pool: "p", Match: config.Match{Hosts: []string{"*.example.com"}, Methods: []string{"POST"}}},
		{Name: "all", Pool: "p", Match: config.Match{Query: []config.QueryMatch{{Name: "q"}}}, Rewrite: &config.Rewrite{PathRegex: ".*", PathReplacement: "x"}},
	}
	tab, err := Compile(routes, "web")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "a.example.com", "/api/v2/x", "q=1", "2", "application/json; version=1")
	f.Add("POST", "[::1]:80", "/u/1/2/3", "", "", "")
	f.Add("GET", "x", "/r//../..", "q", "v", ";version=")
	f.Fuzz(func(t *testing.T, method, host, p, rawQuery, hv, accept string) {
		in := &http.Request{Method: method, Host: host, URL: &url.URL{Path: p, RawQuery: rawQuery}, Header: http.Header{"X-Api-Version": {hv}, "Accept": {accept}, "X-H": {hv}}}
		var res Result
		tab.Match(in, &res)
		if res.Route == nil {
			return
		}
		out := in.Clone(in.Context())
		res.Route.RewriteRequest(out, in, &res, netip.Addr{})
		if !strings.HasPrefix(out.URL.Path, "/") {
			t.Fatalf("path %q from %q", out.URL.Path, p)
		}
	})
}
