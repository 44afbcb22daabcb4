package pool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func ptr[T any](v T) *T { return &v }

func eps(weights ...int) []config.Endpoint {
	var out []config.Endpoint
	for i, w := range weights {
		out = append(out, config.Endpoint{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: w})
	}
	return out
}

// fakeClock is injected into a pool so ejection times are checked without
// sleeping.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newPool(t testing.TB, c config.Pool) (*Pool, *fakeClock) {
	t.Helper()
	if c.Name == "" {
		c.Name = "p"
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{}
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	p.now = clk.ns.Load
	return p, clk
}

var get = httptest.NewRequest("GET", "/", nil)

// counts picks (each finished at once) per address.
func counts(t testing.TB, p *Pool, n int, r func(i int) *http.Request) map[string]int {
	t.Helper()
	m := map[string]int{}
	for i := range n {
		e, err := p.Pick(r(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		m[e.Address]++
		e.Done(Outcome{Status: 200})
	}
	return m
}

func TestRoundRobinIsSmoothAndWeighted(t *testing.T) {
	p, _ := newPool(t, config.Pool{Algorithm: "round_robin", Endpoints: eps(5, 1, 1)})
	var seq string
	for range 14 {
		e, _ := p.Pick(get, nil)
		seq += map[string]string{"10.0.0.1:80": "a", "10.0.0.2:80": "b", "10.0.0.3:80": "c"}[e.Address]
		e.Done(Outcome{Status: 200})
	}
	if seq != "aabacaaaabacaa" {
		t.Fatalf("sequence %s, want nginx's smooth a a b a c a a, twice", seq)
	}
}

func TestEveryAlgorithmSpreadsByWeight(t *testing.T) {
	for _, alg := range []string{"round_robin", "random", "least_request", "consistent_hash", "sticky"} {
		t.Run(alg, func(t *testing.T) {
			p, _ := newPool(t, config.Pool{Algorithm: alg, Endpoints: eps(1, 2, 3, 4), Hash: map[bool]*config.Hash{true: {Key: "header:X-User"}}[alg == "consistent_hash"]})
			const n = 40000
			m := counts(t, p, n, func(i int) *http.Request {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("X-User", fmt.Sprint("user-", i))
				return r
			})
			for i, w := range []int{1, 2, 3, 4} {
				got, want := float64(m[fmt.Sprintf("10.0.0.%d:80", i+1)])/n, float64(w)/10
				if math.Abs(got-want) > 0.02 {
					t.Errorf("endpoint %d (weight %d): share %.3f, want %.3f±0.02", i+1, w, got, want)
				}
			}
		})
	}
}

func TestLeastRequestPrefersIdleEndpoints(t *testing.T) {
	p, _ := newPool(t, config.Pool{Algorithm: "least_request", Endpoints: eps(1, 1, 1)})
	busy := p.set.Load().live[0]
	busy.st.inflight.Add(10)
	m := counts(t, p, 3000, func(int) *http.Request { return get })
	if m[busy.Address] > 30 {
		t.Fatalf("the busy endpoint got %d of 3000 picks: %v", m[busy.Address], m)
	}
}

func TestConsistentHashMovesOnlyTheRemovedEndpointsKeys(t *testing.T) {
	const n, keys = 10, 20000
	p, _ := newPool(t, config.Pool{Algorithm: "consistent_hash", Hash: &config.Hash{Key: "header:X-User"}, Endpoints: eps(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)})
	reqs := make([]*http.Request, keys)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", "/", nil)
		reqs[i].Header.Set("X-User", fmt.Sprint("user-", i))
	}
	pick := func(r *http.Request) string {
		e, err := p.Pick(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.Done(Outcome{Status: 200})
		return e.Address
	}
	before := make([]string, keys)
	for i, r := range reqs {
		before[i] = pick(r)
		if again := pick(r); again != before[i] {
			t.Fatalf("key %d went to %s, then %s", i, before[i], again)
		}
	}
	removed := "10.0.0.4:80"
	p.SetEndpoints(append(eps(1, 1, 1), eps(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)[4:]...))
	moved, movedOthers := 0, 0
	for i, r := range reqs {
		if after := pick(r); after != before[i] {
			moved++
			if before[i] != removed {
				movedOthers++
			}
		}
	}
	share := float64(moved) / keys
	if share < 0.5/n || share > 1.5/n || float64(movedOthers)/keys > 0.03 {
		t.Fatalf("%d of %d keys moved (%.3f, want ≈ 1/%d), %d of them from endpoints that stayed", moved, keys, share, n, movedOthers)
	}
}

func TestConsistentHashOnClientIPAndCookie(t *testing.T) {
	for _, key := range []string{"client_ip", "cookie:session"} {
		p, _ := newPool(t, config.Pool{Algorithm: "consistent_hash", Hash: &config.Hash{Key: key}, Endpoints: eps(1, 1, 1, 1)})
		first := ""
		for i := range 50 {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = fmt.Sprintf("[2001:db8::7]:%d", 1000+i) // the port changes, the IP does not
			r.Header.Set("Cookie", "a=b; session=s-42; c=d")
			e, _ := p.Pick(r, nil)
			e.Done(Outcome{Status: 200})
			if first == "" {
				first = e.Address
			} else if e.Address != first {
				t.Fatalf("%s: the same key went to %s and %s", key, first, e.Address)
			}
		}
	}
}

func TestAStickyCookieRoundTrips(t *testing.T) {
	p, clk := newPool(t, config.Pool{Algorithm: "sticky", Endpoints: eps(1, 1, 1), Sticky: &config.Sticky{TTL: config.Duration(time.Hour)},
		Outlier: config.Outlier{Consecutive5xx: ptr(1)}})
	e, _ := p.Pick(get, nil)
	w := httptest.NewRecorder()
	p.AfterPick(w, get, e)
	e.Done(Outcome{Status: 200})
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != "portcullis_p" || cookies[0].MaxAge != 3600 || !cookies[0].HttpOnly || cookies[0].Value == "" {
		t.Fatalf("cookie %+v", cookies)
	}
	withCookie := httptest.NewRequest("GET", "/", nil)
	withCookie.AddCookie(cookies[0])
	for range 20 {
		got, _ := p.Pick(withCookie, nil)
		if got.Address != e.Address {
			t.Fatalf("sticky request went to %s, not %s", got.Address, e.Address)
		}
		w := httptest.NewRecorder()
		p.AfterPick(w, withCookie, got)
		if len(w.Result().Cookies()) != 0 {
			t.Fatal("the cookie was set again although it was right")
		}
		got.Done(Outcome{Status: 200})
	}
	// Its endpoint is ejected: the client goes elsewhere and gets a new cookie.
	e2, _ := p.Pick(withCookie, nil)
	e2.Done(Outcome{Status: 500})
	other, _ := p.Pick(withCookie, nil)
	if other.Address == e.Address {
		t.Fatal("an ejected sticky endpoint was picked")
	}
	w = httptest.NewRecorder()
	p.AfterPick(w, withCookie, other)
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Value == cookies[0].Value {
		t.Fatalf("no new cookie: %+v", c)
	}
	other.Done(Outcome{Status: 200})
	// The ejection ends: the old cookie works again.
	clk.advance(31 * time.Second)
	back, _ := p.Pick(withCookie, nil)
	back.Done(Outcome{Status: 200})
	if back.Address != e.Address {
		t.Fatalf("after the ejection the cookie led to %s, not %s", back.Address, e.Address)
	}
	// Its endpoint is removed: fallback.
	var keep []config.Endpoint
	for _, ec := range eps(1, 1, 1) {
		if ec.Address != e.Address {
			keep = append(keep, ec)
		}
	}
	p.SetEndpoints(keep)
	gone, err := p.Pick(withCookie, nil)
	if err != nil || gone.Address == e.Address {
		t.Fatalf("pick after removal: %v %v", gone, err)
	}
}

func TestOutlierEjectionAndReturn(t *testing.T) {
	p, clk := newPool(t, config.Pool{Algorithm: "round_robin", Endpoints: eps(1, 1, 1, 1), Outlier: config.Outlier{
		Consecutive5xx: ptr(3), BaseEjectionTime: config.Duration(10 * time.Second), MaxEjectionTime: config.Duration(25 * time.Second)}})
	bad := p.set.Load().live[1]
	fail := func() {
		for range 3 {
			bad.st.inflight.Add(1)
			p.inflight.Add(1)
			bad.Done(Outcome{Status: 503})
		}
	}
	picksOf := func() int {
		m := counts(t, p, 400, func(int) *http.Request { return get })
		return m[bad.Address]
	}
	fail()
	if got := picksOf(); got != 0 {
		t.Fatalf("ejected endpoint got %d picks", got)
	}
	clk.advance(9 * time.Second)
	if got := picksOf(); got != 0 {
		t.Fatalf("endpoint back before its 10s: %d picks", got)
	}
	clk.advance(time.Second)
	if got := picksOf(); got != 100 {
		t.Fatalf("endpoint back after 10s got %d of 400 picks, want 100", got)
	}
	// The second ejection lasts twice as long, the third is capped at 25s.
	for _, want := range []time.Duration{20 * time.Second, 25 * time.Second} {
		fail()
		clk.advance(want - time.Second)
		if got := picksOf(); got != 0 {
			t.Fatalf("endpoint back before %s: %d picks", want, got)
		}
		clk.advance(time.Second)
		if got := picksOf(); got == 0 {
			t.Fatalf("endpoint not back after %s", want)
		}
	}
	if s := p.Snapshot()[1]; s.Ejections != 3 || s.Ejected || s.Failures != 9 {
		t.Fatalf("snapshot %+v", s)
	}
	// A success in between resets the run of failures.
	for range 2 {
		bad.st.inflight.Add(1)
		bad.Done(Outcome{Status: 500})
	}
	bad.st.inflight.Add(1)
	bad.Done(Outcome{Status: 200})
	bad.st.inflight.Add(1)
	bad.Done(Outcome{Status: 500})
	if p.Snapshot()[1].Ejected {
		t.Fatal("ejected although a success broke the run")
	}
}

func TestEjectionKindsCountTheirOwnFailures(t *testing.T) {
	cases := []struct {
		name string
		o    Outcome
		n    int
	}{
		{"connect errors eject after consecutive_connect_errors", Outcome{ConnectError: true}, 2},
		{"gateway errors eject after consecutive_gateway_errors", Outcome{Status: 502}, 3},
		{"timeouts count as gateway errors", Outcome{Timeout: true}, 3},
		{"other 5xx eject after consecutive_5xx", Outcome{Status: 500}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPool(t, config.Pool{Endpoints: eps(1, 1), Outlier: config.Outlier{Consecutive5xx: ptr(4), ConsecutiveGatewayErrors: ptr(3), ConsecutiveConnectErrors: ptr(2)}})
			e := p.set.Load().live[0]
			for i := range tc.n {
				if p.Snapshot()[0].Ejected {
					t.Fatalf("ejected after %d failures", i)
				}
				e.st.inflight.Add(1)
				e.Done(tc.o)
			}
			if !p.Snapshot()[0].Ejected {
				t.Fatalf("not ejected after %d failures", tc.n)
			}
		})
	}
}

func TestMaxEjectionPercentIsHonoured(t *testing.T) {
	p, _ := newPool(t, config.Pool{Endpoints: eps(1, 1, 1, 1, 1), Outlier: config.Outlier{Consecutive5xx: ptr(1), MaxEjectionPercent: ptr(40)}})
	for _, e := range p.set.Load().live {
		e.st.inflight.Add(1)
		e.Done(Outcome{Status: 500})
	}
	ejected := 0
	for _, s := range p.Snapshot() {
		if s.Ejected {
			ejected++
		}
	}
	if ejected != 2 {
		t.Fatalf("%d of 5 endpoints ejected, want 2 (40%%)", ejected)
	}
	m := counts(t, p, 300, func(int) *http.Request { return get })
	if len(m) != 3 {
		t.Fatalf("picks went to %v", m)
	}
}

func TestTheCircuitBreakerCapsRequestsPerEndpoint(t *testing.T) {
	p, _ := newPool(t, config.Pool{Algorithm: "least_request", Endpoints: eps(1, 1), MaxConcurrent: 2})
	var held []*Endpoint
	for range 4 {
		e, err := p.Pick(get, nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, e)
	}
	if _, err := p.Pick(get, nil); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("fifth pick: %v, want ErrOverloaded", err)
	}
	held[0].Done(Outcome{Status: 200})
	e, err := p.Pick(get, nil)
	if err != nil || e.Address != held[0].Address {
		t.Fatalf("after one Done: %v %v", e, err)
	}
}

func TestNoEndpoints(t *testing.T) {
	p, _ := newPool(t, config.Pool{})
	if _, err := p.Pick(get, nil); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("err = %v", err)
	}
}

func TestARetryAvoidsTriedEndpointsWhenItCan(t *testing.T) {
	p, _ := newPool(t, config.Pool{Algorithm: "random", Endpoints: eps(1, 1)})
	first, _ := p.Pick(get, nil)
	first.Done(Outcome{ConnectError: true})
	for range 50 {
		e, _ := p.Pick(get, []*Endpoint{first})
		if e.Address == first.Address {
			t.Fatal("a tried endpoint was picked while another was free")
		}
		e.Done(Outcome{Status: 200})
	}
	single, _ := newPool(t, config.Pool{Endpoints: eps(1)})
	only, _ := single.Pick(get, nil)
	only.Done(Outcome{Status: 502})
	again, err := single.Pick(get, []*Endpoint{only})
	if err != nil || again.Address != only.Address {
		t.Fatalf("with one endpoint a retry goes back to it: %v %v", again, err)
	}
	again.Done(Outcome{Status: 200})
}

func TestTheRetryBudget(t *testing.T) {
	p, _ := newPool(t, config.Pool{Endpoints: eps(1, 1, 1), Retries: config.Retries{BudgetPercent: ptr(20), MinRetries: ptr(2)}})
	var held []*Endpoint
	for range 10 {
		e, _ := p.Pick(get, nil)
		held = append(held, e)
	}
	var retries []*Endpoint
	for p.RetryAllowed() {
		e, err := p.Pick(get, held[:1])
		if err != nil {
			t.Fatal(err)
		}
		retries = append(retries, e)
		if len(retries) > 10 {
			t.Fatal("the budget never ran out")
		}
	}
	// 10 first attempts: retries r may go on while (r+1)*100 <= 20*(10+r), so r = 2.
	if len(retries) != 2 {
		t.Fatalf("%d retries allowed, want 2", len(retries))
	}
	retries[0].Done(Outcome{Status: 200})
	if !p.RetryAllowed() {
		t.Fatal("a finished retry did not give its budget back")
	}
	quiet, _ := newPool(t, config.Pool{Endpoints: eps(1), Retries: config.Retries{BudgetPercent: ptr(0), MinRetries: ptr(1)}})
	if !quiet.RetryAllowed() {
		t.Fatal("min_retries did not allow a retry in a quiet pool")
	}
}

func TestAdoptCarriesEndpointStateAcrossAReload(t *testing.T) {
	cfg := config.Pool{Endpoints: eps(1, 1, 1), Outlier: config.Outlier{Consecutive5xx: ptr(1)}}
	old, clk := newPool(t, cfg)
	bad := old.set.Load().live[0]
	bad.st.inflight.Add(1)
	bad.Done(Outcome{Status: 500})
	running, _ := old.Pick(get, nil) // a request in flight across the reload

	cfg.Endpoints = append(cfg.Endpoints, config.Endpoint{Address: "10.0.0.9:80", Weight: 1})
	p, _ := newPool(t, cfg)
	p.now = clk.ns.Load
	p.Adopt(old)
	snap := p.Snapshot()
	if !snap[0].Ejected || snap[0].Ejections != 1 {
		t.Fatalf("the ejection did not survive the reload: %+v", snap[0])
	}
	var inflight int64
	for _, s := range snap {
		inflight += s.InFlight
	}
	if inflight != 1 {
		t.Fatalf("in flight after adopt: %d, want 1", inflight)
	}
	running.Done(Outcome{Status: 200})
	for _, s := range p.Snapshot() {
		if s.InFlight != 0 {
			t.Fatalf("the old generation's Done did not reach the shared state: %+v", s)
		}
	}
}

func TestSetEndpointsKeepsStateAndRepairsBadLists(t *testing.T) {
	p, _ := newPool(t, config.Pool{Endpoints: eps(1, 1)})
	e, _ := p.Pick(get, nil)
	p.SetEndpoints(append(eps(1, 1), config.Endpoint{Address: "10.0.0.1:80", Weight: 7}))
	if s := p.Snapshot(); len(s) != 2 || s[0].Weight != 1 {
		t.Fatalf("a repeated address was not dropped: %+v", s)
	}
	p.SetEndpoints(eps(1, 1, 5))
	var inflight int64
	for _, s := range p.Snapshot() {
		inflight += s.InFlight
	}
	if len(p.Snapshot()) != 3 || inflight != 1 {
		t.Fatalf("snapshot after SetEndpoints: %+v", p.Snapshot())
	}
	e.Done(Outcome{Status: 200})
}

func TestSetEndpointsWhilePicksRun(t *testing.T) {
	for _, alg := range []string{"round_robin", "random", "least_request", "consistent_hash", "sticky"} {
		t.Run(alg, func(t *testing.T) {
			p, _ := newPool(t, config.Pool{Algorithm: alg, Endpoints: eps(1, 2, 3), MaxConcurrent: 1000})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						e, err := p.Pick(get, nil)
						if err != nil {
							continue // a moment with an empty set
						}
						e.Done(Outcome{Status: 200})
					}
				})
			}
			for i := range 200 {
				ws := make([]int, 1+i%5)
				for j := range ws {
					ws[j] = 1 + (i+j)%3
				}
				if i%50 == 49 {
					ws = nil
				}
				p.SetEndpoints(eps(ws...))
			}
			close(stop)
			wg.Wait()
			for _, s := range p.Snapshot() {
				if s.InFlight != 0 {
					t.Fatalf("in flight after the run: %+v", s)
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, alg := range []string{"round_robin", "random", "least_request", "consistent_hash", "sticky"} {
		p, _ := newPool(t, config.Pool{Algorithm: alg, Endpoints: eps(1, 2, 3, 4), MaxConcurrent: 100})
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "portcullis_p=nothing")
		if n := testing.AllocsPerRun(200, func() {
			e, _ := p.Pick(r, nil)
			e.Done(Outcome{Status: 200})
		}); n != 0 {
			t.Errorf("%s: %v allocations per Pick+Done", alg, n)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, alg := range []string{"round_robin", "random", "least_request", "consistent_hash", "sticky"} {
		b.Run(alg, func(b *testing.B) {
			p, _ := newPool(b, config.Pool{Algorithm: alg, Endpoints: eps(1, 2, 3, 4, 5, 6, 7, 8), MaxConcurrent: 1 << 20})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/", nil)
				for pb.Next() {
					e, err := p.Pick(r, nil)
					if err != nil {
						b.Fatal(err)
					}
					e.Done(Outcome{Status: 200})
				}
			})
		})
	}
}

func TestUpstreamSettings(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writeCA(t, caFile)
	p, _ := newPool(t, config.Pool{Protocol: "h2", TLS: &config.UpstreamTLS{Enabled: true, ServerName: "api.internal", CAFile: caFile},
		Retries: config.Retries{On: []string{"5xx", "reset"}}, Timeouts: config.Timeouts{Total: config.Duration(time.Minute)}})
	u := p.Upstream()
	if u.Protocol != "h2" || u.TLS == nil || u.TLS.ServerName != "api.internal" || u.TLS.RootCAs == nil || u.TLS.NextProtos[0] != "h2" || u.TLS.InsecureSkipVerify {
		t.Fatalf("tls %+v", u.TLS)
	}
	if u.ConnectTimeout != config.DefaultConnectTimeout || u.TotalTimeout != time.Minute || u.MaxIdlePerEndpoint != config.DefaultMaxIdlePerEndpoint || u.Retry.Attempts != 2 {
		t.Fatalf("upstream %+v", u)
	}
	for _, c := range []struct {
		o    Outcome
		want bool
	}{{Outcome{Status: 503}, true}, {Outcome{Status: 500}, true}, {Outcome{Reset: true}, true}, {Outcome{ConnectError: true}, false}, {Outcome{Status: 404}, false}} {
		if got := u.Retry.Retryable(c.o); got != c.want {
			t.Errorf("Retryable(%+v) = %v", c.o, got)
		}
	}
	plain, _ := newPool(t, config.Pool{})
	if pu := plain.Upstream(); pu.TLS != nil || pu.Protocol != "http1" || !pu.Retry.Retryable(Outcome{ConnectError: true}) || pu.Retry.Retryable(Outcome{Status: 502}) {
		t.Fatalf("defaults %+v", pu)
	}
	for _, bad := range []config.Pool{
		{Name: "x", Protocol: "h2"},
		{Name: "x", TLS: &config.UpstreamTLS{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}},
		{Name: "x", Algorithm: "fastest"},
		{Name: "x", Algorithm: "consistent_hash", Hash: &config.Hash{Key: "ip"}},
		{Name: "x", Endpoints: append(eps(1), eps(1)...)},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

func writeCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
