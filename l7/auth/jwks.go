package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// maxJWKSBytes bounds a fetched key set: an identity provider's set is a
// few kilobytes.
const maxJWKSBytes = 1 << 20

// Remote is a JSON Web Key Set fetched over HTTP. Requests read the cached
// set with one atomic load; a goroutine refreshes it every refresh
// interval (after a failure: every min interval), and a token naming an
// unknown kid refreshes it at once, at most once per min interval
// (RefreshForKID). When fetches fail the last set keeps serving for
// maxStale (stale-if-error), then no key is offered until a fetch
// succeeds. Compiled objects do not fetch: Start does, Close stops.
type Remote struct {
	conf     config.RemoteJWKS
	fallback []string
	allowed  []jose.SignatureAlgorithm
	log      *slog.Logger
	tr       *http.Transport
	client   *http.Client

	cur atomic.Pointer[remoteSet]

	mu          sync.Mutex
	inflight    chan struct{}
	lastAttempt time.Time

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Bool
	closed  atomic.Bool

	fetches atomic.Int64 // attempts, for tests and metrics
}

type remoteSet struct {
	ks      *keySet
	fetched time.Time
}

func newRemote(c config.RemoteJWKS, fallback []string, allowed []jose.SignatureAlgorithm, log *slog.Logger) *Remote {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: c.Timeout.D()}).DialContext,
		TLSHandshakeTimeout: c.Timeout.D(),
		// A fetch every few minutes gains nothing from keep-alive, and
		// without idle connections no goroutine outlives Close.
		DisableKeepAlives: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Remote{
		conf: c, fallback: fallback, allowed: allowed, log: log,
		tr: tr, client: &http.Client{Transport: tr, Timeout: c.Timeout.D()},
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// sameAs reports whether two remotes fetch the same set the same way, so
// that a reload can carry the cached set over.
func (r *Remote) sameAs(o *Remote) bool {
	return r.same(o.conf, o.fallback, o.allowed)
}

func (r *Remote) same(c config.RemoteJWKS, fallback []string, allowed []jose.SignatureAlgorithm) bool {
	return r.conf == c && slices.Equal(r.fallback, fallback) && slices.Equal(r.allowed, allowed)
}

// Fetches is the number of fetch attempts so far.
func (r *Remote) Fetches() int64 { return r.fetches.Load() }

// keys returns the cached set, nil when there is none or it is older than
// max_stale.
func (r *Remote) keys(now time.Time) *keySet {
	s := r.cur.Load()
	if s == nil || now.Sub(s.fetched) > r.conf.MaxStale.D() {
		return nil
	}
	return s.ks
}

// adopt takes over the cached set of the remote this one replaces.
func (r *Remote) adopt(old *Remote) {
	if s := old.cur.Load(); s != nil {
		r.cur.Store(s)
	}
	old.mu.Lock()
	last := old.lastAttempt
	old.mu.Unlock()
	r.mu.Lock()
	r.lastAttempt = last
	r.mu.Unlock()
}

// Start begins fetching in the background.
func (r *Remote) Start() {
	if r.closed.Load() || !r.started.CompareAndSwap(false, true) {
		return
	}
	go r.loop()
}

// Close stops the background fetches and waits for the goroutine to end.
// Requests still holding the remote keep its last set.
func (r *Remote) Close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	r.cancel()
	if r.started.Load() {
		<-r.done
	}
	r.tr.CloseIdleConnections()
}

func (r *Remote) loop() {
	defer close(r.done)
	wait := time.Duration(0)
	if s := r.cur.Load(); s != nil {
		// Adopted from the previous generation: keep its schedule.
		wait = max(0, r.conf.RefreshInterval.D()-time.Since(s.fetched))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		next := r.conf.RefreshInterval.D()
		if err := r.refresh(false); err != nil {
			next = r.conf.MinRefreshInterval.D()
		}
		t.Reset(next)
	}
}

var errRateLimited = errors.New("jwks: refreshed too recently")

// RefreshForKID fetches the set now because a token named a kid it lacks,
// unless a fetch was attempted less than min_refresh_interval ago. A
// request arriving while a fetch is running waits for it (bounded by ctx).
func (r *Remote) RefreshForKID(ctx context.Context) {
	if !r.started.Load() || r.closed.Load() {
		return
	}
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	r.mu.Unlock()
	r.refresh(true)
}

// refresh fetches the set once. rateLimited fetches (for unknown kids)
// give way to one less than min_refresh_interval old.
func (r *Remote) refresh(rateLimited bool) error {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		<-ch
		return nil
	}
	now := time.Now()
	if rateLimited && !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < r.conf.MinRefreshInterval.D() {
		r.mu.Unlock()
		return errRateLimited
	}
	ch := make(chan struct{})
	r.inflight = ch
	r.lastAttempt = now
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight = nil
		r.mu.Unlock()
		close(ch)
	}()
	r.fetches.Add(1)
	ks, err := r.fetch()
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn("jwks fetch failed", "url", r.conf.URL, "err", err, "cached_keys", r.cur.Load() != nil)
		}
		return err
	}
	r.cur.Store(&remoteSet{ks: ks, fetched: time.Now()})
	return nil
}

func (r *Remote) fetch() (*keySet, error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.conf.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("jwks: %s answered %s", r.conf.URL, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks: %s: larger than %d bytes", r.conf.URL, maxJWKSBytes)
	}
	vks, skipped, err := config.ParseJWKS(b, false, r.fallback)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", r.conf.URL, err)
	}
	if len(skipped) > 0 {
		r.log.Debug("jwks keys skipped", "url", r.conf.URL, "skipped", skipped)
	}
	if len(vks) == 0 {
		return nil, fmt.Errorf("jwks: %s: no usable signing key", r.conf.URL)
	}
	return newKeySet(vks, r.allowed), nil
}

// Registry holds a generation's remote key sets, one per distinct URL and
// settings, so routes sharing an identity provider share its cache.
type Registry struct {
	log     *slog.Logger
	remotes []*Remote
}

// NewRegistry returns an empty registry.
func NewRegistry(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	return &Registry{log: log}
}

func (g *Registry) remote(c config.RemoteJWKS, fallback []string, allowed []jose.SignatureAlgorithm) *Remote {
	for _, r := range g.remotes {
		if r.same(c, fallback, allowed) {
			return r
		}
	}
	n := newRemote(c, fallback, allowed, g.log)
	g.remotes = append(g.remotes, n)
	return n
}

// Remotes returns the registry's remote sets.
func (g *Registry) Remotes() []*Remote {
	if g == nil {
		return nil
	}
	return g.remotes
}

// Start carries the cached sets of prev (the generation being replaced)
// over to the same remotes of g, then starts fetching. Fetch failures are
// logged to log.
func (g *Registry) Start(prev *Registry, log *slog.Logger) {
	if g == nil {
		return
	}
	for _, r := range g.remotes {
		if log != nil {
			r.log = log
		}
		for _, o := range prev.Remotes() {
			if r.sameAs(o) {
				r.adopt(o)
				break
			}
		}
		r.Start()
	}
}

// Close stops every remote of the registry.
func (g *Registry) Close() {
	if g == nil {
		return
	}
	for _, r := range g.remotes {
		r.Close()
	}
}
