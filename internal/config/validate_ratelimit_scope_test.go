package config

import (
	"strings"
	"testing"
)

func TestRateLimitScope(t *testing.T) {
	// A cluster without floating VIPs: enough for scope: cluster.
	withCluster := func(t *testing.T, route string) string {
		t.Helper()
		return withRoute(route) + "cluster:\n  key_file: " + gossipKeyFile(t) + "\n  bind: 127.0.0.1:7946\n"
	}
	t.Run("the default is local", func(t *testing.T) {
		c, err := Parse("t.yaml", []byte(withRoute("    - {name: x, pool: p, rate_limit: {requests: 1}}\n")))
		if err != nil {
			t.Fatal(err)
		}
		if s := c.L7.Routes[1].RateLimit.Scope; s != RateLimitScopeLocal {
			t.Fatalf("scope %q", s)
		}
	})
	t.Run("cluster with a cluster section is accepted", func(t *testing.T) {
		if _, err := Parse("t.yaml", []byte(withCluster(t, "    - {name: x, pool: p, rate_limit: {requests: 1, scope: cluster}}\n"))); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range []struct{ name, route, wantMsg string }{
		{"cluster without a cluster section is refused at the key", "    - name: x\n      pool: p\n      rate_limit:\n        requests: 1\n        scope: cluster\n", "needs a cluster section"},
		{"an unknown scope is refused", "    - name: x\n      pool: p\n      rate_limit:\n        requests: 1\n        scope: global\n", "use local or cluster"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(withRoute(tt.route)))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, e := range AsErrors(err) {
				// The scope key is the route's 5th line, after the 17
				// lines of withRoute's base config.
				if e.Path == "l7.routes[1].rate_limit.scope" && strings.Contains(e.Msg, tt.wantMsg) && e.Line == 22 {
					if !strings.HasPrefix(e.Error(), "t.yaml:") {
						t.Fatalf("error without file:line: %s", e.Error())
					}
					return
				}
			}
			t.Fatalf("no error at the scope key containing %q in:\n%v", tt.wantMsg, err)
		})
	}
}
