package auth

import (
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// BenchmarkJWTCheck is the authentication step of one request with a
// cached key (inline here; a remote set is read the same way, with one
// atomic load). "verify" is a token seen for the first time: parse, header
// checks, key lookup by kid, signature, claims; "cached" the same token
// again, as a client sends it until it expires: cache lookup and the time
// claims. The request is reused, as the proxy's is the server's; the
// claim header it sets is the one allocation of the forwarding.
func BenchmarkJWTCheck(b *testing.B) {
	for _, cached := range []bool{false, true} {
		mode := "verify"
		if cached {
			mode = "cached"
		}
		b.Run(mode, func(b *testing.B) { benchJWT(b, cached) })
	}
}

func benchJWT(b *testing.B, cached bool) {
	k := keys(b)
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		priv any
		key  config.JWTKey
	}{
		{"RS256", jose.RS256, k.rsa, config.JWTKey{KID: "k", Algorithm: "RS256", PEM: pemOf(b, &k.rsa.PublicKey)}},
		{"ES256", jose.ES256, k.p256, config.JWTKey{KID: "k", PEM: pemOf(b, &k.p256.PublicKey)}},
		{"EdDSA", jose.EdDSA, k.ed, config.JWTKey{KID: "k", PEM: pemOf(b, k.ed.Public())}},
		{"HS256", jose.HS256, k.hs256, config.JWTKey{KID: "k", Algorithm: "HS256", Secret: string(k.hs256)}},
	} {
		for _, claimsToo := range []bool{false, true} {
			name := tc.name
			j := baseJWT(tc.key)
			if claimsToo {
				name += "+scope+forward"
				j.Claims = []config.ClaimMatch{{Name: "scope", Contains: "orders:read"}}
				j.ForwardClaims = []config.ForwardClaim{{Claim: "sub", Header: "X-User"}}
			}
			b.Run(name, func(b *testing.B) {
				a := compileRoute(b, config.Route{JWT: j}, nil)
				if !cached {
					a.jwt.cache = nil
				}
				tok := "Bearer " + sign(b, tc.alg, tc.priv, "k", claims(nil), nil)
				r := httptest.NewRequest("GET", "http://api.test/orders", nil)
				r.Header["Authorization"] = []string{tok}
				b.ReportAllocs()
				for b.Loop() {
					var res Result
					a.Check(r, time.Now(), &res)
					if res.Outcome != Allowed {
						b.Fatal(res.Outcome, res.Err)
					}
				}
			})
		}
	}
}

// BenchmarkAPIKeyCheck is an API key lookup: one SHA-256 and a map read.
func BenchmarkAPIKeyCheck(b *testing.B) {
	a := compileRoute(b, config.Route{APIKeys: &config.APIKeys{Keys: []config.APIKey{{Consumer: "mobile", SHA256: hashOf("k-mobile-123")}}, Forward: true}}, nil)
	r := httptest.NewRequest("GET", "http://api.test/orders", nil)
	r.Header.Set("X-API-Key", "k-mobile-123")
	b.ReportAllocs()
	for b.Loop() {
		var res Result
		a.Check(r, time.Now(), &res)
		if res.Outcome != Allowed {
			b.Fatal(res.Outcome)
		}
	}
}
