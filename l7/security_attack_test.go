package l7

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestHostileTokensNeverReachTheUpstream sends crafted tokens through the
// proxy: each must get 401 with the bare invalid_token challenge (no
// detail that helps an attacker), and the recording upstream must see
// none of them.
func TestHostileTokensNeverReachTheUpstream(t *testing.T) {
	rec, up := recordingUpstream(t, "ok")
	s := newSigner(t, "k1")
	routes := fmt.Sprintf(`    - name: orders
      pool: p
      jwt:
        issuer: https://idp.test
        audiences: [orders]
        keys: [{jwk: %s}]
`, s.jwk(t))
	_, addr := startProxy(t, []string{up}, proxyOpts{routes: routes})
	good := s.token(t, nil)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	header := func(h map[string]any) string { b, _ := json.Marshal(h); return b64(b) }
	payload := parts[1]
	// An HS256 signature keyed with the public key's bytes: the classic
	// algorithm confusion, which the pinned EdDSA key must refuse.
	confused := func() string {
		hp := header(map[string]any{"alg": "HS256", "kid": "k1"}) + "." + payload
		m := hmac.New(sha256.New, []byte(s.priv.Public().(ed25519.PublicKey)))
		m.Write([]byte(hp))
		return hp + "." + b64(m.Sum(nil))
	}
	other := newSigner(t, "k1") // same kid, another key
	for name, tok := range map[string]string{
		"alg none":              header(map[string]any{"alg": "none", "kid": "k1"}) + "." + payload + ".",
		"HS256 with the key":    confused(),
		"signed by another key": other.token(t, nil),
		"payload tampered":      parts[0] + "." + b64([]byte(`{"iss":"https://idp.test","aud":"orders","sub":"root","exp":9999999999}`)) + "." + parts[2],
		"jku header":            header(map[string]any{"alg": "EdDSA", "kid": "k1", "jku": "https://evil.test/jwks"}) + "." + payload + "." + parts[2],
		"embedded jwk":          header(map[string]any{"alg": "EdDSA", "kid": "k1", "jwk": map[string]any{"kty": "OKP"}}) + "." + payload + "." + parts[2],
		"unknown crit":          header(map[string]any{"alg": "EdDSA", "kid": "k1", "crit": []string{"x"}, "x": 1}) + "." + payload + "." + parts[2],
		"wrong issuer":          s.token(t, map[string]any{"iss": "https://evil.test"}),
		"wrong audience":        s.token(t, map[string]any{"aud": "billing"}),
		"expired":               s.token(t, map[string]any{"exp": 1}),
		"not yet valid":         s.token(t, map[string]any{"nbf": 9999999999}),
		"two parts":             parts[0] + "." + parts[1],
		"garbage":               "not-a-token",
	} {
		t.Run(name, func(t *testing.T) {
			res, body := send(t, "GET", "http://"+addr+"/x", map[string]string{"Authorization": "Bearer " + tok})
			if res.StatusCode != 401 || res.Header.Get("Www-Authenticate") != `Bearer error="invalid_token"` {
				t.Errorf("%d %q %q", res.StatusCode, res.Header.Get("Www-Authenticate"), body)
			}
		})
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("%d hostile requests reached the upstream", n)
	}
	if res, _ := send(t, "GET", "http://"+addr+"/x", map[string]string{"Authorization": "Bearer " + good}); res.StatusCode != 200 || rec.count() != 1 {
		t.Fatalf("the good token: %d", res.StatusCode)
	}
}
