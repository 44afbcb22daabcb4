// Package pool holds a pool's endpoints and chooses one per request: the
// balancing algorithm, passive outlier ejection, the per-endpoint circuit
// breaker and the retry budget.
//
// The hot path never takes a lock. The endpoint set is immutable and behind
// an atomic.Pointer, so SetEndpoints (discovery, health) swaps it whole and a
// Pick sees either the old set or the new one. Per-endpoint counters (in
// flight, consecutive failures, ejection) live in a state object that is
// shared between the sets and generations that contain the same address, so
// a reload or an endpoint-set change keeps what was learnt about an endpoint.
// Only ejection decisions take the pool's mutex, because they must count
// how many endpoints are already out; they happen after failures, not per
// request.
package pool

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4/maglev"
)

// Errors from Pick.
var (
	// ErrNoEndpoint means the pool has no endpoint in service (none
	// configured, all drained or ejected): answer 503.
	ErrNoEndpoint = errors.New("pool: no endpoint available")
	// ErrOverloaded means every endpoint in service is at max_concurrent:
	// answer 503 with Retry-After.
	ErrOverloaded = errors.New("pool: every endpoint is at its concurrency limit")
)

// Outcome is how one attempt at an endpoint ended, reported by Done.
type Outcome struct {
	// Status is the response status, 0 when there was none.
	Status int
	// ConnectError: no connection could be made (refused, unreachable, TLS
	// handshake failure, connect timeout).
	ConnectError bool
	// Timeout: the response header or total timeout expired.
	Timeout bool
	// Reset: the connection or stream was reset before a response.
	Reset bool
	// RefusedStream: HTTP/2 REFUSED_STREAM or GOAWAY before processing; the
	// endpoint shed load, which is not a failure of the endpoint.
	RefusedStream bool
	// Duration of the attempt.
	Duration time.Duration
}

// Endpoint is one upstream server as a Pick returns it. Immutable; the
// counters are in st, shared by every Endpoint value for the same address.
type Endpoint struct {
	// Address is host:port.
	Address string
	// Weight is the endpoint's share; 0 drains it (no new picks; sticky
	// clients stay).
	Weight int

	id    string // opaque sticky-cookie value
	st    *state
	pool  *Pool
	retry bool      // handed out for a retry: Done also ends the retry
	twin  *Endpoint // the same endpoint with retry flipped
}

// state is what the proxy knows about an endpoint; it outlives sets and
// generations.
type state struct {
	inflight     atomic.Int64
	requests     atomic.Uint64
	failures     atomic.Uint64
	c5xx         atomic.Int32
	cGateway     atomic.Int32
	cConnect     atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 = in service
	lastUntil    atomic.Int64 // end of the last ejection, to forget old ones
	ejections    atomic.Int32
}

// endpointSet is immutable once stored.
type endpointSet struct {
	eps   []*Endpoint // config order
	live  []*Endpoint // weight > 0
	byID  map[string]*Endpoint
	total int   // sum of live weights
	cum   []int // cumulative live weights, for weighted random draws
	rr    []int32
	rrPos atomic.Uint64
	mag   *maglev.Table
}

// Pool is a compiled config.Pool.
type Pool struct {
	name     string
	up       *Upstream
	alg      balancer
	sticky   *stickyConf
	maxConc  int64
	set      atomic.Pointer[endpointSet]
	inflight atomic.Int64 // attempts picked and not yet Done
	retries  atomic.Int64 // of which retries
	ejected  atomic.Int32 // endpoints marked ejected, possibly expired: a hint to read the clock
	now      func() int64

	budgetPercent, minRetries int64
	outlier                   outlierConf

	mu sync.Mutex // serialises set replacement and ejection decisions
}

type outlierConf struct {
	c5xx, cGateway, cConnect int32
	base, max                int64
	maxPercent               int
}

type stickyConf struct {
	cookie   string
	maxAge   int
	secure   bool
	httpOnly bool
}

// New compiles a pool. The config should be validated; missing keys take
// their defaults (config.Pool.SetDefaults), so a hand-built Pool works too.
func New(c config.Pool) (*Pool, error) {
	c.Retries.On = slices.Clone(c.Retries.On)
	if c.TLS != nil {
		t := *c.TLS
		c.TLS = &t
	}
	if c.Sticky != nil {
		s := *c.Sticky
		c.Sticky = &s
	}
	if c.Hash != nil {
		h := *c.Hash
		c.Hash = &h
	}
	c.SetDefaults()
	p := &Pool{
		name:          c.Name,
		maxConc:       int64(c.MaxConcurrent),
		now:           func() int64 { return time.Now().UnixNano() },
		budgetPercent: int64(*c.Retries.BudgetPercent),
		minRetries:    int64(*c.Retries.MinRetries),
		outlier: outlierConf{
			c5xx: int32(*c.Outlier.Consecutive5xx), cGateway: int32(*c.Outlier.ConsecutiveGatewayErrors), cConnect: int32(*c.Outlier.ConsecutiveConnectErrors),
			base: int64(c.Outlier.BaseEjectionTime), max: int64(c.Outlier.MaxEjectionTime), maxPercent: *c.Outlier.MaxEjectionPercent,
		},
	}
	var err error
	if p.up, err = compileUpstream(&c); err != nil {
		return nil, fmt.Errorf("pool %q: %w", c.Name, err)
	}
	if p.alg, err = newBalancer(c); err != nil {
		return nil, fmt.Errorf("pool %q: %w", c.Name, err)
	}
	if s := c.Sticky; c.Algorithm == "sticky" {
		p.sticky = &stickyConf{cookie: s.Cookie, maxAge: int(s.TTL.D().Seconds()), secure: s.Secure, httpOnly: *s.HTTPOnly}
	}
	if err := checkEndpoints(c.Endpoints); err != nil {
		return nil, fmt.Errorf("pool %q: %w", c.Name, err)
	}
	set, err := p.buildSet(c.Endpoints, nil)
	if err != nil {
		return nil, fmt.Errorf("pool %q: %w", c.Name, err)
	}
	p.set.Store(set)
	return p, nil
}

// Name is the pool's name.
func (p *Pool) Name() string { return p.name }

// Upstream is the pool's transport settings.
func (p *Pool) Upstream() *Upstream { return p.up }

// checkEndpoints reports what buildSet would silently repair: a config
// with such an endpoint list is refused outright.
func checkEndpoints(eps []config.Endpoint) error {
	seen := make(map[string]bool, len(eps))
	for _, ec := range eps {
		if seen[ec.Address] {
			return fmt.Errorf("endpoint %s is listed twice", ec.Address)
		}
		seen[ec.Address] = true
		if ec.Weight < 0 || ec.Weight > 65535 {
			return fmt.Errorf("endpoint %s: weight %d out of range (0-65535)", ec.Address, ec.Weight)
		}
	}
	return nil
}

// buildSet makes a set for eps, taking each endpoint's state from states
// when it has one for the address (so counters and ejections carry over).
// A repeated address keeps its first entry and weights are clamped to
// 0-65535, so that a runtime source (discovery) can never leave the pool
// without a set.
func (p *Pool) buildSet(eps []config.Endpoint, states map[string]*state) (*endpointSet, error) {
	s := &endpointSet{byID: make(map[string]*Endpoint, len(eps))}
	seen := make(map[string]bool, len(eps))
	for _, ec := range eps {
		if seen[ec.Address] {
			continue
		}
		seen[ec.Address] = true
		w := min(max(ec.Weight, 0), 65535)
		st := states[ec.Address]
		if st == nil {
			st = &state{}
		}
		e := &Endpoint{Address: ec.Address, Weight: w, id: stickyID(ec.Address), st: st, pool: p}
		e.twin = &Endpoint{Address: e.Address, Weight: w, id: e.id, st: st, pool: p, retry: true, twin: e}
		s.eps = append(s.eps, e)
		s.byID[e.id] = e
		if w > 0 {
			s.live = append(s.live, e)
			s.total += w
			s.cum = append(s.cum, s.total)
		}
	}
	if err := p.alg.prepare(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *endpointSet) states() map[string]*state {
	m := make(map[string]*state, len(s.eps))
	for _, e := range s.eps {
		m[e.Address] = e.st
	}
	return m
}

// SetEndpoints replaces the endpoints atomically: picks in progress finish on
// the old set, endpoints that stay keep their state (in flight, failures,
// ejection). A weight of 0 drains an endpoint. A repeated address keeps its
// first entry and weights are clamped to 0-65535 (a runtime source must not
// be able to empty the pool by one bad entry).
func (p *Pool) SetEndpoints(eps []config.Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, err := p.buildSet(eps, p.set.Load().states())
	if err != nil {
		// Only the Maglev build can fail, and not for a deduplicated list
		// that fits maglev.MaxSize; keep serving the old set.
		return
	}
	p.set.Store(s)
	p.recountEjected()
}

// Adopt carries endpoint state over from the previous generation's pool of
// the same name: call it on the new pool before it serves. Requests still
// running on the old pool report to the same state, so in-flight counts stay
// right across the reload.
func (p *Pool) Adopt(old *Pool) {
	if old == nil || old == p {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.set.Load()
	cfg := make([]config.Endpoint, len(cur.eps))
	for i, e := range cur.eps {
		cfg[i] = config.Endpoint{Address: e.Address, Weight: e.Weight}
	}
	s, err := p.buildSet(cfg, old.set.Load().states())
	if err != nil {
		return // cannot happen: the same list built the current set
	}
	p.set.Store(s)
	p.recountEjected()
}

func (p *Pool) recountEjected() {
	var n int32
	for _, e := range p.set.Load().eps {
		if e.st.ejectedUntil.Load() != 0 {
			n++
		}
	}
	p.ejected.Store(n)
}

// filter decides whether a candidate can take a request. It is passed by
// value so that handing it to an algorithm does not allocate.
type filter struct {
	tried      []*Endpoint
	allowTried bool
	max        int64
	now        int64 // read lazily, only when an endpoint is ejected
	p          *Pool
}

func (f *filter) usable(e *Endpoint) bool {
	if u := e.st.ejectedUntil.Load(); u != 0 {
		if f.now == 0 {
			f.now = f.p.now()
		}
		if f.now < u {
			return false
		}
		// The ejection is over: put the endpoint back.
		if e.st.ejectedUntil.CompareAndSwap(u, 0) {
			f.p.ejected.Add(-1)
		}
	}
	if f.max > 0 && e.st.inflight.Load() >= f.max {
		return false
	}
	if !f.allowTried {
		for _, t := range f.tried {
			if t.st == e.st {
				return false
			}
		}
	}
	return true
}

// Pick chooses an endpoint for r and counts the request in flight on it; the
// caller must call Done on it exactly once. tried are endpoints that already
// failed this request: they are avoided when another endpoint can serve, and
// a non-empty tried marks the attempt as a retry for the retry budget.
func (p *Pool) Pick(r *http.Request, tried []*Endpoint) (*Endpoint, error) {
	s := p.set.Load()
	if len(s.live) == 0 && p.sticky == nil {
		return nil, ErrNoEndpoint
	}
	f := filter{tried: tried, max: p.maxConc, p: p}
	for pass := 0; pass < 2; pass++ {
		// A few rounds, because a concurrent Pick can fill an endpoint
		// between the check and the increment.
		for range 4 {
			e := p.alg.pick(s, r, f)
			if e == nil {
				break
			}
			if p.acquire(e) {
				if len(tried) > 0 {
					p.retries.Add(1)
					return e.twin, nil
				}
				return e, nil
			}
		}
		if len(tried) == 0 {
			break
		}
		f.allowTried = true
	}
	return nil, p.whyNone(s)
}

func (p *Pool) acquire(e *Endpoint) bool {
	n := e.st.inflight.Add(1)
	if p.maxConc > 0 && n > p.maxConc {
		e.st.inflight.Add(-1)
		return false
	}
	e.st.requests.Add(1)
	p.inflight.Add(1)
	return true
}

// whyNone tells overload from absence after a failed Pick.
func (p *Pool) whyNone(s *endpointSet) error {
	f := filter{max: 0, allowTried: true, p: p}
	for _, e := range s.live {
		if f.usable(e) {
			return ErrOverloaded // in service but full
		}
	}
	return ErrNoEndpoint
}

// Done ends a request picked on e: one fewer in flight, and its outcome feeds
// outlier ejection.
func (e *Endpoint) Done(o Outcome) {
	st, p := e.st, e.pool
	st.inflight.Add(-1)
	p.inflight.Add(-1)
	if e.retry {
		p.retries.Add(-1)
	}
	oc := &p.outlier
	switch {
	case o.ConnectError || o.Timeout || o.Reset:
		st.failures.Add(1)
		n5, ng := st.c5xx.Add(1), st.cGateway.Add(1)
		nc := int32(0)
		if o.ConnectError {
			nc = st.cConnect.Add(1)
		} else {
			st.cConnect.Store(0)
		}
		if (oc.c5xx > 0 && n5 >= oc.c5xx) || (oc.cGateway > 0 && ng >= oc.cGateway) || (oc.cConnect > 0 && nc >= oc.cConnect) {
			p.eject(e)
		}
	case o.Status >= 500 && o.Status <= 599:
		st.failures.Add(1)
		st.cConnect.Store(0)
		n5 := st.c5xx.Add(1)
		var ng int32
		if o.Status == 502 || o.Status == 503 || o.Status == 504 {
			ng = st.cGateway.Add(1)
		} else {
			st.cGateway.Store(0)
		}
		if (oc.c5xx > 0 && n5 >= oc.c5xx) || (oc.cGateway > 0 && ng >= oc.cGateway) {
			p.eject(e)
		}
	case o.Status > 0:
		st.c5xx.Store(0)
		st.cGateway.Store(0)
		st.cConnect.Store(0)
		// An endpoint that has stayed in service for max_ejection_time
		// since its last ejection starts again from base_ejection_time.
		if st.ejections.Load() > 0 && p.now() > st.lastUntil.Load()+oc.max {
			st.ejections.Store(0)
		}
	}
	// No status and no error (the client went away, a refused stream): says
	// nothing about the endpoint.
}

// eject takes e out of service unless that would put more than
// max_ejection_percent of the pool out at once.
func (p *Pool) eject(e *Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := e.st
	now := p.now()
	s := p.set.Load()
	out, member := 0, false
	for _, x := range s.eps {
		if x.st == st {
			member = true
		} else if u := x.st.ejectedUntil.Load(); u != 0 && now < u {
			out++
		}
	}
	// Reset the counts either way: when the cap refuses, the next ejection
	// attempt waits for a fresh run of failures instead of taking the lock
	// on every one.
	st.c5xx.Store(0)
	st.cGateway.Store(0)
	st.cConnect.Store(0)
	if u := st.ejectedUntil.Load(); !member || (u != 0 && now < u) {
		return
	}
	if (out+1)*100 > p.outlier.maxPercent*len(s.eps) {
		return
	}
	k := int64(st.ejections.Add(1))
	d := p.outlier.base * k
	if d > p.outlier.max || d/k != p.outlier.base {
		d = p.outlier.max
	}
	if st.ejectedUntil.Swap(now+d) == 0 {
		p.ejected.Add(1)
	}
	st.lastUntil.Store(now + d)
}

// RetryAllowed reports whether the retry budget has room for one more retry:
// true while fewer than min_retries retries are in flight, or while the
// retries in flight, this one included, stay within budget_percent of all
// attempts in flight to the pool. A budget rather than a fixed count is
// what keeps retries from multiplying the load on an upstream that is
// already failing (each retry is counted from its Pick to its Done).
func (p *Pool) RetryAllowed() bool {
	r := p.retries.Load()
	if r < p.minRetries {
		return true
	}
	return (r+1)*100 <= p.budgetPercent*p.inflight.Load()
}

// EndpointState is one endpoint as the admin API shows it.
type EndpointState struct {
	Address      string    `json:"address"`
	Weight       int       `json:"weight"`
	InFlight     int64     `json:"in_flight"`
	Requests     uint64    `json:"requests"`
	Failures     uint64    `json:"failures"`
	Consecutive  int       `json:"consecutive_failures"`
	Ejected      bool      `json:"ejected"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	Ejections    int       `json:"ejections"`
}

// Snapshot returns the endpoints' states, in config order.
func (p *Pool) Snapshot() []EndpointState {
	s := p.set.Load()
	now := p.now()
	out := make([]EndpointState, 0, len(s.eps))
	for _, e := range s.eps {
		st := e.st
		es := EndpointState{
			Address: e.Address, Weight: e.Weight, InFlight: st.inflight.Load(),
			Requests: st.requests.Load(), Failures: st.failures.Load(),
			Consecutive: int(max(st.c5xx.Load(), st.cGateway.Load(), st.cConnect.Load())),
			Ejections:   int(st.ejections.Load()),
		}
		if u := st.ejectedUntil.Load(); u != 0 && now < u {
			es.Ejected, es.EjectedUntil = true, time.Unix(0, u)
		}
		out = append(out, es)
	}
	return out
}
