// Package daemon runs a Portcullis node: it loads the config, applies it to
// every subsystem as one transaction, serves the admin API, reloads on SIGHUP,
// on a change of the file and on request, and shuts down gracefully.
//
// A config change flows one way:
//
//	file → config.Load (decode, defaults, validate) → compile (l7.Compile, l4 services)
//	     → apply (bind new sockets, swap generations) → subscribers
//
// Every step before apply is pure; a failure there leaves the running
// generation untouched. Apply binds new sockets before it swaps anything and
// undoes its own binds on failure.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/portcullis-lb/portcullis/healthcheck"
	"github.com/portcullis-lb/portcullis/internal/admin"
	"github.com/portcullis-lb/portcullis/internal/buildinfo"
	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/internal/demo"
	"github.com/portcullis-lb/portcullis/internal/logging"
	"github.com/portcullis-lb/portcullis/internal/metrics"
	"github.com/portcullis-lb/portcullis/l7"
	"github.com/portcullis-lb/portcullis/l7/ratelimit"
)

// Options are the command line's settings for a daemon.
type Options struct {
	ConfigPath string
	// WatchConfig reloads when the file changes on disk.
	WatchConfig bool
	// Logger overrides the config's log settings (tests).
	Logger *logging.Logger
}

// generation is what one successful load produced. Immutable.
type generation struct {
	cfg      *config.Config
	token    string
	loadedAt time.Time
	l7       *l7.Generation
	// clusterLimiters is l7's cluster-scoped rate limiters (rateSync).
	clusterLimiters map[string]*ratelimit.Limiter
}

// Daemon is a running node.
type Daemon struct {
	opts    Options
	log     *logging.Logger
	metrics *metrics.Metrics
	admin   *admin.Server
	proxy   *l7.Proxy
	demo    *demo.Backends
	l4      *l4Plane
	health  *healthcheck.Manager
	cluster *clusterPlane
	bgp     *bgpPlane
	rl      *rateSync
	routes  routeWindow
	passive passive

	gen      atomic.Pointer[generation]
	draining atomic.Bool
	// reloadMu serialises loads: two triggers at once (a signal and an
	// editor's save) must not interleave their applies.
	reloadMu   sync.Mutex
	lastDigest string
	started    time.Time
}

// Run loads the config, starts everything, and blocks until ctx is done or
// SIGTERM/SIGINT arrives; then it drains and returns.
func Run(ctx context.Context, opts Options) error {
	// Signals first: a SIGHUP during a slow start (a cluster join can take
	// seconds) must wait in the channel, not kill the process by default.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	log := opts.Logger
	if log == nil {
		log = logging.New(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	}
	d := &Daemon{opts: opts, log: log, metrics: metrics.New(), started: time.Now(), cluster: &clusterPlane{}, bgp: &bgpPlane{}}
	d.proxy = l7.New(log.With("component", "l7"))
	d.metrics.Registry.MustRegister(d.proxy.Collectors()...)
	d.rl = d.newRateSync()
	d.demo = demo.New(log.With("component", "demo"))
	d.admin = admin.New(d, d.metrics.Registry, log.With("component", "admin"))
	d.startHealth()
	d.mountAdmin()
	d.mountClusterAdmin()
	d.mountBGPAdmin()
	d.mountCacheAdmin()

	if err := d.apply(cfg); err != nil {
		d.closeSubsystems(context.Background())
		return err
	}
	if err := d.admin.Listen(cfg.Admin.Listen); err != nil {
		d.closeSubsystems(context.Background())
		return fmt.Errorf("admin listener %s: %w", cfg.Admin.Listen, err)
	}
	// The cluster comes last: the node advertises itself able to serve
	// only once XDP and the listeners are up.
	if err := d.applyCluster(cfg); err != nil {
		_ = d.admin.Shutdown(context.Background())
		d.closeSubsystems(context.Background())
		return err
	}
	// BGP after the cluster: the announce decision reads its witness and
	// agreed health.
	if err := d.applyBGP(cfg); err != nil {
		_ = d.admin.Shutdown(context.Background())
		d.leaveCluster(context.Background(), 0)
		d.closeSubsystems(context.Background())
		return err
	}
	log.Info("portcullis started", "version", buildinfo.Version, "node", cfg.Node.Name, "config", cfg.Path, "digest", short(cfg.Digest))

	changes := make(chan struct{}, 1)
	if opts.WatchConfig {
		stop, err := watchFile(opts.ConfigPath, changes)
		if err != nil {
			log.Warn("not watching the config file; reload with SIGHUP or the admin API", "err", err)
		} else {
			defer stop()
		}
	}

	for {
		select {
		case <-ctx.Done():
			return d.shutdown()
		case <-changes:
			d.reloadIfChanged()
		case s := <-sigs:
			if s == syscall.SIGHUP {
				_ = d.Reload(ctx, "SIGHUP")
				continue
			}
			log.Info("shutting down", "signal", s.String())
			return d.shutdown()
		}
	}
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// apply compiles cfg and makes it current, all or nothing.
func (d *Daemon) apply(cfg *config.Config) error {
	token, err := cfg.AdminToken()
	if err != nil {
		return err
	}
	l7gen, err := l7.Compile(cfg)
	if err != nil {
		return err
	}
	old := d.gen.Load()
	// Checks and discovery first: the L4 services and L7 pools below are
	// computed with the health they report.
	if err := d.health.Apply(cfg); err != nil {
		return err
	}
	l4svcs, err := d.l4ServicesWithHealth(cfg)
	if err != nil {
		d.rollbackHealth(old)
		return err
	}
	if old != nil && old.cfg.Admin.Listen != cfg.Admin.Listen {
		d.log.Warn("admin.listen changed: it takes effect at the next restart", "running", old.cfg.Admin.Listen, "new", cfg.Admin.Listen)
	}
	var demoAddrs []string
	if cfg.Demo != nil {
		demoAddrs = cfg.Demo.Backends
	}
	// Demo backends first: they are upstreams of the new routes.
	if err := d.demo.Apply(demoAddrs); err != nil {
		d.rollbackHealth(old)
		return err
	}
	if err := d.applyL4(cfg, l4svcs); err != nil {
		d.rollbackDemo(old)
		d.rollbackHealth(old)
		return err
	}
	if err := d.proxy.Apply(l7gen, cfg.Shutdown.Drain.D()); err != nil {
		d.rollbackDemo(old)
		d.rollbackHealth(old)
		if old != nil {
			// Put the dataplane back on the old services; the proxy
			// never switched.
			if l4old, lerr := d.l4ServicesWithHealth(old.cfg); lerr == nil {
				_ = d.applyL4(old.cfg, l4old)
			}
		}
		return err
	}
	gen := &generation{cfg: cfg, token: token, loadedAt: time.Now(), l7: l7gen, clusterLimiters: l7gen.ClusterLimiters()}
	d.gen.Store(gen)
	d.setPassivePools(cfg)
	d.syncPools(cfg, gen)
	d.log.SetLevel(cfg.Log.Level)
	d.metrics.ConfigInfo.Reset()
	d.metrics.ConfigInfo.WithLabelValues(cfg.Digest).Set(1)
	d.metrics.LastReload.SetToCurrentTime()
	return nil
}

func (d *Daemon) rollbackHealth(old *generation) {
	if old != nil {
		_ = d.health.Apply(old.cfg)
	}
}

func (d *Daemon) rollbackDemo(old *generation) {
	var addrs []string
	if old != nil && old.cfg.Demo != nil {
		addrs = old.cfg.Demo.Backends
	}
	_ = d.demo.Apply(addrs)
}

// Reload re-reads the config file and applies it. On failure the running
// config stays and the error lists every problem.
func (d *Daemon) Reload(_ context.Context, reason string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	b, err := os.ReadFile(d.opts.ConfigPath)
	return d.reload(reason, b, err)
}

// reload applies the config file's bytes b (or reports readErr, the error
// reading them). Callers hold reloadMu.
func (d *Daemon) reload(reason string, b []byte, readErr error) error {
	if d.draining.Load() {
		return errors.New("shutting down: reloads are refused")
	}
	start := time.Now()
	// Remember the bytes tried, valid or not, so that the file watcher does
	// not reject (and count) the same broken file again on every event.
	var cfg *config.Config
	err := readErr
	if err != nil {
		err = config.Errors{{File: d.opts.ConfigPath, Msg: err.Error()}} // as config.Load
	} else {
		d.lastDigest = config.DigestOf(b)
		cfg, err = config.Parse(d.opts.ConfigPath, b)
	}
	if err == nil {
		err = d.apply(cfg)
	}
	if err != nil {
		d.metrics.Reloads.WithLabelValues("failure").Inc()
		attrs := []any{"reason", reason, "running_digest", short(d.gen.Load().cfg.Digest)}
		if es := config.AsErrors(err); es != nil {
			for _, e := range es {
				attrs = append(attrs, slog.String("error", e.Error()))
			}
		} else {
			attrs = append(attrs, "err", err)
		}
		d.log.Error("config reload rejected; the running config keeps serving", attrs...)
		return err
	}
	if err := d.applyCluster(cfg); err != nil {
		d.log.Error("cluster update failed; the node keeps its previous cluster settings", "err", err)
	}
	if err := d.applyBGP(cfg); err != nil {
		d.log.Error("BGP update failed; the node keeps its previous BGP settings", "err", err)
	}
	d.metrics.Reloads.WithLabelValues("success").Inc()
	d.log.Info("config reloaded", "reason", reason, "digest", short(cfg.Digest), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// reloadIfChanged reloads on a file event unless the bytes are the ones
// already tried: editors fire several events per save, and a rejected file
// must not be re-rejected (and re-counted) for every one of them.
func (d *Daemon) reloadIfChanged() {
	cfgBytes, err := os.ReadFile(d.opts.ConfigPath)
	if err != nil {
		return // mid-rename; the next event will tell
	}
	digest := config.DigestOf(cfgBytes)
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if digest != d.lastDigest && digest != d.gen.Load().cfg.Digest {
		_ = d.reload("file changed", cfgBytes, nil)
	}
}

// watchFile watches the config file's folder (editors and config managers
// replace files by rename, which a watch on the file itself would miss) and
// signals changes, debounced so one save makes one reload. When the path
// goes through symbolic links (Kubernetes ConfigMaps swap a "..data" link
// in the folder; /etc files often link elsewhere), the folder the links
// resolve to is watched too and any change there counts: the reload
// compares the file's bytes, so a change elsewhere costs one read.
func watchFile(path string, out chan<- struct{}) (func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	// The resolved folder, watched while the links lead there; moved when
	// a swap makes them lead elsewhere. follow resolves the path once and
	// reports whether it goes through a link.
	target := ""
	follow := func() (linked bool) {
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return false
		}
		if rd := filepath.Dir(real); rd != target && rd != dir {
			if target != "" {
				_ = w.Remove(target)
			}
			if w.Add(rd) == nil {
				target = rd
			}
		}
		return real != abs
	}
	follow()
	go func() {
		var timer *time.Timer
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				if !follow() && filepath.Clean(ev.Name) != abs {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(200*time.Millisecond, func() {
					select {
					case out <- struct{}{}:
					default:
					}
				})
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return func() { w.Close() }, nil
}

func (d *Daemon) shutdown() error {
	// Under reloadMu: a reload in progress finishes first, and none starts
	// after (it would rejoin the cluster this node is leaving).
	d.reloadMu.Lock()
	d.draining.Store(true)
	d.reloadMu.Unlock()
	cfg := d.gen.Load().cfg
	drain := cfg.Shutdown.Drain.D()
	// Routers first: they stop sending new flows here while everything
	// still forwards (the other nodes pick the same backends). The wait
	// is bgp.withdraw_settle of its own, before the drain's clock starts:
	// sharing one deadline would leave a short drain no time to drain.
	d.withdrawBGP()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	// The last rate-limit counts go out while the peers still listen.
	d.stopRateSync()
	// VIPs go to the peer first; XDP keeps forwarding what still reaches
	// this node's MAC while the neighbours update.
	d.leaveCluster(ctx, drain)
	d.log.Info("draining", "for", drain)
	err := d.proxy.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		d.log.Warn("drain time over; closed the remaining connections")
	}
	d.closeSubsystems(ctx)
	_ = d.admin.Shutdown(ctx)
	d.log.Info("stopped")
	return nil
}

func (d *Daemon) closeSubsystems(ctx context.Context) {
	d.health.Close()
	d.demo.Close(ctx)
	// Sessions close (Cease) before XDP goes: nothing is announced by
	// then. Its own short bound: an expired drain must not skip the
	// NOTIFICATION that makes the routers drop this node at once.
	bctx, bcancel := context.WithTimeout(context.Background(), bgpStopTimeout)
	d.stopBGP(bctx)
	bcancel()
	d.closeL4()
}

// Config implements admin.Daemon.
func (d *Daemon) Config() *config.Config { return d.gen.Load().cfg }

// Token implements admin.Daemon.
func (d *Daemon) Token() string { return d.gen.Load().token }

// Ready implements admin.Daemon.
func (d *Daemon) Ready() bool { return d.gen.Load() != nil && !d.draining.Load() }

// Status implements admin.Daemon.
func (d *Daemon) Status() any {
	g := d.gen.Load()
	return map[string]any{
		"node":       g.cfg.Node.Name,
		"version":    buildinfo.Version,
		"commit":     buildinfo.GetCommit(),
		"started_at": d.started.UTC().Format(time.RFC3339),
		"ready":      d.Ready(),
		"config": map[string]any{
			"path":      g.cfg.Path,
			"digest":    g.cfg.Digest,
			"loaded_at": g.loadedAt.UTC().Format(time.RFC3339Nano),
		},
		"listeners": d.proxy.Addrs(),
		"l4":        d.l4Status(),
		"bgp":       d.bgpView(),
	}
}
