package healthcheck

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/healthcheck/discovery"
	"github.com/portcullis-lb/portcullis/internal/config"
)

// NextDelay is the wait before a target's next check: interval ± jitter
// percent, drawn uniformly. first is the wait before the very first check,
// a uniform part of one interval, so that the checks of a pool's endpoints
// spread over the interval instead of all firing right after a reload.
func NextDelay(interval time.Duration, jitterPct int, first bool, r *rand.Rand) time.Duration {
	if first {
		return time.Duration(r.Int64N(int64(interval) + 1))
	}
	if jitterPct <= 0 {
		return interval
	}
	span := int64(interval) * int64(jitterPct) / 100
	return interval + time.Duration(r.Int64N(2*span+1)-span)
}

// runner checks one target on its own schedule.
type runner struct {
	key    string // check name + config digest + target
	cancel context.CancelFunc
	done   chan struct{}
}

func startRunner(store *Store, t Target, c Checker, interval, timeout time.Duration, jitter int, key string) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{key: key, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		rnd := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		d := NextDelay(interval, jitter, true, rnd)
		for {
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			cctx, ccancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			detail, err := safeCheck(cctx, c)
			lat := time.Since(start)
			ccancel()
			if ctx.Err() != nil {
				return // stopped mid-check: the result says nothing
			}
			res := Result{OK: err == nil, Detail: detail, Latency: lat, At: time.Now()}
			if err != nil {
				res.Detail = err.Error()
			}
			store.Observe(t, res)
			d = NextDelay(interval, jitter, false, rnd)
		}
	}()
	return r
}

func (r *runner) stop() { r.cancel(); <-r.done }

// safeCheck runs one check and turns a panic into a failed check: a bug in
// one checker must not take the daemon, and the traffic it carries, down.
func safeCheck(ctx context.Context, c Checker) (detail string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("health checker panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return c.Check(ctx)
}

// Group names a pool or a VIP whose effective endpoint set changed.
type Group struct {
	Kind Kind
	Name string
}

// Options configure a Manager.
type Options struct {
	Log     *slog.Logger
	Clock   Clock // nil: real time
	History int   // transitions kept per target; 0: DefaultHistory
}

// Manager runs the health checks and discovery sources of one config,
// reconciles them on reload, and tells subscribers which pool or VIP to
// rebuild. One Manager lives as long as the daemon; its state (health,
// history, drains) carries over reloads.
type Manager struct {
	log   *slog.Logger
	store *Store

	mu       sync.Mutex
	cfg      *config.Config
	runners  map[string]*runner // by target string
	watchers map[string]*watcherEntry
	subs     map[int]func(Group)
	nextSub  int
	closed   bool
	cancel   func()
}

type watcherEntry struct {
	w   *discovery.Watcher
	cfg config.Discovery
}

// NewManager makes a manager with nothing to check yet; call Apply.
func NewManager(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	m := &Manager{
		log: o.Log, store: NewStore(o.Clock, o.History),
		runners: map[string]*runner{}, watchers: map[string]*watcherEntry{}, subs: map[int]func(Group){},
	}
	m.cancel = m.store.Subscribe(func(c Change) { m.notify(Group{c.Target.Kind, c.Target.Group}) })
	return m
}

// Store is the health state of every target.
func (m *Manager) Store() *Store { return m.store }

// Subscribe calls fn whenever a pool's or VIP's effective set may have
// changed; fn then reads PoolEndpoints or VIPBackend. Calls come in order
// from one goroutine and may be coalesced by the caller.
func (m *Manager) Subscribe(fn func(Group)) (cancel func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	return func() {
		m.mu.Lock()
		delete(m.subs, id)
		m.mu.Unlock()
	}
}

func (m *Manager) notify(g Group) {
	m.mu.Lock()
	fns := make([]func(Group), 0, len(m.subs))
	for _, id := range slices.Sorted(maps.Keys(m.subs)) {
		fns = append(fns, m.subs[id])
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(g)
	}
}

// Apply brings checks and discovery to cfg. Targets that stay keep their
// state; checks whose settings did not change keep running undisturbed;
// discovery sources whose settings did not change keep their set.
func (m *Manager) Apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("healthcheck: manager closed")
	}
	// Build the new discovery sources first: a source that cannot be
	// built fails the reload before anything running is touched.
	newW := map[string]*watcherEntry{}
	for _, d := range cfg.Discovery {
		if old, ok := m.watchers[d.Pool]; ok && reflect.DeepEqual(old.cfg, d) {
			newW[d.Pool] = old
			continue
		}
		p, err := m.provider(d)
		if err != nil {
			for pool, we := range newW {
				if m.watchers[pool] != we {
					we.w.Stop()
				}
			}
			return fmt.Errorf("discovery %q: %w", d.Name, err)
		}
		pool := d.Pool
		w := discovery.NewWatcher(d.Name, d.Provider, d.Pool, p, d.Throttle.D(), func([]discovery.Endpoint) {
			go m.discovered(pool)
		})
		newW[d.Pool] = &watcherEntry{w: w, cfg: d}
	}
	for pool, we := range m.watchers {
		if newW[pool] != we {
			we.w.Stop()
		}
	}
	old := m.watchers
	m.watchers = newW
	m.cfg = cfg
	for _, we := range newW {
		if old[we.cfg.Pool] != we {
			we.w.Start()
		}
	}
	m.reconcileLocked()
	return nil
}

// discovered reconciles after a discovery source applied a new set.
func (m *Manager) discovered(pool string) {
	m.mu.Lock()
	if !m.closed {
		m.reconcileLocked()
	}
	m.mu.Unlock()
	m.notify(Group{KindPool, pool})
}

func (m *Manager) provider(d config.Discovery) (discovery.Provider, error) {
	log := m.log.With("discovery", d.Name)
	switch d.Provider {
	case "dns":
		return &discovery.DNS{Name: d.DNS, Type: d.RecordType, Port: d.Port, Servers: d.Resolvers, Weight: d.Weight,
			MinRefresh: d.MinRefresh.D(), MaxRefresh: d.MaxRefresh.D(), Retry: d.RetryInterval.D(), Log: log}, nil
	case "etcd":
		return &discovery.Etcd{Endpoints: d.Endpoints, Prefix: d.Key, Weight: d.Weight, Retry: d.RetryInterval.D(), Log: log}, nil
	case "consul":
		c := &discovery.Consul{Agents: d.Endpoints, Service: d.Key, Tag: d.Tag, Datacenter: d.Datacenter, Weight: d.Weight,
			Wait: d.Wait.D(), Retry: d.RetryInterval.D()}
		if d.TokenFile != "" {
			b, err := os.ReadFile(d.TokenFile)
			if err != nil {
				return nil, err
			}
			c.Token = strings.TrimSpace(string(b))
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown provider %q", d.Provider)
}

// poolEndpointsLocked is the pool's endpoint list before health: the
// discovered set once its source has answered, else the static one.
func (m *Manager) poolEndpointsLocked(p *config.Pool) []config.Endpoint {
	if we := m.watchers[p.Name]; we != nil {
		if eps, ok := we.w.Endpoints(); ok {
			out := make([]config.Endpoint, len(eps))
			for i, e := range eps {
				out[i] = config.Endpoint{Address: e.Address, Weight: e.Weight}
			}
			return out
		}
	}
	return p.Endpoints
}

// reconcileLocked makes the store hold exactly the current targets and
// runs one checker per checked target; m.mu is held.
func (m *Manager) reconcileLocked() {
	cfg := m.cfg
	if cfg == nil {
		return
	}
	checks := map[string]*config.HealthCheck{}
	for i := range cfg.HealthChecks {
		h := &cfg.HealthChecks[i]
		if h.Pool != "" {
			checks["pool/"+h.Pool] = h
		} else {
			checks["vip/"+h.VIP] = h
		}
	}
	want := map[Target]bool{}
	wantRun := map[string]bool{}
	add := func(t Target, h *config.HealthCheck, mk func() (Checker, error)) {
		want[t] = true
		if h == nil {
			m.store.Ensure(t, Policy{})
			return
		}
		pol := Policy{Active: true, Rise: h.Rise, Fall: h.Fall, SlowStart: h.SlowStart.D()}
		if ps := h.Passive; ps != nil {
			pol.Passive5xx, pol.PassiveConnect, pol.PassiveTimeout = ps.Consecutive5xx, ps.ConsecutiveConnectErrors, ps.ConsecutiveTimeouts
		}
		m.store.Ensure(t, pol)
		// A runner is kept while the check's settings and the target's
		// own settings (in key) stay the same.
		key := fmt.Sprintf("%s|%+v", t, *h)
		wantRun[t.String()] = true
		if r := m.runners[t.String()]; r != nil {
			if r.key == key {
				return
			}
			r.stop()
			delete(m.runners, t.String())
		}
		c, err := mk()
		if err != nil {
			m.log.Error("health check not started", "check", h.Name, "target", t.String(), "err", err)
			m.store.Observe(t, Result{OK: false, Detail: "check cannot run: " + err.Error()})
			return
		}
		m.runners[t.String()] = startRunner(m.store, t, c, h.Interval.D(), h.Timeout.D(), *h.Jitter, key)
	}
	for i := range cfg.L7.Pools {
		p := &cfg.L7.Pools[i]
		h := checks["pool/"+p.Name]
		for _, e := range m.poolEndpointsLocked(p) {
			addr := e.Address
			add(PoolTarget(p.Name, addr), h, func() (Checker, error) { return poolChecker(h, addr) })
		}
	}
	for i := range cfg.VIPs {
		v := &cfg.VIPs[i]
		h := checks["vip/"+v.Name]
		for j := range v.Backends {
			b := &v.Backends[j]
			key := VIPTarget(v.Name, b.Name)
			if h != nil {
				// The backend's own settings are part of what the runner checks.
				h2 := *h
				h2.Name = fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%d", h.Name, b.Address, b.MAC, b.Forwarding, cfg.Node.Interface, cfg.L4.EncapSourceV4, cfg.L4.EncapSourceV6, cfg.L4.GUEPort)
				hh := &h2
				l4c := cfg.L4
				add(key, hh, func() (Checker, error) { return vipChecker(h, v, b, cfg.Node.Interface, &l4c) })
				continue
			}
			add(key, nil, nil)
		}
	}
	for _, t := range m.store.Targets() {
		if !want[t] {
			m.store.Remove(t)
		}
	}
	for k, r := range m.runners {
		if !wantRun[k] {
			r.stop()
			delete(m.runners, k)
		}
	}
}

// checkAddr replaces addr's port when the check has its own.
func checkAddr(addr string, port int) (string, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return net.JoinHostPort(host, p), nil
}

func poolChecker(h *config.HealthCheck, endpoint string) (Checker, error) {
	addr, err := checkAddr(endpoint, h.Port)
	if err != nil {
		return nil, err
	}
	return appChecker(h, addr)
}

func appChecker(h *config.HealthCheck, addr string) (Checker, error) {
	switch h.Type {
	case "http", "https":
		return NewHTTPChecker(h, addr)
	case "tcp":
		return &TCPChecker{Address: addr}, nil
	case "grpc":
		return NewGRPCChecker(addr, h.GRPCService), nil
	}
	return nil, fmt.Errorf("unknown check type %q", h.Type)
}

// vipChecker checks a VIP backend: the application check on the backend's
// own address and, for dsr-l2 backends with dsr_path on, the DSR probe.
func vipChecker(h *config.HealthCheck, v *config.VIP, b *config.VIPBackend, ifname string, l4c *config.L4) (Checker, error) {
	port := h.Port
	if port == 0 {
		port = v.Port
	}
	ba, err := netip.ParseAddr(b.Address)
	if err != nil {
		return nil, err
	}
	addr := netip.AddrPortFrom(ba.Unmap(), uint16(port)).String()
	if b.Forwarding != "dsr-l2" && b.Forwarding != "ipip" && b.Forwarding != "gue" || !*h.DSRPath {
		return appChecker(h, addr)
	}
	vip, err := netip.ParseAddr(v.Address)
	if err != nil {
		return nil, err
	}
	var mac net.HardwareAddr
	if b.MAC != "" || b.Forwarding == "dsr-l2" {
		if mac, err = net.ParseMAC(b.MAC); err != nil {
			return nil, err
		}
	}
	probe := &DSRChecker{Interface: ifname, BackendMAC: mac, VIP: vip, Port: uint16(v.Port), Backend: ba.Unmap()}
	if b.Forwarding == "ipip" || b.Forwarding == "gue" {
		// Through the same encapsulation as the traffic, from an address
		// of the encap source prefix, which the backends' decap
		// allow-list holds (else from this node's own address).
		probe.Encap = true
		if b.Forwarding == "gue" {
			probe.GUEPort = uint16(l4c.GUEPort)
		}
		src := l4c.EncapSourceV4
		if !ba.Unmap().Is4() {
			src = l4c.EncapSourceV6
		}
		if p, err := config.ParseEncapSource(src); err == nil {
			probe.OuterSource = p.Addr()
			if p.Bits() < p.Addr().BitLen()-1 {
				probe.OuterSource = p.Addr().Next() // not the prefix's network address
			}
		}
	}
	if h.Type == "tcp" && (h.Port == 0 || h.Port == v.Port) {
		return probe, nil // the probe is a TCP connect to the service
	}
	app, err := appChecker(h, addr)
	if err != nil {
		return nil, err
	}
	return AllOf{probe, app}, nil
}

// PoolEndpoints is what pool.SetEndpoints should get now: the pool's
// endpoints (discovered or static) with health applied. Down endpoints are
// left out; drained ones have weight 0 (sticky clients stay, new ones go
// elsewhere); slow start lowers weights. Unknown pools give nil.
func (m *Manager) PoolEndpoints(pool string) []config.Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg == nil {
		return nil
	}
	for i := range m.cfg.L7.Pools {
		p := &m.cfg.L7.Pools[i]
		if p.Name != pool {
			continue
		}
		src := m.poolEndpointsLocked(p)
		out := make([]config.Endpoint, 0, len(src))
		for _, e := range src {
			w, down := m.store.Effective(PoolTarget(pool, e.Address), e.Weight)
			if !down {
				out = append(out, config.Endpoint{Address: e.Address, Weight: w})
			}
		}
		return out
	}
	return nil
}

// VIPBackend is what the L4 map writer should set for one backend: Down
// (take it out of the Maglev table, its flows move) or Weight (0 drains:
// established flows stay). configured is the backend's weight from the
// config.
func (m *Manager) VIPBackend(vip, backend string, configured uint32) (weight uint32, down bool) {
	w, down := m.store.Effective(VIPTarget(vip, backend), int(configured))
	return uint32(w), down
}

// Report is the L7 proxy's passive signal for one request to an endpoint.
func (m *Manager) Report(pool, address string, o Outcome) {
	m.store.Report(PoolTarget(pool, address), o)
}

// Drain sets or clears the admin drain of a target.
func (m *Manager) Drain(t Target, drained bool) error { return m.store.Drain(t, drained) }

// Snapshot is the JSON the admin API and dashboard show.
type Snapshot struct {
	Targets   []Status           `json:"targets"`
	Discovery []discovery.Status `json:"discovery"`
}

// Snapshot returns every target and every discovery source.
func (m *Manager) Snapshot() Snapshot {
	s := Snapshot{Targets: m.store.Snapshot(), Discovery: []discovery.Status{}}
	m.mu.Lock()
	for _, we := range m.watchers {
		s.Discovery = append(s.Discovery, we.w.Status())
	}
	m.mu.Unlock()
	slices.SortFunc(s.Discovery, func(a, b discovery.Status) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// Close stops every check and discovery source.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	runners, watchers := m.runners, m.watchers
	m.runners, m.watchers = map[string]*runner{}, map[string]*watcherEntry{}
	m.mu.Unlock()
	for _, r := range runners {
		r.stop()
	}
	for _, we := range watchers {
		we.w.Stop()
	}
	m.cancel()
	m.store.Close()
}
