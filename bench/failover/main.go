//go:build linux

// Command failover measures the failover gap of a Portcullis pair (the
// real daemon, lan and fast cluster profiles) and of keepalived (VRRP,
// advert_int 1s and 100ms) in the same namespace topology: a bridge with a
// client, LB nodes a and b, backends be1 and be2 and a witness
// (cluster/e2e's lab, built with internal/netlab).
//
// The gap of one run is the time from the crash of the VIP's owner (link
// down, then kill -9 of the process group: LAB.md) to the end of the first
// successful new TCP connection (connect and one echo exchange) the client
// started after the crash; the client starts one every 20 ms, each with a
// 300 ms timeout. After each run the crashed node comes back (link up,
// restart) and the next run crashes whichever node owns the VIP then.
//
// With -idle D it instead runs the fast-profile pair idle for D with both
// cores loaded by busy loops and reports any VIP movement, membership
// flap or failed probe (the "no false failover" goal).
//
// Everything runs in namespaces it creates and removes. Root only. See
// run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/cluster/e2e"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

var (
	flagBin      = flag.String("bin", "", "portcullis binary (required for the portcullis settings)")
	flagRuns     = flag.Int("runs", 10, "crashes per setting")
	flagSettings = flag.String("settings", "fast,lan,keepalived-1s,keepalived-100ms", "comma-separated: fast, lan, keepalived-1s, keepalived-100ms")
	flagXDP      = flag.String("xdp", "native", "XDP mode of the portcullis nodes: native or generic")
	flagFlood    = flag.Bool("flood", false, "keep the bridge's unknown-unicast flooding to the LB ports (then the standby's XDP serves frames flooded after the owner's link died, before any failover: see cluster/e2e SetFlood)")
	flagIdle     = flag.Duration("idle", 0, "instead of crashes: run the fast pair idle this long with both cores busy, and report false failovers")
	flagDir      = flag.String("dir", "", "configs and logs (default: a temporary folder, removed unless -keep)")
	flagKeep     = flag.Bool("keep", false, "keep -dir")
	flagVerbose  = flag.Bool("v", false, "print every run")
)

var webAddr = netip.AddrPortFrom(e2e.VIP, e2e.VIPPort).String()

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fatalf("needs root (network namespaces, XDP)")
	}
	dir := *flagDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "failover-bench-"); err != nil {
			fatalf("%v", err)
		}
		if !*flagKeep {
			defer os.RemoveAll(dir)
		}
	}
	// Labs are closed on return, and on SIGINT/SIGTERM.
	var labs []*netlab.Lab
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		for _, l := range labs {
			l.Close()
		}
		os.Exit(130)
	}()
	newLab := func() *netlab.Lab {
		nl, err := netlab.Create(netlab.Options{Prefix: "pcfo", StopGrace: 2 * time.Second})
		if err != nil {
			fatalf("lab: %v", err)
		}
		labs = append(labs, nl)
		return nl
	}
	closeLabs := func() {
		for _, l := range labs {
			if err := l.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "closing lab %s: %v\n", l.Name, err)
			}
		}
		labs = nil
	}
	defer closeLabs()

	if *flagIdle > 0 {
		if *flagBin == "" {
			fatalf("-idle needs -bin")
		}
		if err := idle(newLab(), filepath.Join(dir, "idle"), *flagIdle); err != nil {
			closeLabs()
			fatalf("idle: %v", err)
		}
		return
	}

	type row struct {
		name string
		gaps []time.Duration
		note string
	}
	var rows []row
	for _, s := range strings.Split(*flagSettings, ",") {
		s = strings.TrimSpace(s)
		sdir := filepath.Join(dir, s)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			fatalf("%v", err)
		}
		start := time.Now()
		var gaps []time.Duration
		var err error
		switch s {
		case "fast", "lan":
			if *flagBin == "" {
				fatalf("%s needs -bin", s)
			}
			gaps, err = portcullisRuns(newLab(), sdir, s, *flagRuns)
		case "keepalived-1s":
			gaps, err = keepalivedRuns(newLab(), sdir, "1", *flagRuns)
		case "keepalived-100ms":
			gaps, err = keepalivedRuns(newLab(), sdir, "0.1", *flagRuns)
		default:
			fatalf("unknown setting %q", s)
		}
		closeLabs()
		r := row{name: s, gaps: gaps}
		if err != nil {
			r.note = "stopped: " + err.Error()
			fmt.Fprintf(os.Stderr, "%s: %v (logs in %s)\n", s, err, sdir)
		}
		fmt.Fprintf(os.Stderr, "%s: %d runs in %s\n", s, len(gaps), time.Since(start).Round(time.Second))
		rows = append(rows, r)
	}

	fmt.Printf("\nFailover gap: crash of the owner (link down + kill -9) → first new TCP connection served (probe every 20 ms)\n")
	fmt.Printf("xdp=%s flood=%v\n\n", *flagXDP, *flagFlood)
	fmt.Printf("%-26s %5s %9s %9s %9s  %s\n", "setting", "runs", "median", "max", "min", "all (ms)")
	for _, r := range rows {
		label := map[string]string{
			"fast": "portcullis fast", "lan": "portcullis lan",
			"keepalived-1s": "keepalived advert 1s", "keepalived-100ms": "keepalived advert 100ms",
		}[r.name]
		if len(r.gaps) == 0 {
			fmt.Printf("%-26s %5d %9s %9s %9s  %s\n", label, 0, "-", "-", "-", r.note)
			continue
		}
		sorted := slices.Clone(r.gaps)
		slices.Sort(sorted)
		var all []string
		for _, g := range r.gaps {
			all = append(all, fmt.Sprint(g.Milliseconds()))
		}
		fmt.Printf("%-26s %5d %9s %9s %9s  %s %s\n", label, len(r.gaps), e2etest.MS(e2etest.Median(sorted)), e2etest.MS(sorted[len(sorted)-1]), e2etest.MS(sorted[0]), strings.Join(all, " "), r.note)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "failover: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	if *flagVerbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// crashAndMeasure probes the VIP, crashes the node with crash() and
// returns the gap.
func crashAndMeasure(client *netlab.Host, crash func() error, limit time.Duration) (time.Duration, error) {
	p := e2e.StartProber(client, webAddr, 20*time.Millisecond, 300*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	before := p.Results()
	okBefore := 0
	for _, r := range before {
		if r.Err == nil {
			okBefore++
		}
	}
	if okBefore == 0 {
		p.Stop()
		return 0, fmt.Errorf("the VIP does not serve before the crash (%d probes)", len(before))
	}
	crashAt := time.Now()
	if err := crash(); err != nil {
		p.Stop()
		return 0, err
	}
	_, ok := e2e.WaitFor(limit, func() bool {
		_, _, ok := e2e.FirstOKAfter(p.Results(), crashAt)
		return ok
	})
	rs := p.Stop()
	if !ok {
		return 0, fmt.Errorf("no service within %s of the crash", limit)
	}
	_, gap, _ := e2e.FirstOKAfter(rs, crashAt)
	return gap, nil
}

type pair struct {
	lab  *e2e.Lab
	cfg  map[string]e2e.NodeConfig
	d    map[string]*e2e.Daemon
	host map[string]*netlab.Host
}

func (p *pair) start(name string) error {
	d, err := p.lab.StartDaemon(p.host[name], p.lab.Config(p.cfg[name]))
	if err != nil {
		return err
	}
	p.d[name] = d
	return nil
}

// owner waits until one running node holds the VIP, the other does not,
// both are alive and healthy in each other's view and agree on the owner.
func (p *pair) owner(within time.Duration) (string, error) {
	var last string
	var owner string
	_, ok := e2e.WaitFor(within, func() bool {
		owner = ""
		var b strings.Builder
		holders := 0
		for _, name := range []string{"a", "b"} {
			has, _ := e2e.HasVIP(p.host[name])
			if has {
				holders++
				owner = name
			}
			cv, err := p.d[name].Cluster()
			fmt.Fprintf(&b, "%s: holds %v, view %+v (%v); ", name, has, cv.Owners, err)
			if err != nil || !cv.Healthy("a") || !cv.Healthy("b") {
				return false
			}
		}
		last = b.String()
		if holders != 1 {
			return false
		}
		for _, name := range []string{"a", "b"} {
			if cv, _ := p.d[name].Cluster(); cv.Owners["web"] != owner {
				return false
			}
		}
		return true
	})
	if !ok {
		return "", fmt.Errorf("the pair did not settle within %s: %s", within, last)
	}
	return owner, nil
}

func portcullisRuns(nl *netlab.Lab, dir, profile string, runs int) ([]time.Duration, error) {
	lab, err := e2e.Build(nl, e2e.Options{Bin: *flagBin, Dir: dir, XDPMode: *flagXDP, Backends: true, Flood: *flagFlood})
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	p := &pair{lab: lab, d: map[string]*e2e.Daemon{}, host: map[string]*netlab.Host{"a": lab.A, "b": lab.B},
		cfg: map[string]e2e.NodeConfig{
			"a": {Name: "a", Priority: 200, Addr: e2e.AAddr.Addr(), KeyFile: lab.KeyFile, Profile: profile},
			"b": {Name: "b", Priority: 100, Addr: e2e.BAddr.Addr(), KeyFile: lab.KeyFile, Profile: profile},
		}}
	for _, n := range []string{"a", "b"} {
		if err := p.start(n); err != nil {
			return nil, err
		}
	}
	var gaps []time.Duration
	for i := range runs {
		owner, err := p.owner(30 * time.Second)
		if err != nil {
			return gaps, err
		}
		d := p.d[owner]
		gap, err := crashAndMeasure(lab.Client, d.Crash, 30*time.Second)
		if err != nil {
			return gaps, fmt.Errorf("run %d (crash of %s): %w", i+1, owner, err)
		}
		gaps = append(gaps, gap)
		logf("%s run %d: crashed %s, gap %s", profile, i+1, owner, gap.Round(time.Millisecond))
		if err := p.host[owner].SetLinkUp(); err != nil {
			return gaps, err
		}
		if err := p.start(owner); err != nil {
			return gaps, err
		}
	}
	for _, d := range p.d {
		d.Proc.Stop(3 * time.Second)
	}
	return gaps, nil
}

// keepalived: one VRRP instance per LB node, both BACKUP with nopreempt
// (like the cluster's non-preemption), the VIP /32 on eth0. Each LB node
// serves the echo itself on :8080 (keepalived has no dataplane).
func keepalivedConf(name string, prio int, advert string) string {
	version := ""
	if advert != "1" {
		version = "  vrrp_version 3\n" // fractional advert_int needs VRRPv3
	}
	return fmt.Sprintf(`global_defs {
  router_id %s
%s  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int %s
  virtual_ipaddress {
    %s/32 dev eth0
  }
}
`, name, version, prio, advert, e2e.VIP)
}

func keepalivedRuns(nl *netlab.Lab, dir, advert string, runs int) ([]time.Duration, error) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		return nil, fmt.Errorf("keepalived is not installed (apt-get install keepalived): %w", err)
	}
	lab, err := e2e.Build(nl, e2e.Options{Dir: dir, Flood: *flagFlood})
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	hosts := map[string]*netlab.Host{"a": lab.A, "b": lab.B}
	prio := map[string]int{"a": 200, "b": 100}
	for _, h := range hosts {
		if _, err := lab.ServeEcho(h, fmt.Sprintf("0.0.0.0:%d", e2e.VIPPort)); err != nil {
			return nil, err
		}
	}
	procs := map[string]*netlab.Process{}
	seq := 0
	start := func(name string) error {
		conf := filepath.Join(dir, "keepalived-"+name+".conf")
		if err := os.WriteFile(conf, []byte(keepalivedConf(name, prio[name], advert)), 0o644); err != nil {
			return err
		}
		seq++
		// Fresh pid files each start: keepalived refuses to start over
		// the killed one's ("daemon is already running").
		run := filepath.Join(dir, fmt.Sprintf("run-%s-%d", name, seq))
		os.MkdirAll(run, 0o755)
		p, err := hosts[name].StartProcess(filepath.Join(dir, fmt.Sprintf("keepalived-%s-%d.log", name, seq)), bin,
			"--dont-fork", "--log-console", "--vrrp", "-f", conf,
			"-p", filepath.Join(run, "keepalived.pid"), "-r", filepath.Join(run, "vrrp.pid"), "-c", filepath.Join(run, "checkers.pid"))
		if err != nil {
			return err
		}
		procs[name] = p
		return nil
	}
	for _, n := range []string{"a", "b"} {
		if err := start(n); err != nil {
			return nil, err
		}
	}
	advertD := time.Second
	if advert == "0.1" {
		advertD = 100 * time.Millisecond
	}
	// Settled: exactly one node holds the VIP, and that stays so for
	// 4 advertisement intervals (a backup that would take over has done
	// so by then: master down interval = 3 × advert + skew).
	owner := func(within time.Duration) (string, error) {
		var holder string
		stableSince := time.Time{}
		_, ok := e2e.WaitFor(within, func() bool {
			h, n := "", 0
			for _, name := range []string{"a", "b"} {
				if procs[name].Exited() {
					return false
				}
				if has, _ := e2e.HasVIP(hosts[name]); has {
					h, n = name, n+1
				}
			}
			if n != 1 || h != holder {
				holder, stableSince = h, time.Now()
				return false
			}
			return time.Since(stableSince) > 4*advertD+200*time.Millisecond
		})
		if !ok {
			return "", fmt.Errorf("keepalived pair did not settle within %s", within)
		}
		return holder, nil
	}
	var gaps []time.Duration
	for i := range runs {
		o, err := owner(30 * time.Second)
		if err != nil {
			return gaps, err
		}
		gap, err := crashAndMeasure(lab.Client, func() error {
			if err := hosts[o].SetLinkDown(); err != nil {
				return err
			}
			procs[o].Kill(syscall.SIGKILL)
			procs[o].Wait()
			return nil
		}, 30*time.Second)
		if err != nil {
			return gaps, fmt.Errorf("run %d (crash of %s): %w", i+1, o, err)
		}
		gaps = append(gaps, gap)
		logf("keepalived %s run %d: crashed %s, gap %s", advert, i+1, o, gap.Round(time.Millisecond))
		// The killed keepalived left the VIP on eth0, as a killed
		// portcullis does; a restarted keepalived in BACKUP removes it.
		if err := hosts[o].SetLinkUp(); err != nil {
			return gaps, err
		}
		if err := start(o); err != nil {
			return gaps, err
		}
		// Let the restarted one come up as backup before judging.
		time.Sleep(3*advertD + 500*time.Millisecond)
	}
	for _, p := range procs {
		p.Stop(2 * time.Second)
	}
	return gaps, nil
}

// idle runs the fast pair for d with two busy loops (one per core) and
// counts VIP transitions, member deaths, suspicions and failed probes.
func idle(nl *netlab.Lab, dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lab, err := e2e.Build(nl, e2e.Options{Bin: *flagBin, Dir: dir, XDPMode: *flagXDP, Backends: true, Flood: *flagFlood})
	if err != nil {
		return err
	}
	defer lab.Close()
	p := &pair{lab: lab, d: map[string]*e2e.Daemon{}, host: map[string]*netlab.Host{"a": lab.A, "b": lab.B},
		cfg: map[string]e2e.NodeConfig{
			"a": {Name: "a", Priority: 200, Addr: e2e.AAddr.Addr(), KeyFile: lab.KeyFile, Profile: "fast"},
			"b": {Name: "b", Priority: 100, Addr: e2e.BAddr.Addr(), KeyFile: lab.KeyFile, Profile: "fast"},
		}}
	for _, n := range []string{"a", "b"} {
		if err := p.start(n); err != nil {
			return err
		}
	}
	owner, err := p.owner(30 * time.Second)
	if err != nil {
		return err
	}
	transitions := func() (float64, error) {
		sum := 0.0
		for _, n := range []string{"a", "b"} {
			m, err := p.d[n].Metrics()
			if err != nil {
				return 0, err
			}
			for k, v := range m {
				if strings.HasPrefix(k, "portcullis_vip_transitions_total") {
					sum += v
				}
			}
		}
		return sum, nil
	}
	t0, err := transitions()
	if err != nil {
		return err
	}
	logLines := func(sub string) int {
		n := 0
		for _, name := range []string{"a", "b"} {
			n += len(p.d[name].LogLines(sub))
		}
		return n
	}
	base := map[string]int{}
	keys := []string{"member dead", "member left", "Suspect", "vip gained", "vip released", "witness unreachable"}
	for _, k := range keys {
		base[k] = logLines(k)
	}

	// Busy loops: one per CPU, separate processes at normal priority.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ncpu := 2
	var busy []*exec.Cmd
	for range ncpu {
		c := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			return err
		}
		busy = append(busy, c)
	}
	defer func() {
		cancel()
		for _, c := range busy {
			c.Wait()
		}
	}()
	fmt.Fprintf(os.Stderr, "idle: owner %s, %d busy loops, running %s\n", owner, len(busy), d)
	pr := e2e.StartProber(lab.Client, webAddr, 100*time.Millisecond, time.Second)
	start := time.Now()
	ownerChanges := 0
	last := owner
	for time.Since(start) < d {
		time.Sleep(time.Second)
		for _, name := range []string{"a", "b"} {
			cv, err := p.d[name].Cluster()
			if err == nil && cv.Owners["web"] != last {
				ownerChanges++
				fmt.Fprintf(os.Stderr, "idle: %s at %s: %s's view says owner %q (was %q)\n", "OWNER CHANGE", time.Since(start).Round(time.Second), name, cv.Owners["web"], last)
				last = cv.Owners["web"]
			}
		}
	}
	rs := pr.Stop()
	cancel()
	t1, err := transitions()
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range rs {
		if r.Err != nil {
			failed++
		}
	}
	fmt.Printf("\nIdle run: fast profile, %s, %d busy loops on %d CPUs, xdp=%s\n", d, len(busy), ncpu, *flagXDP)
	fmt.Printf("  VIP transitions (portcullis_vip_transitions_total, both nodes): %v\n", t1-t0)
	fmt.Printf("  owner changes seen in the views (polled every 1s): %d\n", ownerChanges)
	for _, k := range keys {
		fmt.Printf("  log lines %-22q: %d\n", k, logLines(k)-base[k])
	}
	fmt.Printf("  probes (new connection every 100ms, 1s timeout): %d, failed %d\n", len(rs), failed)
	if t1 != t0 || ownerChanges > 0 {
		fmt.Printf("  RESULT: FALSE FAILOVER\n")
	} else {
		fmt.Printf("  RESULT: no false failover\n")
	}
	for _, name := range []string{"a", "b"} {
		p.d[name].Proc.Stop(3 * time.Second)
	}
	return nil
}
