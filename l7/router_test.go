package l7

import (
	"net/http/httptest"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestTheMostSpecificRouteWins(t *testing.T) {
	routes := []config.Route{
		{Name: "catch-all", Pool: "p"},
		{Name: "api-prefix", Pool: "p", Match: config.Match{PathPrefix: "/api"}},
		{Name: "api-v1-prefix", Pool: "p", Match: config.Match{PathPrefix: "/api/v1/"}},
		{Name: "api-exact", Pool: "p", Match: config.Match{Path: "/api/health"}},
		{Name: "wild-host", Pool: "p", Match: config.Match{Hosts: []string{"*.example.com"}}},
		{Name: "exact-host", Pool: "p", Match: config.Match{Hosts: []string{"www.example.com"}}},
		{Name: "post-only", Pool: "p", Match: config.Match{Path: "/submit", Methods: []string{"POST"}}},
		{Name: "earlier-twin", Pool: "p", Match: config.Match{PathPrefix: "/twin"}},
		{Name: "later-twin", Pool: "p", Match: config.Match{PathPrefix: "/twin"}},
	}
	var compiled []*route
	for i, r := range routes {
		compiled = append(compiled, compileRoute(r, i, nil))
	}
	rt := newRouter(compiled)
	cases := []struct {
		name, method, host, path, want string
	}{
		{"anything else falls to the catch-all", "GET", "x", "/", "catch-all"},
		{"a prefix matches itself", "GET", "x", "/api", "api-prefix"},
		{"a prefix matches below itself", "GET", "x", "/api/orders", "api-prefix"},
		{"a prefix does not match a longer segment", "GET", "x", "/apix", "catch-all"},
		{"the longer prefix wins", "GET", "x", "/api/v1/orders", "api-v1-prefix"},
		{"an exact path beats every prefix", "GET", "x", "/api/health", "api-exact"},
		{"a wildcard host matches a subdomain", "GET", "a.example.com", "/api", "wild-host"},
		{"a wildcard host does not match the bare domain", "GET", "example.com", "/", "catch-all"},
		{"an exact host beats a wildcard", "GET", "www.example.com:8080", "/", "exact-host"},
		{"host matching ignores case and a trailing dot", "GET", "WWW.Example.COM.", "/", "exact-host"},
		{"a method-restricted route takes its method", "POST", "x", "/submit", "post-only"},
		{"other methods fall through to less specific routes", "GET", "x", "/submit", "catch-all"},
		{"equal routes go to the earlier one", "GET", "x", "/twin/a", "earlier-twin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, nil)
			req.Host = tc.host
			r, _ := rt.Match(req)
			if r == nil || r.name != tc.want {
				got := "<nil>"
				if r != nil {
					got = r.name
				}
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOnlyAWrongMethodGivesTheAllowList(t *testing.T) {
	rt := newRouter([]*route{
		compileRoute(config.Route{Name: "a", Match: config.Match{Path: "/x", Methods: []string{"POST", "PUT"}}}, 0, nil),
		compileRoute(config.Route{Name: "b", Match: config.Match{Path: "/x", Methods: []string{"DELETE"}}}, 1, nil),
	})
	r, allow := rt.Match(httptest.NewRequest("GET", "/x", nil))
	if r != nil || len(allow) != 3 || allow[0] != "DELETE" {
		t.Fatalf("route %v allow %v", r, allow)
	}
	r, allow = rt.Match(httptest.NewRequest("GET", "/y", nil))
	if r != nil || allow != nil {
		t.Fatalf("no match should give no allow list: %v %v", r, allow)
	}
}

func TestSmoothWeightedRoundRobinInterleaves(t *testing.T) {
	p, err := newPool(config.Pool{Name: "p", Algorithm: "round_robin", Endpoints: []config.Endpoint{
		{Address: "a:1", Weight: 5}, {Address: "b:1", Weight: 1}, {Address: "c:1", Weight: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var seq string
	for range 7 {
		seq += p.Pick().Address[:1]
	}
	if seq != "aabacaa" {
		t.Errorf("sequence %s, want aabacaa (no burst of a)", seq)
	}
}

func TestRandomRespectsWeights(t *testing.T) {
	p, _ := newPool(config.Pool{Name: "p", Algorithm: "random", Endpoints: []config.Endpoint{
		{Address: "a:1", Weight: 3}, {Address: "b:1", Weight: 1},
	}})
	n := map[string]int{}
	for range 40000 {
		n[p.Pick().Address]++
	}
	if share := float64(n["a:1"]) / 40000; share < 0.73 || share > 0.77 {
		t.Errorf("a got %.3f of picks, want 0.75±0.02", share)
	}
}

func TestAnEmptyPoolPicksNothing(t *testing.T) {
	p, _ := newPool(config.Pool{Name: "p", Algorithm: "round_robin"})
	if p.Pick() != nil {
		t.Fatal("picked from an empty pool")
	}
}
