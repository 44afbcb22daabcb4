package auth

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// jwksServer serves a key set that the test can rotate, or a status.
type jwksServer struct {
	*httptest.Server
	body   atomic.Pointer[[]byte]
	status atomic.Int32
	hits   atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{}
	s.body.Store(&body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(b []byte) { s.body.Store(&b) }

func remoteRoute(t *testing.T, url string, mod func(*config.RemoteJWKS)) (*Authenticator, *Registry) {
	j := &config.JWT{Issuer: "https://idp.test", Audiences: []string{"orders-api"},
		JWKS: &config.RemoteJWKS{URL: url, RefreshInterval: config.Duration(time.Hour), MinRefreshInterval: config.Duration(300 * time.Millisecond),
			Timeout: config.Duration(2 * time.Second)}}
	if mod != nil {
		mod(j.JWKS)
	}
	reg := NewRegistry(nil)
	a := compileRoute(t, config.Route{JWT: j}, reg)
	t.Cleanup(reg.Close)
	return a, reg
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	e2etest.Until(t, what, within, ok)
}

func TestARemoteSetIsFetchedRotatedAndRefreshedForAnUnknownKid(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(t, publicJWK(t, k.rsa, "k1", "RS256")))
	a, reg := remoteRoute(t, srv.URL, nil)
	r := reg.Remotes()[0]
	if res, _ := check(a, sign(t, jose.RS256, k.rsa, "k1", claims(nil), nil)); res.Outcome != Invalid {
		t.Fatalf("before Start nothing is fetched, yet %v", res.Outcome)
	}
	reg.Start(nil, quiet)
	eventually(t, "the first fetch", 2*time.Second, func() bool { return r.keys(time.Now()) != nil })

	t.Run("a token signed with the fetched key is allowed", func(t *testing.T) {
		if res, _ := check(a, sign(t, jose.RS256, k.rsa, "k1", claims(nil), nil)); res.Outcome != Allowed {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
	})
	t.Run("an HS256 token keyed with the set's RSA key is refused", func(t *testing.T) {
		tok := rawToken(map[string]any{"alg": "HS256", "kid": "k1"}, claims(nil), hmacSHA256([]byte(pemOf(t, &k.rsa.PublicKey))))
		if res, _ := check(a, tok); res.Outcome != Invalid || !errors.Is(res.Err, ErrUnknownKey) {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
	})
	t.Run("after a rotation the new kid is fetched at once", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // past min_refresh_interval since the first fetch
		srv.serve(jwks(t, publicJWK(t, k.rsa2, "k2", "RS256")))
		before := r.Fetches()
		if res, _ := check(a, sign(t, jose.RS256, k.rsa2, "k2", claims(nil), nil)); res.Outcome != Allowed {
			t.Fatalf("outcome %v %v", res.Outcome, res.Err)
		}
		if r.Fetches() != before+1 {
			t.Fatalf("fetches %d → %d", before, r.Fetches())
		}
		if res, _ := check(a, sign(t, jose.RS256, k.rsa, "k1", claims(nil), nil)); res.Outcome != Invalid {
			t.Fatalf("the retired key still verifies: %v", res.Outcome)
		}
	})
	t.Run("unknown kids cause at most one fetch per min_refresh_interval", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond)
		before := r.Fetches()
		for i := range 50 {
			tok := sign(t, jose.RS256, k.rsa2, "unknown-"+string(rune('a'+i%26)), claims(nil), nil)
			if res, _ := check(a, tok); res.Outcome != Invalid {
				t.Fatalf("outcome %v", res.Outcome)
			}
		}
		if n := r.Fetches() - before; n != 1 {
			t.Fatalf("%d fetches for 50 unknown kids within min_refresh_interval, want 1", n)
		}
		time.Sleep(350 * time.Millisecond)
		check(a, sign(t, jose.RS256, k.rsa2, "unknown-z", claims(nil), nil))
		if n := r.Fetches() - before; n != 2 {
			t.Fatalf("%d fetches after the interval, want 2", n)
		}
	})
}

func TestAFailingJWKSServerLeavesTheCachedSetInUseUntilMaxStale(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(t, publicJWK(t, k.p256, "ec1", "")))
	a, reg := remoteRoute(t, srv.URL, func(c *config.RemoteJWKS) {
		c.RefreshInterval = config.Duration(100 * time.Millisecond)
		c.MinRefreshInterval = config.Duration(50 * time.Millisecond)
		c.MaxStale = config.Duration(time.Second)
	})
	reg.Start(nil, quiet)
	r := reg.Remotes()[0]
	eventually(t, "the first fetch", 2*time.Second, func() bool { return r.keys(time.Now()) != nil })
	// The same token every time, as a client sends it: the cache must not
	// outlive max_stale either.
	tok := sign(t, jose.ES256, k.p256, "ec1", claims(nil), nil)
	good := func() Outcome {
		res, _ := check(a, tok)
		return res.Outcome
	}
	srv.status.Store(http.StatusInternalServerError)
	hits := srv.hits.Load()
	eventually(t, "failed refreshes", 2*time.Second, func() bool { return srv.hits.Load() >= hits+2 })
	if o := good(); o != Allowed {
		t.Fatalf("the cached set was dropped on a 500: %v", o)
	}
	eventually(t, "max_stale to pass", 3*time.Second, func() bool { return good() == Invalid })
	srv.status.Store(0)
	eventually(t, "the set to come back", 2*time.Second, func() bool { return good() == Allowed })
}

func TestAReloadCarriesTheCachedSetOverAndClosingStopsEveryGoroutine(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(t, publicJWK(t, k.ed, "ed1", "")))
	time.Sleep(10 * time.Millisecond)
	base := runtime.NumGoroutine()

	a1, reg1 := remoteRoute(t, srv.URL, nil)
	reg1.Start(nil, quiet)
	eventually(t, "the first fetch", 2*time.Second, func() bool { return reg1.Remotes()[0].keys(time.Now()) != nil })
	if res, _ := check(a1, sign(t, jose.EdDSA, k.ed, "ed1", claims(nil), nil)); res.Outcome != Allowed {
		t.Fatalf("outcome %v %v", res.Outcome, res.Err)
	}

	// The next generation, with a second route on the same set: one remote.
	j := func() *config.JWT {
		return &config.JWT{Issuer: "https://idp.test", Audiences: []string{"orders-api"},
			JWKS: &config.RemoteJWKS{URL: srv.URL, RefreshInterval: config.Duration(time.Hour), MinRefreshInterval: config.Duration(300 * time.Millisecond), Timeout: config.Duration(2 * time.Second)}}
	}
	reg2 := NewRegistry(nil)
	a2 := compileRoute(t, config.Route{JWT: j()}, reg2)
	compileRoute(t, config.Route{JWT: j()}, reg2)
	if n := len(reg2.Remotes()); n != 1 {
		t.Fatalf("%d remotes for one URL", n)
	}
	hits := srv.hits.Load()
	reg2.Start(reg1, quiet)
	reg1.Close()
	if res, _ := check(a2, sign(t, jose.EdDSA, k.ed, "ed1", claims(nil), nil)); res.Outcome != Allowed {
		t.Fatalf("the new generation lacks the cached set: %v %v", res.Outcome, res.Err)
	}
	time.Sleep(50 * time.Millisecond)
	if srv.hits.Load() != hits {
		t.Fatal("the reload fetched the set again instead of adopting it")
	}
	reg2.Close()
	reg2.Close() // twice is fine
	eventually(t, "the goroutines to end", 3*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}
