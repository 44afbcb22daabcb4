package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind says what a target belongs to.
type Kind string

// The kinds of target.
const (
	KindPool Kind = "pool" // an L7 pool endpoint; Name is its host:port
	KindVIP  Kind = "vip"  // an L4 VIP backend; Name is the backend's name
)

// Target is one thing with a health state: a pool endpoint or a VIP backend.
type Target struct {
	Kind  Kind   `json:"kind"`
	Group string `json:"group"` // the pool's or the VIP's name
	Name  string `json:"name"`  // endpoint address (pool) or backend name (vip)
}

// PoolTarget names an endpoint of an L7 pool.
func PoolTarget(pool, address string) Target { return Target{KindPool, pool, address} }

// VIPTarget names a backend of a VIP.
func VIPTarget(vip, backend string) Target { return Target{KindVIP, vip, backend} }

func (t Target) String() string { return string(t.Kind) + "/" + t.Group + "/" + t.Name }

// State is a target's health.
type State uint8

// The states. Unknown (never checked, or not checked at all) serves traffic:
// a restart or a reload must not take working backends out while their first
// checks are pending.
const (
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// MarshalText makes states read as words in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is the outcome of one active check.
type Result struct {
	OK      bool          `json:"ok"`
	Detail  string        `json:"detail,omitempty"` // why it failed, or e.g. "200 OK"
	Latency time.Duration `json:"latency_ns"`
	At      time.Time     `json:"at"`
}

// Outcome is one request's result as the L7 proxy saw it (the same fields as
// l7/pool.Outcome, so the core can pass its value through).
type Outcome struct {
	Status       int
	ConnectError bool
	Timeout      bool
	Reset        bool
}

// Transition is one change of a target's state or drain flag.
type Transition struct {
	At      time.Time     `json:"at"`
	From    State         `json:"from"`
	To      State         `json:"to"`
	Drained bool          `json:"drained"`
	Reason  string        `json:"reason"`
	Latency time.Duration `json:"latency_ns"` // of the check that decided, 0 for others
}

// Policy is how results turn into states for one target. The zero Policy
// (no active check) keeps the target Unknown: it serves and can be drained.
type Policy struct {
	Active    bool // an active check runs; without one passive signals are ignored
	Rise      int
	Fall      int
	SlowStart time.Duration
	// Passive thresholds (0 = off).
	Passive5xx, PassiveConnect, PassiveTimeout int
}

// Status is a target as the admin API and dashboard show it.
type Status struct {
	Target
	State           State        `json:"state"`
	Drained         bool         `json:"drained"`
	Checked         bool         `json:"checked"` // an active check runs
	Since           time.Time    `json:"since,omitzero"`
	Last            *Result      `json:"last_check,omitempty"`
	ConsecutiveOK   int          `json:"consecutive_ok"`
	ConsecutiveFail int          `json:"consecutive_fail"`
	Passive         int          `json:"passive_consecutive_failures"`
	SlowStartUntil  time.Time    `json:"slow_start_until,omitzero"`
	WeightPercent   int          `json:"weight_percent"` // slow start factor; 0 when drained or down
	History         []Transition `json:"history"`
}

// Change is pushed to subscribers when a target's traffic share may have
// changed: a transition, a drain, a slow-start step, a target added or
// removed.
type Change struct {
	Target  Target
	State   State
	Drained bool
	Removed bool
	Reason  string
	At      time.Time
}

// Clock is the time source (tests inject one).
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// DefaultHistory is how many transitions each target keeps.
const DefaultHistory = 32

// ErrUnknownTarget is returned for a target the store does not hold.
var ErrUnknownTarget = errors.New("healthcheck: unknown target")

type entry struct {
	pol            Policy
	state          State
	since          time.Time
	last           *Result
	okRun, failRun int
	p5xx, pConn    int
	pTimeout       int
	slowUntil      time.Time
	history        []Transition
}

// Store holds the health state of every target. It is safe for concurrent
// use; subscribers are called in order on one goroutine of the store's, never
// under its lock, so they may call back into it.
type Store struct {
	clock   Clock
	histLen int

	mu      sync.Mutex
	targets map[Target]*entry
	// drained outlives the target: an endpoint that discovery drops and
	// brings back, or a reload, does not undo an operator's drain.
	drained map[Target]bool
	subs    map[int]func(Change)
	nextSub int
	queue   []Change
	wake    chan struct{}
	ramp    *time.Timer
	closed  bool
	done    chan struct{}
}

// NewStore makes an empty store. clock may be nil (real time); history is
// the transitions kept per target (0 = DefaultHistory).
func NewStore(clock Clock, history int) *Store {
	if clock == nil {
		clock = realClock{}
	}
	if history <= 0 {
		history = DefaultHistory
	}
	s := &Store{
		clock: clock, histLen: history,
		targets: map[Target]*entry{}, drained: map[Target]bool{}, subs: map[int]func(Change){},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go s.dispatch()
	return s
}

// Close stops deliveries to subscribers.
func (s *Store) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if s.ramp != nil {
			s.ramp.Stop()
		}
		close(s.done)
	}
	s.mu.Unlock()
}

// Subscribe calls fn for every change, in order. The returned func stops it.
func (s *Store) Subscribe(fn func(Change)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *Store) dispatch() {
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 || s.closed {
				s.mu.Unlock()
				break
			}
			c := s.queue[0]
			s.queue = s.queue[1:]
			fns := make([]func(Change), 0, len(s.subs))
			for _, id := range slices.Sorted(maps.Keys(s.subs)) {
				fns = append(fns, s.subs[id])
			}
			s.mu.Unlock()
			for _, fn := range fns {
				fn(c)
			}
		}
	}
}

// emit queues a change; s.mu is held.
func (s *Store) emit(c Change) {
	if s.closed {
		return
	}
	s.queue = append(s.queue, c)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Ensure adds t with policy p, or updates the policy of a target already
// held (its state and history stay: a reload changes how it is judged, not
// what is known about it).
func (s *Store) Ensure(t Target, p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.targets[t]; ok {
		if !p.Active && e.pol.Active && e.state != Unknown {
			// Nothing checks it any more: a stale down would keep it out forever.
			s.transition(t, e, Unknown, "health check removed", 0)
		}
		e.pol = p
		return
	}
	s.targets[t] = &entry{pol: p, since: s.clock.Now()}
	s.emit(Change{Target: t, Drained: s.drained[t], Reason: "added", At: s.clock.Now()})
}

// Remove forgets t (its drain flag stays, see Store.drained).
func (s *Store) Remove(t Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.targets[t]; !ok {
		return
	}
	delete(s.targets, t)
	s.emit(Change{Target: t, Removed: true, Reason: "removed", At: s.clock.Now()})
}

// Targets lists the targets held, sorted.
func (s *Store) Targets() []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Target, 0, len(s.targets))
	for t := range s.targets {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// transition moves e to state to; s.mu is held.
func (s *Store) transition(t Target, e *entry, to State, reason string, lat time.Duration) {
	now := s.clock.Now()
	from := e.state
	e.state, e.since = to, now
	e.slowUntil = time.Time{}
	if from == Down && to == Up && e.pol.SlowStart > 0 {
		e.slowUntil = now.Add(e.pol.SlowStart)
		s.scheduleRamp()
	}
	s.record(e, Transition{At: now, From: from, To: to, Drained: s.drained[t], Reason: reason, Latency: lat})
	s.emit(Change{Target: t, State: to, Drained: s.drained[t], Reason: reason, At: now})
}

func (s *Store) record(e *entry, tr Transition) {
	e.history = append(e.history, tr)
	if n := len(e.history) - s.histLen; n > 0 {
		e.history = slices.Delete(e.history, 0, n)
	}
}

// Observe feeds one active check result into t's state machine: the first
// result decides an Unknown target; afterwards fall failures in a row take
// it down and rise successes in a row bring it up.
func (s *Store) Observe(t Target, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return
	}
	if r.At.IsZero() {
		r.At = s.clock.Now()
	}
	e.last = &r
	if r.OK {
		e.okRun++
		e.failRun = 0
		switch {
		case e.state == Unknown:
			s.transition(t, e, Up, "first check passed: "+r.Detail, r.Latency)
		case e.state == Down && e.okRun >= max(e.pol.Rise, 1):
			s.transition(t, e, Up, fmt.Sprintf("%d checks passed: %s", e.okRun, r.Detail), r.Latency)
		}
		return
	}
	e.failRun++
	e.okRun = 0
	switch {
	case e.state == Unknown:
		s.transition(t, e, Down, "first check failed: "+r.Detail, r.Latency)
	case e.state == Up && e.failRun >= max(e.pol.Fall, 1):
		s.transition(t, e, Down, fmt.Sprintf("%d checks failed: %s", e.failRun, r.Detail), r.Latency)
	}
}

// Report feeds one proxied request's outcome. When a passive threshold is
// reached the target goes down at once, and its run of active successes
// starts from zero, so it comes back only after rise active checks pass.
// Targets without an active check ignore reports: nothing would bring them
// back (the pool's own outlier ejection, which is time-bound, covers them).
func (s *Store) Report(t Target, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok || !e.pol.Active {
		return
	}
	p := &e.pol
	switch {
	case o.ConnectError || o.Timeout || o.Reset || (o.Status >= 500 && o.Status <= 599):
		e.p5xx++
		if o.ConnectError {
			e.pConn++
		} else {
			e.pConn = 0
		}
		if o.Timeout {
			e.pTimeout++
		} else {
			e.pTimeout = 0
		}
	case o.Status > 0:
		e.p5xx, e.pConn, e.pTimeout = 0, 0, 0
		return
	default:
		return // the client went away: says nothing about the endpoint
	}
	var why string
	switch {
	case p.PassiveConnect > 0 && e.pConn >= p.PassiveConnect:
		why = fmt.Sprintf("passive: %d connect errors in a row", e.pConn)
	case p.PassiveTimeout > 0 && e.pTimeout >= p.PassiveTimeout:
		why = fmt.Sprintf("passive: %d timeouts in a row", e.pTimeout)
	case p.Passive5xx > 0 && e.p5xx >= p.Passive5xx:
		why = fmt.Sprintf("passive: %d failures (5xx, connect errors, timeouts) in a row", e.p5xx)
	default:
		return
	}
	e.p5xx, e.pConn, e.pTimeout = 0, 0, 0
	e.okRun = 0
	if e.state != Down {
		s.transition(t, e, Down, why, 0)
	}
}

// Drain sets or clears the admin drain of t: weight 0, so established flows
// stay and new ones go elsewhere. It is independent of health: a drained
// backend that fails its checks is still taken down.
func (s *Store) Drain(t Target, drained bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownTarget, t)
	}
	if s.drained[t] == drained {
		return nil
	}
	if drained {
		s.drained[t] = true
	} else {
		delete(s.drained, t)
	}
	now := s.clock.Now()
	reason := "undrained by admin"
	if drained {
		reason = "drained by admin"
	}
	s.record(e, Transition{At: now, From: e.state, To: e.state, Drained: drained, Reason: reason})
	s.emit(Change{Target: t, State: e.state, Drained: drained, Reason: reason, At: now})
	return nil
}

// Effective is what traffic t should get, given its configured weight:
// down (take it out, move its flows), or a weight (0 when drained, ramped
// during slow start, and never below 1 for a positive configured weight so
// that slow start cannot drain a small-weight backend).
func (s *Store) Effective(t Target, configured int) (weight int, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return configured, false
	}
	return s.effective(t, e, configured, s.clock.Now())
}

func (s *Store) effective(t Target, e *entry, configured int, now time.Time) (int, bool) {
	if e.state == Down {
		return 0, true
	}
	if s.drained[t] || configured <= 0 {
		return 0, false
	}
	pct := slowStartPercent(e, now)
	w := (configured*pct + 99) / 100
	return max(w, 1), false
}

// slowStartPercent ramps linearly from 10 to 100 over the slow-start window.
func slowStartPercent(e *entry, now time.Time) int {
	if e.slowUntil.IsZero() || !now.Before(e.slowUntil) || e.pol.SlowStart <= 0 {
		return 100
	}
	elapsed := e.pol.SlowStart - e.slowUntil.Sub(now)
	return 10 + int(90*elapsed/e.pol.SlowStart)
}

// rampSteps is how many weight updates a slow start is pushed in: each one
// rewrites the L4 Maglev table, so not one per millisecond.
const rampSteps = 10

// scheduleRamp arms a timer that pushes slow-start weight steps; s.mu is held.
func (s *Store) scheduleRamp() {
	if s.ramp != nil || s.closed {
		return
	}
	now := s.clock.Now()
	step := time.Duration(0)
	for _, e := range s.targets {
		if !e.slowUntil.IsZero() && now.Before(e.slowUntil) {
			d := max(e.pol.SlowStart/rampSteps, 10*time.Millisecond)
			if step == 0 || d < step {
				step = d
			}
		}
	}
	if step == 0 {
		return
	}
	s.ramp = time.AfterFunc(step, s.rampTick)
}

func (s *Store) rampTick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ramp = nil
	now := s.clock.Now()
	active := false
	for t, e := range s.targets {
		if e.slowUntil.IsZero() {
			continue
		}
		reason := fmt.Sprintf("slow start: %d%%", slowStartPercent(e, now))
		if !now.Before(e.slowUntil) {
			e.slowUntil = time.Time{}
			reason = "slow start done"
		} else {
			active = true
		}
		s.emit(Change{Target: t, State: e.state, Drained: s.drained[t], Reason: reason, At: now})
	}
	if active {
		s.scheduleRamp()
	}
}

// Status returns one target's status.
func (s *Store) Status(t Target) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.targets[t]
	if !ok {
		return Status{}, false
	}
	return s.status(t, e, s.clock.Now()), true
}

func (s *Store) status(t Target, e *entry, now time.Time) Status {
	st := Status{
		Target: t, State: e.state, Drained: s.drained[t], Checked: e.pol.Active, Since: e.since,
		ConsecutiveOK: e.okRun, ConsecutiveFail: e.failRun, Passive: max(e.p5xx, e.pConn, e.pTimeout),
		History: slices.Clone(e.history),
	}
	if st.History == nil {
		st.History = []Transition{}
	}
	if e.last != nil {
		r := *e.last
		st.Last = &r
	}
	if !e.slowUntil.IsZero() && now.Before(e.slowUntil) {
		st.SlowStartUntil = e.slowUntil
	}
	if e.state != Down && !st.Drained {
		st.WeightPercent = slowStartPercent(e, now)
	}
	return st
}

// Snapshot returns every target's status, sorted by target.
func (s *Store) Snapshot() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]Status, 0, len(s.targets))
	for t, e := range s.targets {
		out = append(out, s.status(t, e, now))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Target.String(), b.Target.String()) })
	return out
}

// MarshalJSON writes the latency as milliseconds too, for people.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		LatencyMS float64 `json:"latency_ms"`
	}{plain(r), float64(r.Latency.Microseconds()) / 1000})
}
