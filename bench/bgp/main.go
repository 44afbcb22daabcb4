//go:build linux

// Command bgp measures how fast a router running bird2 drops a crashed
// load-balancer node from the ECMP route of a VIP the nodes announce over
// BGP, and how many established flows survive the rehash. The topology is
// cluster/bgp/e2e's lab (internal/netlab namespaces): a client, a router
// with bird2, three nodes running the real `portcullis run` daemon (XDP,
// L2 DSR) and three backends.
//
// One run: 3 nodes announce, the router's route has 3 next hops; -flows
// connections are opened from the client (each made one echo exchange);
// the victim node crashes; the router's kernel route is read by netlink
// every 5 ms until the victim's next hop is gone (detection time, from
// the crash); then every established flow sends one more line and must be
// answered by the backend that answered it first (survived). The victim is
// then restored (link up, daemon restarted, 3 next hops again) and the
// next run crashes the next node.
//
// Settings (timers on both sides of every session):
//
//	default  hold 90s / keepalive 30s; the crash is seen at hold expiry (≤90s)
//	hold3    hold 3s / keepalive 1s
//	bfd100   BFD 100ms×3, hold 9s / keepalive 3s
//	bfd300   BFD 300ms×3, hold 9s / keepalive 3s
//	kill     SIGKILL only (process crash: the kernel closes the session), hold 9s
//
// A crash (all but kill) is the node's eth0 set down inside its namespace,
// then SIGKILL of the daemon: no FIN or NOTIFICATION reaches the router.
//
// Root only; everything runs in namespaces it creates and removes. See
// run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/cluster/bgp/e2e"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

var (
	flagBin         = flag.String("bin", "", "portcullis binary (required)")
	flagRuns        = flag.Int("runs", 5, "crashes per setting (but default)")
	flagDefaultRuns = flag.Int("default-runs", 1, "crashes with the default timers (each takes up to 90s)")
	flagSettings    = flag.String("settings", "kill,hold3,bfd100,bfd300,default", "comma-separated: kill, hold3, bfd100, bfd300, default")
	flagFlows       = flag.Int("flows", 300, "established flows per run")
	flagXDP         = flag.String("xdp", "generic", "XDP mode of the nodes: generic or native")
	flagSpeaker     = flag.String("speaker", e2e.SpeakerPortcullis, "who announces the VIP from a node: portcullis (the daemon's bgp section) or bird (a bird2 in the node's namespace, the reference)")
	flagDir         = flag.String("dir", "", "configs and logs (default: a temporary folder, removed unless -keep)")
	flagKeep        = flag.Bool("keep", false, "keep -dir")
	flagVerbose     = flag.Bool("v", false, "print every run")
)

type setting struct {
	name   string
	timers e2e.Timers
	crash  bool // link down + SIGKILL; otherwise SIGKILL only
	runs   int
	label  string
}

func settings() []setting {
	all := map[string]setting{
		"default": {timers: e2e.Timers{}, crash: true, runs: *flagDefaultRuns, label: "default hold 90s/ka 30s"},
		"hold3":   {timers: e2e.Timers{Hold: 3 * time.Second, Keepalive: time.Second}, crash: true, label: "hold 3s/ka 1s"},
		"bfd100": {timers: e2e.Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second, BFD: true, BFDInterval: 100 * time.Millisecond, BFDMult: 3},
			crash: true, label: "bfd 100ms×3, hold 9s"},
		"bfd300": {timers: e2e.Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second, BFD: true, BFDInterval: 300 * time.Millisecond, BFDMult: 3},
			crash: true, label: "bfd 300ms×3, hold 9s"},
		"kill": {timers: e2e.Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second}, crash: false, label: "SIGKILL only, hold 9s"},
	}
	var out []setting
	for _, s := range strings.Split(*flagSettings, ",") {
		s = strings.TrimSpace(s)
		st, ok := all[s]
		if !ok {
			fatalf("unknown setting %q", s)
		}
		st.name = s
		if st.runs == 0 {
			st.runs = *flagRuns
		}
		out = append(out, st)
	}
	return out
}

type result struct {
	s         setting
	detect    []time.Duration
	survived  int
	flows     int
	note      string
	timeTaken time.Duration
}

var (
	labsMu sync.Mutex
	labs   []*netlab.Lab
)

func closeLabs() {
	labsMu.Lock()
	defer labsMu.Unlock()
	for _, l := range labs {
		if err := l.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "closing lab %s: %v\n", l.Name, err)
		}
	}
	labs = nil
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fatalf("needs root (network namespaces, XDP)")
	}
	if *flagBin == "" {
		fatalf("-bin is required")
	}
	if _, _, err := e2e.FindBird(); err != nil {
		fatalf("%v", err)
	}
	dir := *flagDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bgpb-"); err != nil {
			fatalf("%v", err)
		}
		if !*flagKeep {
			defer os.RemoveAll(dir)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		closeLabs()
		os.Exit(130)
	}()
	defer closeLabs()

	var results []result
	for _, s := range settings() {
		sdir := filepath.Join(dir, s.name)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			fatalf("%v", err)
		}
		start := time.Now()
		r := runSetting(s, sdir)
		closeLabs()
		r.timeTaken = time.Since(start)
		if r.note != "" {
			fmt.Fprintf(os.Stderr, "%s: %s (configs and logs in %s; -keep keeps them)\n", s.name, r.note, sdir)
		}
		fmt.Fprintf(os.Stderr, "%s: %d runs in %s\n", s.name, len(r.detect), r.timeTaken.Round(time.Second))
		results = append(results, r)
	}

	fmt.Printf("\nBGP/ECMP: crash of one of 3 nodes → the router's kernel route loses its next hop (netlink poll every 5 ms)\n")
	fmt.Printf("speaker=%s xdp=%s flows=%d per run; survived = still answering, from the same backend, after the route converged\n\n", *flagSpeaker, *flagXDP, *flagFlows)
	fmt.Printf("%-24s %4s %9s %9s %9s %13s  %s\n", "setting", "runs", "min", "median", "max", "flows ok", "all (ms)")
	for _, r := range results {
		if len(r.detect) == 0 {
			fmt.Printf("%-24s %4d %9s %9s %9s %13s  %s\n", r.s.label, 0, "-", "-", "-", "-", r.note)
			continue
		}
		sorted := slices.Clone(r.detect)
		slices.Sort(sorted)
		var all []string
		for _, d := range r.detect {
			all = append(all, fmt.Sprint(d.Milliseconds()))
		}
		note := ""
		if r.note != "" {
			note = " (" + r.note + ")"
		}
		fmt.Printf("%-24s %4d %9s %9s %9s %13s  %s%s\n", r.s.label, len(r.detect), e2etest.MS(sorted[0]), e2etest.MS(e2etest.Median(sorted)), e2etest.MS(sorted[len(sorted)-1]),
			fmt.Sprintf("%d/%d", r.survived, r.flows), strings.Join(all, " "), note)
	}
}

// runSetting builds a lab with the setting's timers and crashes a node
// s.runs times.
func runSetting(s setting, dir string) (r result) {
	r.s = s
	nl, err := netlab.Create(netlab.Options{Prefix: "bgpb", StopGrace: 2 * time.Second})
	if err != nil {
		r.note = "lab: " + err.Error()
		return r
	}
	labsMu.Lock()
	labs = append(labs, nl)
	labsMu.Unlock()
	lab, err := e2e.Build(nl, e2e.Options{Bin: *flagBin, Dir: dir, XDPMode: *flagXDP, Timers: s.timers, Speaker: *flagSpeaker})
	if err != nil {
		r.note = "build: " + err.Error()
		return r
	}
	defer lab.Close()
	if err := lab.StartBird(); err != nil {
		r.note = err.Error()
		return r
	}
	nodes := map[int]*e2e.Node{}
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { n.Stop(6 * time.Second) })
		}
		wg.Wait()
	}()
	for i := 1; i <= 3; i++ {
		n, err := lab.StartNode(i)
		if err != nil {
			r.note = err.Error()
			return r
		}
		nodes[i] = n
	}
	if _, err := lab.WaitNexthops(e2e.NodeAddrs(1, 2, 3), 60*time.Second, 0); err != nil {
		r.note = err.Error()
		return r
	}
	// Detection must come within the hold time (plus slack): anything
	// later is a failure of the setup, not a measurement.
	limit := s.timers.Hold
	if limit == 0 {
		limit = 90 * time.Second
	}
	limit += 15 * time.Second
	for run := range s.runs {
		victim := run%3 + 1
		d, ok, total, err := crashRun(lab, nodes, victim, s.crash, limit)
		if err != nil {
			r.note = fmt.Sprintf("run %d: %v", run+1, err)
			return r
		}
		r.detect = append(r.detect, d)
		r.survived += ok
		r.flows += total
		logf("%s run %d: lb%d dropped after %v; %d/%d flows survived", s.name, run+1, victim, d.Round(time.Millisecond), ok, total)
		if run == s.runs-1 {
			break
		}
		n, err := restore(lab, victim)
		if err != nil {
			r.note = fmt.Sprintf("restoring lb%d after run %d: %v", victim, run+1, err)
			return r
		}
		nodes[victim] = n
	}
	return r
}

// crashRun opens the flows, crashes the victim and returns the detection
// time and how many flows survived.
func crashRun(lab *e2e.Lab, nodes map[int]*e2e.Node, victim int, crash bool, limit time.Duration) (time.Duration, int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flows, err := e2e.OpenFlows(ctx, lab.Client, *flagFlows, 32, 3*time.Second)
	defer e2e.CloseFlows(flows)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("opening flows: %w", err)
	}
	n := nodes[victim]
	gone := e2e.NodeAddr(victim).Addr()
	t0 := time.Now()
	if crash {
		err = n.Crash()
	} else {
		err = n.Kill()
	}
	if err != nil {
		return 0, 0, 0, err
	}
	var detect time.Duration
	for {
		nh, err := lab.VIPNexthops()
		if err != nil {
			return 0, 0, 0, err
		}
		if !slices.Contains(nh, gone) {
			detect = time.Since(t0)
			if len(nh) != 2 {
				return detect, 0, 0, fmt.Errorf("lb%d dropped, but the route now has next hops %v, want the 2 others", victim, nh)
			}
			break
		}
		if time.Since(t0) > limit {
			return 0, 0, 0, fmt.Errorf("lb%d still a next hop %v after its crash", victim, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := e2e.CheckFlows(flows, 32, 3*time.Second)
	if c.OK != c.Total {
		logf("lb%d: %s", victim, c.Failures())
	}
	return detect, c.OK, c.Total, nil
}

// restore brings the victim back: link up, default route, daemon
// restarted, three next hops again.
func restore(lab *e2e.Lab, victim int) (*e2e.Node, error) {
	if err := lab.RestoreLink(victim); err != nil {
		return nil, err
	}
	n, err := lab.StartNode(victim)
	if err != nil {
		return nil, err
	}
	if _, err := lab.WaitNexthops(e2e.NodeAddrs(1, 2, 3), 60*time.Second, 0); err != nil {
		return n, err
	}
	return n, nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bgp: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	if *flagVerbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}
