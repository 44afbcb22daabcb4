package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// testKeys are one key pair per key type, made once per test binary.
type testKeys struct {
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey // a second RSA key, for rotation and "wrong key"
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	p521    *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	hs256   []byte
	hs384   []byte
	hs512   []byte
	p256b   *ecdsa.PrivateKey // another P-256 key: a good token signed with the wrong key
	edOther ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	tk       testKeys
)

func keys(t testing.TB) *testKeys {
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil {
				err = e
			}
		}
		tk.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		tk.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		tk.p256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tk.p256b, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tk.p384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		tk.p521, _ = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, tk.ed, _ = ed25519.GenerateKey(rand.Reader)
		_, tk.edOther, _ = ed25519.GenerateKey(rand.Reader)
		tk.hs256 = randBytes(32)
		tk.hs384 = randBytes(48)
		tk.hs512 = randBytes(64)
		if err != nil {
			panic(err)
		}
	})
	return &tk
}

// otherEC is a new key on k's curve.
func otherEC(k *ecdsa.PrivateKey) any {
	o, err := ecdsa.GenerateKey(k.Curve, rand.Reader)
	if err != nil {
		panic(err)
	}
	return o
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// publicJWK is the public JWK of a private key, as JSON, with kid and alg.
func publicJWK(t testing.TB, priv any, kid, alg string) string {
	t.Helper()
	var pub any
	switch k := priv.(type) {
	case crypto.Signer:
		pub = k.Public()
	case []byte:
		pub = k
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jwks(t testing.TB, jwks ...string) []byte {
	t.Helper()
	b := []byte(`{"keys":[`)
	for i, k := range jwks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
	}
	return append(b, "]}"...)
}

func pemOf(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// claims are a good token's claims for the test route, valid for an hour.
func claims(extra map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": "https://idp.test", "aud": "orders-api", "sub": "user-42",
		"exp": now + 3600, "nbf": now - 10, "iat": now - 10,
		"scope": "orders:read profile",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a compact JWS with go-jose (a signer, never a verifier in the
// code under test) and the given extra protected headers.
func sign(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, c map[string]any, opts *jose.SignerOptions) string {
	t.Helper()
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	if kid != "" {
		opts.WithHeader("kid", kid)
	}
	opts.WithType("JWT")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawToken assembles a token by hand from a header, claims and a
// signature function: for the tokens no honest signer makes (alg none, an
// HMAC keyed with a public key).
func rawToken(header map[string]any, c map[string]any, sig func(input []byte) []byte) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	var s []byte
	if sig != nil {
		s = sig([]byte(input))
	}
	return input + "." + enc.EncodeToString(s)
}

func hmacSHA256(key []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(in)
		return m.Sum(nil)
	}
}

// route compiles a route with jwt (and the given changes) into an
// authenticator.
func compileRoute(t testing.TB, rt config.Route, reg *Registry) *Authenticator {
	t.Helper()
	rt.Name = "r"
	rt.SetDefaults()
	if reg == nil {
		reg = NewRegistry(nil)
	}
	a, err := Compile(rt, reg, "")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func baseJWT(keys ...config.JWTKey) *config.JWT {
	return &config.JWT{Issuer: "https://idp.test", Audiences: []string{"orders-api", "other"}, Keys: keys}
}

// check runs a request with the token through a.
func check(a *Authenticator, token string, mutate ...func(*http.Request)) (Result, *http.Request) {
	r := httptest.NewRequest("GET", "http://api.test/orders?x=1", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range mutate {
		m(r)
	}
	var res Result
	a.Check(r, time.Now(), &res)
	return res, r
}
