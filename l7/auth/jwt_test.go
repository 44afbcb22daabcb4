package auth

import (
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// matrixRoute has one key per algorithm, each with its own kid: the RSA
// key six times (RS256 … PS512), each pinned to one algorithm.
func matrixRoute(t testing.TB) (*Authenticator, map[jose.SignatureAlgorithm]signer) {
	k := keys(t)
	rsaPEM := pemOf(t, &k.rsa.PublicKey)
	var cfg []config.JWTKey
	signers := map[jose.SignatureAlgorithm]signer{}
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		cfg = append(cfg, config.JWTKey{KID: "rsa-" + alg, Algorithm: alg, PEM: rsaPEM})
		signers[jose.SignatureAlgorithm(alg)] = signer{kid: "rsa-" + alg, good: k.rsa, bad: k.rsa2}
	}
	cfg = append(cfg,
		config.JWTKey{JWK: publicJWK(t, k.p256, "p256", "")},
		config.JWTKey{KID: "p384", PEM: pemOf(t, &k.p384.PublicKey)},
		config.JWTKey{JWK: publicJWK(t, k.p521, "p521", "ES512")},
		config.JWTKey{KID: "ed", PEM: pemOf(t, k.ed.Public())},
		config.JWTKey{KID: "hs256", Algorithm: "HS256", Secret: string(k.hs256)},
		config.JWTKey{KID: "hs384", Algorithm: "HS384", Secret: string(k.hs384)},
		config.JWTKey{KID: "hs512", JWK: publicJWK(t, k.hs512, "hs512", "HS512")},
	)
	signers[jose.ES256] = signer{kid: "p256", good: k.p256, bad: k.p256b}
	p384b, p521b := mustEC(t, "p384"), mustEC(t, "p521")
	signers[jose.ES384] = signer{kid: "p384", good: k.p384, bad: p384b}
	signers[jose.ES512] = signer{kid: "p521", good: k.p521, bad: p521b}
	signers[jose.EdDSA] = signer{kid: "ed", good: k.ed, bad: k.edOther}
	signers[jose.HS256] = signer{kid: "hs256", good: k.hs256, bad: randBytes(32)}
	signers[jose.HS384] = signer{kid: "hs384", good: k.hs384, bad: randBytes(48)}
	signers[jose.HS512] = signer{kid: "hs512", good: k.hs512, bad: randBytes(64)}
	j := baseJWT(cfg...)
	return compileRoute(t, config.Route{JWT: j}, nil), signers
}

type signer struct {
	kid       string
	good, bad any
}

func mustEC(t testing.TB, curve string) any {
	k := keys(t)
	if curve == "p384" {
		return otherEC(k.p384)
	}
	return otherEC(k.p521)
}

func TestEveryAlgorithmVerifiesItsOwnKeyAndNoOther(t *testing.T) {
	a, signers := matrixRoute(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.HS256, jose.HS384, jose.HS512} {
		s := signers[alg]
		t.Run(string(alg)+" with the configured key is allowed", func(t *testing.T) {
			res, _ := check(a, sign(t, alg, s.good, s.kid, claims(nil), nil))
			if res.Outcome != Allowed || res.Consumer != "user-42" {
				t.Fatalf("outcome %v err %v consumer %q", res.Outcome, res.Err, res.Consumer)
			}
		})
		t.Run(string(alg)+" with another key is invalid", func(t *testing.T) {
			res, _ := check(a, sign(t, alg, s.bad, s.kid, claims(nil), nil))
			if res.Outcome != Invalid || !errors.Is(res.Err, ErrSignature) {
				t.Fatalf("outcome %v err %v", res.Outcome, res.Err)
			}
		})
		t.Run(string(alg)+" without a kid is tried against every key of its algorithm", func(t *testing.T) {
			res, _ := check(a, sign(t, alg, s.good, "", claims(nil), nil))
			if res.Outcome != Allowed {
				t.Fatalf("outcome %v err %v", res.Outcome, res.Err)
			}
		})
	}
	t.Run("an RS256 token under the RS384 key's kid is refused: the key pins the algorithm", func(t *testing.T) {
		res, _ := check(a, sign(t, jose.RS256, keys(t).rsa, "rsa-RS384", claims(nil), nil))
		if res.Outcome != Invalid || !errors.Is(res.Err, ErrUnknownKey) {
			t.Fatalf("outcome %v err %v", res.Outcome, res.Err)
		}
	})
}

func TestHostileTokensAreInvalid(t *testing.T) {
	a, signers := matrixRoute(t)
	k := keys(t)
	rsaPEM := []byte(pemOf(t, &k.rsa.PublicKey))
	good := func(mod map[string]any) string { return sign(t, jose.ES256, k.p256, "p256", claims(mod), nil) }
	withOpts := func(o *jose.SignerOptions) string { return sign(t, jose.ES256, k.p256, "p256", claims(nil), o) }
	now := time.Now().Unix()
	tests := []struct {
		name    string
		token   string
		want    Outcome
		wantErr error
	}{
		{"alg none is refused", rawToken(map[string]any{"alg": "none", "kid": "rsa-RS256"}, claims(nil), nil), Invalid, ErrMalformed},
		{"alg None in another case is refused", rawToken(map[string]any{"alg": "None"}, claims(nil), nil), Invalid, ErrMalformed},
		{"HS256 keyed with the RSA public key (PEM) under the RSA kid is refused",
			rawToken(map[string]any{"alg": "HS256", "kid": "rsa-RS256", "typ": "JWT"}, claims(nil), hmacSHA256(rsaPEM)), Invalid, ErrUnknownKey},
		{"HS256 keyed with the RSA public key without a kid is refused",
			rawToken(map[string]any{"alg": "HS256", "typ": "JWT"}, claims(nil), hmacSHA256(rsaPEM)), Invalid, ErrSignature},
		{"an unknown kid is refused", sign(t, jose.ES256, k.p256, "nope", claims(nil), nil), Invalid, ErrUnknownKey},
		{"an expired token is refused", good(map[string]any{"exp": now - 3600}), Invalid, ErrExpired},
		{"a token expired within the leeway is allowed", good(map[string]any{"exp": now - 10}), Allowed, nil},
		{"a token without exp is refused", good(map[string]any{"exp": nil}), Invalid, ErrMissingClaim},
		{"a fractional exp is read", good(map[string]any{"exp": float64(now) + 60.5}), Allowed, nil},
		{"an exp that is not a number is refused", good(map[string]any{"exp": "tomorrow"}), Invalid, ErrMalformed},
		{"nbf in the future is refused", good(map[string]any{"nbf": now + 3600}), Invalid, ErrNotYetValid},
		{"iat in the future is refused", good(map[string]any{"iat": now + 3600}), Invalid, ErrIssuedInFuture},
		{"nbf within the leeway is allowed", good(map[string]any{"nbf": now + 20}), Allowed, nil},
		{"a wrong issuer is refused", good(map[string]any{"iss": "https://evil.test"}), Invalid, ErrIssuer},
		{"a missing issuer is refused", good(map[string]any{"iss": nil}), Invalid, ErrIssuer},
		{"a wrong audience is refused", good(map[string]any{"aud": "billing-api"}), Invalid, ErrAudience},
		{"a missing audience is refused", good(map[string]any{"aud": nil}), Invalid, ErrAudience},
		{"an audience list holding an accepted one is allowed", good(map[string]any{"aud": []string{"x", "other"}}), Allowed, nil},
		{"a crit header is refused", withOpts((&jose.SignerOptions{}).WithHeader("crit", []string{"x-ext"}).WithHeader("x-ext", 1)), Invalid, ErrForbiddenHdr},
		{"a jku header is refused", withOpts((&jose.SignerOptions{}).WithHeader("jku", "https://evil.test/jwks")), Invalid, ErrForbiddenHdr},
		{"an x5u header is refused", withOpts((&jose.SignerOptions{}).WithHeader("x5u", "https://evil.test/cert")), Invalid, ErrForbiddenHdr},
		{"an embedded jwk is refused", withOpts(&jose.SignerOptions{EmbedJWK: true}), Invalid, ErrForbiddenHdr},
		{"b64 false is refused", withOpts((&jose.SignerOptions{}).WithBase64(false)), Invalid, ErrForbiddenHdr},
		{"garbage is malformed", "not-a-token", Invalid, ErrMalformed},
		{"three dots of nothing are malformed", "..", Invalid, ErrMalformed},
		{"the JSON serialization is not accepted", `{"payload":"e30","signatures":[]}`, Invalid, ErrMalformed},
		{"a signature cut short is refused", good(nil)[:len(good(nil))-4], Invalid, ErrSignature},
		{"claims that are not JSON are refused", rawTokenSigned(t, signers[jose.HS256]), Invalid, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := check(a, tt.token)
			if res.Outcome != tt.want || (tt.wantErr != nil && !errors.Is(res.Err, tt.wantErr)) {
				t.Fatalf("outcome %v err %v, want %v %v", res.Outcome, res.Err, tt.want, tt.wantErr)
			}
		})
	}
}

// rawTokenSigned is an HS256 token whose payload is not JSON.
func rawTokenSigned(t testing.TB, s signer) string {
	opts := (&jose.SignerOptions{}).WithHeader("kid", s.kid)
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: s.good}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := sg.Sign([]byte("not json"))
	out, _ := obj.CompactSerialize()
	return out
}

func TestMissingCredentialsAreUnauthenticated(t *testing.T) {
	a, _ := matrixRoute(t)
	for name, mutate := range map[string]func(*http.Request){
		"no Authorization":      func(r *http.Request) {},
		"a Basic Authorization": func(r *http.Request) { r.Header.Set("Authorization", "Basic dXNlcjpwdw==") },
		"an empty Bearer":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
		"two Authorization fields": func(r *http.Request) {
			r.Header.Add("Authorization", "Bearer a")
			r.Header.Add("Authorization", "Bearer b")
		},
	} {
		t.Run(name, func(t *testing.T) {
			res, _ := check(a, "", mutate)
			if res.Outcome != Unauthenticated {
				t.Fatalf("outcome %v", res.Outcome)
			}
			if got := a.Challenge(res.Outcome); len(got) != 1 || got[0] != "Bearer" {
				t.Fatalf("challenge %q", got)
			}
		})
	}
	if got := a.Challenge(Invalid); got[0] != `Bearer error="invalid_token"` {
		t.Fatalf("invalid challenge %q", got)
	}
	res, _ := check(a, "x", func(r *http.Request) {
		r.Header.Set("Authorization", "bEaReR "+sign(t, jose.EdDSA, keys(t).ed, "ed", claims(nil), nil))
	})
	if res.Outcome != Allowed {
		t.Fatalf("the scheme is case-insensitive: %v %v", res.Outcome, res.Err)
	}
}

func TestClaimsAreRequiredMatchedAndForwarded(t *testing.T) {
	k := keys(t)
	j := baseJWT(config.JWTKey{KID: "ed", PEM: pemOf(t, k.ed.Public())})
	j.RequiredClaims = []string{"tenant"}
	j.Claims = []config.ClaimMatch{{Name: "scope", Contains: "orders:read"}, {Name: "org.tier", Equals: "gold"}}
	j.ForwardClaims = []config.ForwardClaim{{Claim: "sub", Header: "x-user"}, {Claim: "roles", Header: "X-Roles"}, {Claim: "org", Header: "X-Org"}, {Claim: "n", Header: "X-N"}}
	j.StripAuthorization = true
	a := compileRoute(t, config.Route{JWT: j}, nil)
	base := map[string]any{"tenant": "t1", "org": map[string]any{"tier": "gold", "id": 7}, "roles": []string{"a", "b"}, "n": 12}
	tok := func(mod map[string]any) string {
		c := map[string]any{}
		for k, v := range base {
			c[k] = v
		}
		for k, v := range mod {
			c[k] = v
		}
		return sign(t, jose.EdDSA, k.ed, "ed", claims(c), nil)
	}
	spoof := func(r *http.Request) { r.Header.Set("X-User", "admin"); r.Header.Set("X-Org", "spoofed") }

	t.Run("a token meeting every condition is allowed and its claims forwarded", func(t *testing.T) {
		res, r := check(a, tok(nil), spoof)
		if res.Outcome != Allowed {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
		want := map[string]string{"X-User": "user-42", "X-Roles": "a b", "X-Org": `{"id":7,"tier":"gold"}`, "X-N": "12"}
		for h, v := range want {
			if got := r.Header.Values(h); len(got) != 1 || got[0] != v {
				t.Errorf("%s = %q, want %q", h, got, v)
			}
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("Authorization was not stripped")
		}
	})
	t.Run("a scope list holding the scope is allowed", func(t *testing.T) {
		if res, _ := check(a, tok(map[string]any{"scope": []string{"x", "orders:read"}})); res.Outcome != Allowed {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
	})
	t.Run("an insufficient scope is forbidden", func(t *testing.T) {
		res, r := check(a, tok(map[string]any{"scope": "orders:write orders:readx"}), spoof)
		if res.Outcome != Forbidden {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
		if r.Header.Get("X-User") != "" || r.Header.Get("X-Org") != "" {
			t.Error("a client's own claim header survived")
		}
		if got := a.Challenge(Forbidden); got[0] != `Bearer error="insufficient_scope"` {
			t.Errorf("challenge %q", got)
		}
	})
	t.Run("a nested claim with another value is forbidden", func(t *testing.T) {
		if res, _ := check(a, tok(map[string]any{"org": map[string]any{"tier": "silver"}})); res.Outcome != Forbidden {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
	})
	t.Run("a missing required claim is invalid", func(t *testing.T) {
		if res, _ := check(a, tok(map[string]any{"tenant": nil})); res.Outcome != Invalid || !errors.Is(res.Err, ErrMissingClaim) {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
	})
	t.Run("a bad token never forwards claims and spoofed headers go", func(t *testing.T) {
		res, r := check(a, "garbage", spoof)
		if res.Outcome != Invalid || r.Header.Get("X-User") != "" {
			t.Fatalf("outcome %v, X-User %q", res.Outcome, r.Header.Get("X-User"))
		}
	})
}

func TestKeysAreParsedWithTheirAlgorithmPinned(t *testing.T) {
	k := keys(t)
	tests := []struct {
		name    string
		key     config.JWTKey
		wantErr string
	}{
		{"an RSA PEM without an algorithm is refused", config.JWTKey{PEM: pemOf(t, &k.rsa.PublicKey)}, "set algorithm"},
		{"an EC key with another curve's algorithm is refused", config.JWTKey{PEM: pemOf(t, &k.p256.PublicKey), Algorithm: "ES384"}, "does not fit"},
		{"an RSA key cannot be an HMAC secret", config.JWTKey{PEM: pemOf(t, &k.rsa.PublicKey), Algorithm: "HS256"}, "does not fit"},
		{"a short HMAC secret is refused", config.JWTKey{Secret: "short", Algorithm: "HS256"}, "at least 32 bytes"},
		{"an HMAC secret needs its algorithm", config.JWTKey{Secret: string(k.hs256)}, "set algorithm"},
		{"a private JWK is refused", config.JWTKey{JWK: privateJWK(t, k.p256)}, "private"},
		{"a JWK whose alg disagrees is refused", config.JWTKey{JWK: publicJWK(t, k.rsa, "a", "RS256"), Algorithm: "PS256"}, "differs"},
		{"a private PEM is refused", config.JWTKey{PEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "never a private key"},
		{"an RSA JWK with its alg is fine", config.JWTKey{JWK: publicJWK(t, k.rsa, "a", "PS384")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseJWTKey(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func privateJWK(t testing.TB, priv crypto.Signer) string {
	b, err := (jose.JSONWebKey{Key: priv, KeyID: "x"}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAVerifiedTokenIsCachedButItsTimeIsCheckedOnEveryUse(t *testing.T) {
	k := keys(t)
	j := baseJWT(config.JWTKey{KID: "ed", PEM: pemOf(t, k.ed.Public())})
	j.Claims = []config.ClaimMatch{{Name: "scope", Contains: "orders:read"}}
	j.ForwardClaims = []config.ForwardClaim{{Claim: "sub", Header: "X-User"}}
	a := compileRoute(t, config.Route{JWT: j}, nil)
	tok := sign(t, jose.EdDSA, k.ed, "ed", claims(map[string]any{"exp": time.Now().Unix() + 60}), nil)
	for i := range 3 {
		res, r := check(a, tok)
		if res.Outcome != Allowed || r.Header.Get("X-User") != "user-42" {
			t.Fatalf("use %d: %v %v %q", i, res.Outcome, res.Err, r.Header.Get("X-User"))
		}
	}
	if n := a.jwt.cache.len(); n != 1 {
		t.Fatalf("%d cache entries", n)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	var res Result
	a.Check(r, time.Now().Add(2*time.Minute), &res)
	if res.Outcome != Invalid || !errors.Is(res.Err, ErrExpired) {
		t.Fatalf("a cached token past its exp: %v %v", res.Outcome, res.Err)
	}
	forbidden := sign(t, jose.EdDSA, k.ed, "ed", claims(map[string]any{"scope": "x"}), nil)
	for range 2 {
		if res, _ := check(a, forbidden); res.Outcome != Forbidden {
			t.Fatalf("a cached forbidden token: %v", res.Outcome)
		}
	}
	// One byte off is another token: checked afresh, and refused.
	flip := "A"
	if tok[len(tok)-2] == 'A' {
		flip = "B"
	}
	tampered := tok[:len(tok)-2] + flip + tok[len(tok)-1:]
	if res, _ := check(a, tampered); res.Outcome != Invalid {
		t.Fatalf("a tampered token: %v", res.Outcome)
	}
	if n := a.jwt.cache.len(); n != 2 {
		t.Fatalf("%d cache entries: invalid tokens must not be kept", n)
	}
}
