package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func hashOf(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func TestAPIKeysMapToConsumers(t *testing.T) {
	ak := &config.APIKeys{Query: "api_key", Keys: []config.APIKey{
		{Consumer: "mobile", SHA256: hashOf("k-mobile-123")},
		{Consumer: "partner", SHA256: hashOf("k-partner-456")},
	}}
	a := compileRoute(t, config.Route{APIKeys: ak}, nil)
	tests := []struct {
		name         string
		target       string
		header       string
		want         Outcome
		wantConsumer string
		wantQuery    string
	}{
		{"a known key in the header is its consumer's", "/x?a=1", "k-mobile-123", Allowed, "mobile", "a=1"},
		{"a known key in the query is its consumer's and leaves the query", "/x?a=1&api_key=k-partner-456&b=2", "", Allowed, "partner", "a=1&b=2"},
		{"an escaped key in the query is decoded", "/x?api_key=k%2Dpartner-456", "", Allowed, "partner", ""},
		{"the header wins over the query", "/x?api_key=nope", "k-mobile-123", Allowed, "mobile", "api_key=nope"},
		{"an unknown key is invalid", "/x", "k-mobile-124", Invalid, "", ""},
		{"an empty query key is invalid", "/x?api_key=", "", Invalid, "", ""},
		{"no key is unauthenticated", "/x?other=1", "", Unauthenticated, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://api.test"+tt.target, nil)
			if tt.header != "" {
				r.Header.Set("X-Api-Key", tt.header)
			}
			var res Result
			a.Check(r, time.Now(), &res)
			if res.Outcome != tt.want || res.Consumer != tt.wantConsumer {
				t.Fatalf("outcome %v consumer %q", res.Outcome, res.Consumer)
			}
			if res.Outcome == Allowed {
				if r.Header.Get("X-Api-Key") != "" {
					t.Error("the key header was forwarded")
				}
				if r.URL.RawQuery != tt.wantQuery {
					t.Errorf("query %q, want %q", r.URL.RawQuery, tt.wantQuery)
				}
			}
		})
	}
	if got := a.Challenge(Unauthenticated); len(got) != 1 || got[0] != `APIKey header="X-Api-Key"` {
		t.Errorf("challenge %q", got)
	}
}

func TestARouteWithJWTAndAPIKeysTakesEither(t *testing.T) {
	k := keys(t)
	rt := config.Route{
		JWT:     baseJWT(config.JWTKey{KID: "ed", PEM: pemOf(t, k.ed.Public())}),
		APIKeys: &config.APIKeys{Keys: []config.APIKey{{Consumer: "batch", SHA256: hashOf("secret-key")}}, Forward: true},
	}
	a := compileRoute(t, rt, nil)
	if res, _ := check(a, sign(t, jose.EdDSA, k.ed, "ed", claims(nil), nil)); res.Outcome != Allowed || res.Consumer != "user-42" {
		t.Fatalf("token: %v %q", res.Outcome, res.Consumer)
	}
	res, r := check(a, "", func(r *http.Request) { r.Header.Set("X-API-Key", "secret-key") })
	if res.Outcome != Allowed || res.Consumer != "batch" || r.Header.Get("X-API-Key") != "secret-key" {
		t.Fatalf("key: %v %q, forwarded %q", res.Outcome, res.Consumer, r.Header.Get("X-API-Key"))
	}
	if res, _ := check(a, "", func(r *http.Request) { r.Header.Set("X-API-Key", "wrong") }); res.Outcome != Invalid {
		t.Fatalf("a wrong key with a route that also takes tokens: %v", res.Outcome)
	}
	if res, _ := check(a, ""); res.Outcome != Unauthenticated || a.Challenge(res.Outcome)[0] != "Bearer" {
		t.Fatalf("nothing: %v", res.Outcome)
	}
}
