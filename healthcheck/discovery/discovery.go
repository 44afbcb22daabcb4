// Package discovery fills pools from service registries: static lists, DNS
// (A/AAAA, SRV), etcd and Consul, all behind one Provider interface.
//
// A provider only talks to its registry. The Watcher in front of it owns
// the rules that keep a pool safe (Traefik's configuration watcher is the
// model): it keeps the last set the registry gave, and when the registry
// cannot be reached it keeps serving that set and says so (state stale,
// with the error and since when) instead of emptying the pool; it drops
// updates identical to the set already applied; and it throttles bursts,
// so that a registry changing ten keys in a row rebuilds the pool once.
//
// Testing: etcd is tested against a real etcd (Debian's etcd-server 3.4),
// DNS against a real DNS server (github.com/miekg/dns) on loopback. Consul
// is tested against the documented /v1/health/service API with blocking
// queries, served by the test, not against a live agent: no Consul agent
// can be installed here (its build needs modules under a non-open licence).
package discovery

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Endpoint is one discovered upstream.
type Endpoint struct {
	Address string `json:"address"` // host:port
	Weight  int    `json:"weight"`
}

// Sink receives what a provider learns. Set and Fail may be called from any
// goroutine, but not concurrently by one provider.
type Sink interface {
	// Set is the registry's complete current set (not a delta).
	Set(eps []Endpoint)
	// Fail says the registry could not be read: the last set stays.
	Fail(err error)
}

// Provider talks to one registry until ctx ends. It calls s.Set with every
// new complete set and s.Fail whenever the registry cannot be reached, and
// retries on its own.
type Provider interface {
	Run(ctx context.Context, s Sink)
}

// The states of a source.
const (
	StatePending = "pending" // no answer yet: the pool keeps its static endpoints
	StateOK      = "ok"
	StateStale   = "stale" // the registry failed: the pool keeps the last set
)

// Status is a source as the admin API and dashboard show it.
type Status struct {
	Name      string     `json:"name"`
	Provider  string     `json:"provider"`
	Pool      string     `json:"pool"`
	State     string     `json:"state"`
	Error     string     `json:"error,omitempty"`
	Since     time.Time  `json:"since"`                 // when the state began
	Updated   time.Time  `json:"updated,omitzero"`      // when the set last changed
	Succeeded time.Time  `json:"last_success,omitzero"` // when the registry last answered
	Endpoints []Endpoint `json:"endpoints"`
}

// Watcher runs a provider and hands the pool de-duplicated, throttled,
// never-blinking updates.
type Watcher struct {
	provider Provider
	throttle time.Duration
	apply    func([]Endpoint)

	mu      sync.Mutex
	st      Status
	have    bool       // a set was received
	applied []Endpoint // last set handed to apply
	pending []Endpoint // newest set not yet applied (throttled)
	timer   *time.Timer
	lastApp time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewWatcher wraps p. apply receives each new set (sorted by address), at
// most once per throttle, on a goroutine of the watcher's; name, provider
// and pool label the status.
func NewWatcher(name, provider, pool string, p Provider, throttle time.Duration, apply func([]Endpoint)) *Watcher {
	return &Watcher{
		provider: p, throttle: throttle, apply: apply,
		st: Status{Name: name, Provider: provider, Pool: pool, State: StatePending, Since: time.Now(), Endpoints: []Endpoint{}},
	}
}

// Start runs the provider until Stop.
func (w *Watcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		w.provider.Run(ctx, w)
	}()
}

// Stop ends the provider and waits for it; no apply starts afterwards.
func (w *Watcher) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.apply = nil
	w.mu.Unlock()
}

// Status returns the source's state and its current set.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Endpoints = slices.Clone(w.st.Endpoints)
	return st
}

// Endpoints returns the set last applied, and whether there is one (false
// until the registry first answered).
func (w *Watcher) Endpoints() ([]Endpoint, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.applied), w.applied != nil
}

// Normalize sorts a set by address and drops repeated addresses (the first
// wins), so that equal sets compare equal whatever order a registry lists
// them in.
func Normalize(eps []Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(eps))
	seen := map[string]bool{}
	for _, e := range eps {
		if seen[e.Address] {
			continue
		}
		seen[e.Address] = true
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

// Set implements Sink.
func (w *Watcher) Set(eps []Endpoint) {
	eps = Normalize(eps)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.st.State != StateOK {
		w.st.State, w.st.Since, w.st.Error = StateOK, now, ""
	}
	w.st.Succeeded = now
	w.have = true
	if w.pending == nil && w.applied != nil && slices.Equal(eps, w.applied) {
		return // nothing new
	}
	if w.pending != nil && slices.Equal(eps, w.pending) {
		return
	}
	w.pending = eps
	if w.timer != nil {
		return // the armed timer applies the newest set
	}
	wait := w.throttle - now.Sub(w.lastApp)
	if w.applied == nil || wait <= 0 {
		// The first set, and the first change after a quiet spell, go
		// out at once; only bursts wait.
		w.flushLocked(now)
		return
	}
	w.timer = time.AfterFunc(wait, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.timer = nil
		w.flushLocked(time.Now())
	})
}

// flushLocked applies the pending set; w.mu is held. apply runs under the
// lock so that updates reach the pool in order.
func (w *Watcher) flushLocked(now time.Time) {
	if w.pending == nil || w.apply == nil {
		return
	}
	eps := w.pending
	w.pending = nil
	if w.applied != nil && slices.Equal(eps, w.applied) {
		return // the burst ended where it began
	}
	w.applied = eps
	w.lastApp = now
	w.st.Updated = now
	w.st.Endpoints = slices.Clone(eps)
	w.apply(slices.Clone(eps))
}

// Fail implements Sink.
func (w *Watcher) Fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.st.State == StateOK || (w.st.State == StatePending && w.st.Error == "") {
		w.st.Since = time.Now()
	}
	if w.st.State == StateOK {
		w.st.State = StateStale
	}
	w.st.Error = err.Error()
}
