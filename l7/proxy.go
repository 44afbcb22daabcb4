// Package l7 is the HTTP proxy's core: it compiles a config into an
// immutable Generation, swaps generations atomically, and forwards requests.
// A request flows one way:
//
//	listener → handler (loads the generation once) → route match → pool pick
//	         → forward (HTTP/1.1 keep-alive pool, or HTTP/2) → endpoint done
//
// In-flight requests finish on the generation they started with; listeners
// that a reload does not change keep their sockets and connections, and so do
// upgraded connections (WebSocket) and HTTP/2 connections.
//
// The upstream HTTP/1.1 client is written here rather than taken from
// net/http's Transport: the Transport runs two goroutines per connection and
// hands every response across channels, copies headers into fresh maps and
// wraps bodies in several layers; a plain httputil.ReverseProxy measured
// 6.6× HAProxy's CPU per request. Here one goroutine (the server's) writes
// the request straight from the client's header map onto a pooled
// connection, parses the response head with one string allocation, and
// copies the body out of the connection's read buffer.
package l7

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/auth"
	"github.com/portcullis-lb/portcullis/l7/cache"
	"github.com/portcullis-lb/portcullis/l7/listen"
	"github.com/portcullis-lb/portcullis/l7/pool"
	"github.com/portcullis-lb/portcullis/l7/route"
)

// Generation is one compiled config of the proxy. Immutable once applied.
type Generation struct {
	listenerCfg []config.Listener
	byListener  map[string]*listenerConf // by listener name
	pools       map[string]*poolRT
	trusted     []netip.Prefix
	via         string
	idHeader    string
	echoID      bool
	accessLog   config.AccessLog
	nodeID      uint8
	// routeStats are the metric counters of every route, resolved at
	// Apply so that a request finds them with one pointer-keyed lookup.
	routeStats map[*route.Route]*routeStats
	routeNames []string
	// security is the CORS/auth/rate-limit middleware of the routes that
	// have some (security.go); empty when none has.
	security  map[*route.Route]*routeSecurity
	secByName map[string]*routeSecurity
	hasCORS   bool
	// bodyLimits are the routes' own max_body_bytes (limits.go); routes
	// without one take their listener's.
	bodyLimits map[*route.Route]int64
	// jwks are the remote key sets, fetching from Apply until the
	// generation is replaced.
	jwks *auth.Registry
	// caches are the shared caches of the routes with a cache: key
	// (cachepath.go); empty when none has.
	caches      map[*route.Route]*cache.Cache
	cacheByName map[string]*cache.Cache
	// xforms are the compression and body transformation of the routes
	// that have them (transforms.go); empty when none has.
	xforms map[*route.Route]*routeXform
	// aggs are the aggregates of the routes that have one (aggregate.go),
	// aggRT the HTTP/1.1 transports of the pools their calls name.
	aggs  map[*route.Route]*routeAggregate
	aggRT map[string]http.RoundTripper
}

// trusts reports whether a peer's forwarding headers are believed.
func (g *Generation) trusts(a netip.Addr) bool {
	if len(g.trusted) == 0 || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Compile builds a Generation from a validated config: one route table per
// listener, the pools and their transport settings. It touches no socket,
// so a failure leaves the running proxy as it was. Pool state (in flight,
// ejections) is carried over from the running generation at Apply.
func Compile(c *config.Config) (*Generation, error) {
	g := &Generation{
		listenerCfg: c.L7.Listeners,
		byListener:  map[string]*listenerConf{},
		pools:       map[string]*poolRT{},
		via:         c.L7.Via,
		idHeader:    http.CanonicalHeaderKey(c.L7.RequestIDHeader),
		echoID:      c.L7.EchoRequestID,
		accessLog:   c.L7.AccessLog,
		nodeID:      uint8(c.Node.ID),
		routeStats:  map[*route.Route]*routeStats{},
		security:    map[*route.Route]*routeSecurity{},
		bodyLimits:  map[*route.Route]int64{},
	}
	if g.idHeader == "" {
		g.idHeader = config.DefaultRequestIDHeader
	}
	for _, s := range c.L7.TrustedProxies {
		pfx, err := config.ParseTrustedProxy(s)
		if err != nil {
			return nil, fmt.Errorf("l7.trusted_proxies: %q: %w", s, err)
		}
		g.trusted = append(g.trusted, pfx)
	}
	for _, pc := range c.L7.Pools {
		prt, err := compilePool(pc)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", pc.Name, err)
		}
		g.pools[pc.Name] = prt
	}
	for _, rc := range c.L7.Routes {
		g.routeNames = append(g.routeNames, rc.Name)
	}
	for _, lc := range c.L7.Listeners {
		conf, err := compileListener(c, lc, g)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
		}
		g.byListener[lc.Name] = conf
	}
	if err := compileSecurity(c, g); err != nil {
		return nil, err
	}
	if err := compileTransforms(c, g); err != nil {
		return nil, err
	}
	if err := compileCaches(c, g); err != nil {
		return nil, err
	}
	if err := compileAggregates(c, g); err != nil {
		return nil, err
	}
	return g, nil
}

// Pool returns the generation's pool by name (admin API and dashboard:
// Snapshot), nil when there is none.
func (g *Generation) Pool(name string) *pool.Pool {
	if prt := g.pools[name]; prt != nil {
		return prt.p
	}
	return nil
}

// Proxy owns the listeners and serves requests with the current generation.
type Proxy struct {
	log     *slog.Logger
	gen     atomic.Pointer[Generation]
	ids     idSource
	metrics *proxyMetrics
	alog    atomic.Pointer[accessLog]
	tunnels tunnelSet
	// observe, when set, hears every upstream attempt's outcome: the
	// passive health signal. One atomic load per attempt when unset.
	observe atomic.Pointer[OutcomeObserver]

	mu  sync.Mutex
	set *listen.Set
	// upstreams outlive generations when a pool's transport settings stay
	// the same, so reloads keep warm connections.
	upstreams map[string]*upstream
	stopSweep chan struct{}
	sweepOnce sync.Once
}

// OutcomeObserver hears the outcome of every upstream attempt, with the
// pool's name and the endpoint's address.
type OutcomeObserver func(pool, address string, o pool.Outcome)

// ObserveOutcomes installs fn (nil removes it). It runs on the request path:
// it must be cheap and must not block.
func (p *Proxy) ObserveOutcomes(fn OutcomeObserver) {
	if fn == nil {
		p.observe.Store(nil)
		return
	}
	p.observe.Store(&fn)
}

// New returns a proxy with no listeners.
func New(log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{
		log:       log,
		upstreams: map[string]*upstream{},
		metrics:   newProxyMetrics(),
		stopSweep: make(chan struct{}),
	}
	p.ids.init()
	return p
}

// Generation returns the generation in force.
func (p *Proxy) Generation() *Generation { return p.gen.Load() }

// Apply makes g current, all or nothing: pool state is adopted from the
// running generation, g is swapped in, and the listener set is reconciled
// (new sockets bound first). If a listener cannot be bound the previous
// generation is put back and the error returned. Listeners that g no longer
// has get drain to finish; the others keep their sockets and connections,
// upgraded ones (WebSocket) and HTTP/2 ones included.
func (p *Proxy) Apply(g *Generation, drain time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set == nil {
		p.set = listen.NewSet(p, listen.Options{NodeID: g.nodeID, Logger: p.log})
	}
	prev := p.gen.Load()
	if prev != nil {
		for name, prt := range g.pools {
			if old := prev.pools[name]; old != nil {
				prt.p.Adopt(old.p)
			}
		}
	}
	if err := p.applyAccessLog(g.accessLog); err != nil {
		return err
	}
	next, created := p.bindUpstreams(g)
	p.metrics.bind(g)
	g.adoptSecurity(prev)
	g.adoptCaches(prev)
	p.gen.Store(g)
	if err := p.set.Apply(g.listenerCfg, drain); err != nil {
		if prev != nil {
			p.gen.Store(prev)
			p.metrics.bind(prev)
		}
		for _, u := range created {
			u.closeIdle()
		}
		return err
	}
	// The new key sets take over the cached ones, then the old ones stop
	// fetching; requests still on prev keep its last sets.
	switch {
	case prev == nil:
		g.jwks.Start(nil, p.log)
	case prev != g:
		g.jwks.Start(prev.jwks, p.log)
		prev.jwks.Close()
		prev.closeAggregates()
	}
	for name, old := range p.upstreams {
		if next[name] != old {
			old.closeIdle()
		}
	}
	p.upstreams = next
	p.sweepOnce.Do(func() { go p.sweepLoop() })
	return nil
}

// bindUpstreams gives each pool of g its transport: the running one when
// the settings are unchanged (warm connections survive the reload), a new
// one otherwise. Replaced transports are closed by the caller once g is in
// force; connections busy at that moment finish their exchange first.
func (p *Proxy) bindUpstreams(g *Generation) (next map[string]*upstream, created []*upstream) {
	next = map[string]*upstream{}
	for name, prt := range g.pools {
		if old := p.upstreams[name]; old != nil && old.conf.equal(&prt.conf) {
			// Timeouts and the retry policy are read from prt.conf per
			// request, so they change without a new transport.
			prt.up = old
		} else {
			prt.up = newUpstream(prt.conf, p.metrics.pool(name))
			created = append(created, prt.up)
		}
		next[name] = prt.up
	}
	return next, created
}

func (p *Proxy) sweepLoop() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stopSweep:
			return
		case now := <-t.C:
			p.mu.Lock()
			ups := make([]*upstream, 0, len(p.upstreams))
			for _, u := range p.upstreams {
				ups = append(ups, u)
			}
			p.mu.Unlock()
			for _, u := range ups {
				u.sweepIdle(now)
			}
		}
	}
}

// Addrs returns the bound address of every listener by listener name.
func (p *Proxy) Addrs() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set == nil {
		return map[string]string{}
	}
	return p.set.Addrs()
}

// Shutdown stops accepting on every listener and waits up to ctx's deadline
// for in-flight requests; upgraded connections are closed when it is over.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	set := p.set
	ups := p.upstreams
	p.upstreams = map[string]*upstream{}
	p.mu.Unlock()
	var err error
	if set != nil {
		err = set.Shutdown(ctx)
	}
	// Tunnels may outlive the listener's own drain: give them the rest of
	// the drain time, then close them.
	for p.tunnels.count() > 0 {
		select {
		case <-ctx.Done():
			p.tunnels.closeAll()
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	for _, u := range ups {
		u.closeIdle()
	}
	select {
	case <-p.stopSweep:
	default:
		close(p.stopSweep)
	}
	if al := p.alog.Swap(nil); al != nil {
		al.close()
	}
	if g := p.gen.Load(); g != nil {
		g.jwks.Close()
		g.closeAggregates()
	}
	if errors.Is(err, listen.ErrClosed) {
		err = nil
	}
	return err
}
