package auth

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// FuzzBearerToken: no token a fuzzer writes verifies (it holds no key),
// and none panics the check.
func FuzzBearerToken(f *testing.F) {
	k := keys(f)
	good := sign(f, jose.ES256, k.p256, "p256", claims(nil), nil)
	f.Add(good)
	f.Add(rawToken(map[string]any{"alg": "none"}, claims(nil), nil))
	f.Add(rawToken(map[string]any{"alg": "HS256", "kid": "p256", "crit": []string{"x"}}, claims(nil), hmacSHA256([]byte("x"))))
	f.Add("..")
	j := baseJWT(config.JWTKey{JWK: publicJWK(f, k.p256, "p256", "")}, config.JWTKey{KID: "hs", Algorithm: "HS256", Secret: string(k.hs256)})
	j.Claims = []config.ClaimMatch{{Name: "scope", Contains: "orders:read"}}
	a := compileRoute(f, config.Route{JWT: j}, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		var res Result
		a.Check(r, time.Now(), &res)
		if res.Outcome == Allowed && tok != good {
			t.Fatalf("a fuzzed token was allowed: %q", tok)
		}
	})
}

// FuzzQueryKey: removing the key parameter keeps every other parameter
// as written.
func FuzzQueryKey(f *testing.F) {
	f.Add("a=1&api_key=x&b=2")
	f.Add("api%5Fkey=x&&=&%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		out := withoutQuery(raw, "api_key")
		if _, found := queryValue(out, "api_key"); found {
			t.Fatalf("%q → %q still has the key", raw, out)
		}
		for part := range strings.SplitSeq(raw, "&") {
			if part != "" && !strings.HasPrefix(part, "api_key=") && part != "api_key" && !strings.Contains(out, part) {
				if v, ok := queryValue(part, "api_key"); ok || v != "" {
					continue // an escaped spelling of the name
				}
				t.Fatalf("%q → %q lost %q", raw, out, part)
			}
		}
	})
}
