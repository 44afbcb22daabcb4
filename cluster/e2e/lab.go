//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The lab's addresses. 10.78.0.0/24 exists only on the lab's bridge.
var (
	ClientAddr  = netip.MustParsePrefix("10.78.0.10/24")
	AAddr       = netip.MustParsePrefix("10.78.0.2/24")
	BAddr       = netip.MustParsePrefix("10.78.0.3/24")
	CAddr       = netip.MustParsePrefix("10.78.0.4/24")
	BE1Addr     = netip.MustParsePrefix("10.78.0.21/24")
	BE2Addr     = netip.MustParsePrefix("10.78.0.22/24")
	WitnessAddr = netip.MustParsePrefix("10.78.0.50/24")
	// VIP floats between a and b: it is on nobody's eth0 until the
	// cluster adds it to its owner's. The backends hold it on lo (DSR).
	VIP = netip.MustParseAddr("10.78.0.100")
)

const (
	// VIPPort is the XDP (L4, DSR) service to be1/be2. L7Port is the L4 →
	// L7 handoff (DESIGN.md): a second XDP VIP on the same address whose
	// backends are both nodes' L7 proxies, a-proxy and b-proxy (each node
	// itself by forwarding: local, the peer by dsr-l2 with its MAC). The
	// L7 listener binds 0.0.0.0 and the daemon puts the VIP on lo of both
	// nodes, so either proxy accepts the flows the owner's XDP hands it.
	VIPPort     = 8080
	L7Port      = 8081
	BackendHTTP = 80
	WitnessPort = 7000
	HashSeed    = 20261126
	AdminAddr   = "127.0.0.1:9900" // inside each LB namespace
	AdminToken  = "cluster-e2e-token"
)

// Lab is the cluster topology on one bridge: client, LB nodes a and b
// (and optionally c), backends be1 and be2 (L2 DSR, the VIP on lo), and a
// witness host with a TCP listener.
type Lab struct {
	Net                             *netlab.Lab
	Client, A, B, BE1, BE2, Witness *netlab.Host
	Bin, Dir, XDPMode               string
	KeyFile, WrongKeyFile           string
	witnessLn                       net.Listener
	servers                         []*e2etest.EchoServer
	mu                              sync.Mutex
	hosts                           map[string]*netlab.Host
	seq                             int
}

// Options for Build.
type Options struct {
	Bin string // the portcullis binary
	Dir string // configs, keys and logs
	// XDPMode is native or generic. Native on veth needs an XDP program on
	// each LB node's bridge-side peer and TX checksum offload off on the
	// senders (LAB.md "XDP on veth"); Build does both.
	XDPMode string
	// Backends: serve the DSR echo service on be1/be2 (the daemon tests
	// and benchmark). Without it the caller serves what it wants.
	Backends bool
	// Flood keeps the bridge's unknown-unicast flooding to the LB nodes'
	// ports (see SetFlood). Default off.
	Flood bool
}

// Build adds the hosts to nl and starts the servers: echo on VIP:8080 on
// be1 and be2 (answers "NAME LINE"), HTTP on their own :80 (answers the
// name, for the L7 pool), and the witness's TCP listener.
func Build(nl *netlab.Lab, o Options) (*Lab, error) {
	l := &Lab{Net: nl, Bin: o.Bin, Dir: o.Dir, XDPMode: o.XDPMode, hosts: map[string]*netlab.Host{}}
	var err error
	add := func(name string, p netip.Prefix) *netlab.Host {
		if err != nil {
			return nil
		}
		var h *netlab.Host
		h, err = nl.NewHost(name, p)
		l.hosts[name] = h
		return h
	}
	l.Client = add("client", ClientAddr)
	l.A = add("a", AAddr)
	l.B = add("b", BAddr)
	l.BE1 = add("be1", BE1Addr)
	l.BE2 = add("be2", BE2Addr)
	l.Witness = add("witness", WitnessAddr)
	if err != nil {
		return nil, err
	}
	for _, be := range []*netlab.Host{l.BE1, l.BE2} {
		if err := be.MakeDSRBackend(VIP); err != nil {
			return nil, err
		}
	}
	if o.XDPMode == "native" {
		for _, h := range []*netlab.Host{l.Client, l.A, l.B, l.BE1, l.BE2, l.Witness} {
			if err := h.DisableTxOffload(); err != nil {
				return nil, err
			}
		}
		for _, h := range []*netlab.Host{l.A, l.B} {
			if _, err := h.AttachXDPPass(); err != nil {
				return nil, err
			}
		}
	}
	if !o.Flood {
		for _, h := range []*netlab.Host{l.A, l.B} {
			if err := l.SetFlood(h, false); err != nil {
				return nil, err
			}
		}
	}
	if o.Backends {
		for _, be := range []*netlab.Host{l.BE1, l.BE2} {
			if _, err := l.ServeEcho(be, netip.AddrPortFrom(VIP, VIPPort).String()); err != nil {
				return nil, err
			}
			ln, err := be.Listen("tcp", netip.AddrPortFrom(be.IPv4(), BackendHTTP).String())
			if err != nil {
				return nil, err
			}
			name := be.Name
			go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, name+"\n")
			}))
		}
	}
	if l.witnessLn, err = l.Witness.Listen("tcp", netip.AddrPortFrom(WitnessAddr.Addr(), WitnessPort).String()); err != nil {
		return nil, err
	}
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(l.witnessLn)
	if o.Dir != "" {
		l.KeyFile = filepath.Join(o.Dir, "gossip.key")
		l.WrongKeyFile = filepath.Join(o.Dir, "wrong.key")
		if err := os.WriteFile(l.KeyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(l.WrongKeyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// SetFlood turns unknown-unicast flooding to h's bridge port on or off.
//
// When an LB node's link goes down the bridge forgets its MAC and floods
// the frames still addressed to it (the client's neighbour entry for the
// VIP) to every port. The XDP program does not check the destination MAC,
// so the standby's XDP forwards those flooded VIP packets to the backends
// and the client sees service again within one probe, before the cluster
// moved anything. With flooding off on the LB nodes' ports, service comes
// back only when the new owner holds the VIP and its gratuitous ARPs moved
// the client: that is what the failover tests and the benchmark measure.
func (l *Lab) SetFlood(h *netlab.Host, on bool) error {
	br := l.Net.Bridge.Handle()
	lk, err := br.LinkByName(h.Peer)
	if err != nil {
		return err
	}
	return br.LinkSetFlood(lk, on)
}

// Close stops the lab's own servers (the netlab lab closes the rest).
func (l *Lab) Close() {
	for _, s := range l.servers {
		s.Stop()
	}
}

// AddHostC adds node c (for the wrong-key test).
func (l *Lab) AddHostC() (*netlab.Host, error) {
	h, err := l.Net.NewHost("c", CAddr)
	if err != nil {
		return nil, err
	}
	if l.XDPMode == "native" {
		if err := h.DisableTxOffload(); err != nil {
			return nil, err
		}
	}
	l.hosts["c"] = h
	return h, nil
}

// NodeConfig describes one LB node's config file.
type NodeConfig struct {
	Name     string
	Priority int
	Addr     netip.Addr
	Profile  string // lan or fast
	Preempt  bool
	KeyFile  string
	// NoVIPs: a cluster member with no VIP, no XDP and no L7 (node c).
	NoVIPs bool
	// WitnessInterval etc. tune the witness (defaults 200ms/150ms/2).
	WitnessInterval, WitnessTimeout time.Duration
	WitnessFails                    int
	NoL7                            bool
}

// Config renders the YAML for n.
func (l *Lab) Config(n NodeConfig) string {
	if n.Profile == "" {
		n.Profile = "fast"
	}
	if n.WitnessInterval == 0 {
		n.WitnessInterval = 200 * time.Millisecond
	}
	if n.WitnessTimeout == 0 {
		n.WitnessTimeout = 150 * time.Millisecond
	}
	if n.WitnessFails == 0 {
		n.WitnessFails = 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, `node:
  name: %s
  priority: %d
  interface: eth0
log:
  format: json
  level: info
admin:
  listen: %s
  token: %s
shutdown:
  drain: 2s
`, n.Name, n.Priority, AdminAddr, AdminToken)
	if !n.NoVIPs {
		fmt.Fprintf(&b, `l4:
  xdp_mode: %s
  hash_seed: %d
  conntrack_size: 16384
vips:
  - name: web
    address: %s
    port: %d
    backends:
`, l.XDPMode, HashSeed, VIP, VIPPort)
		for _, be := range []*netlab.Host{l.BE1, l.BE2} {
			fmt.Fprintf(&b, "      - {name: %s, address: %s, mac: %q, forwarding: dsr-l2}\n", be.Name, be.IPv4(), be.MAC.String())
		}
		if !n.NoL7 {
			// Same backend names, order and weights on both nodes: their
			// Maglev tables for web-l7 match, so a new owner sends the
			// old owner's connections back to it.
			fmt.Fprintf(&b, `  - name: web-l7
    address: %s
    port: %d
    backends:
`, VIP, L7Port)
			for _, lb := range []*netlab.Host{l.A, l.B} {
				if lb.Name == n.Name {
					fmt.Fprintf(&b, "      - {name: %s-proxy, address: %s, forwarding: local}\n", lb.Name, lb.IPv4())
				} else {
					fmt.Fprintf(&b, "      - {name: %s-proxy, address: %s, mac: %q, forwarding: dsr-l2}\n", lb.Name, lb.IPv4(), lb.MAC.String())
				}
			}
			fmt.Fprintf(&b, `l7:
  listeners:
    - name: web
      address: 0.0.0.0:%d
  pools:
    - name: be
      endpoints:
        - address: %s:%d
        - address: %s:%d
  routes:
    - name: all
      pool: be
`, L7Port, l.BE1.IPv4(), BackendHTTP, l.BE2.IPv4(), BackendHTTP)
		}
	}
	fmt.Fprintf(&b, `cluster:
  bind: %s:7946
  peers: [%s:7946, %s:7946]
  key_file: %s
  profile: %s
  witness: {kind: tcp, address: "%s:%d", interval: %s, timeout: %s, fails: %d}
`, n.Addr, AAddr.Addr(), BAddr.Addr(), n.KeyFile, n.Profile, WitnessAddr.Addr(), WitnessPort,
		n.WitnessInterval, n.WitnessTimeout, n.WitnessFails)
	if n.NoVIPs {
		b.WriteString("  vips: []\n")
	} else {
		fmt.Fprintf(&b, "  vips: [{vip: web, preempt: %v}]\n", n.Preempt)
	}
	return b.String()
}

// Daemon is `portcullis run` in an LB namespace.
type Daemon struct {
	*e2etest.Daemon
	Name    string
	CfgPath string
}

// WriteConfig writes cfg for node name (by rename).
func (l *Lab) WriteConfig(name, cfg string) (string, error) {
	p := filepath.Join(l.Dir, name+".yaml")
	return p, writeByRename(p, cfg)
}

// writeByRename replaces the file at p by cfg in one step, as config
// managers do (the daemon never reads half a file).
func writeByRename(p, cfg string) error {
	if err := os.WriteFile(p+".tmp", []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// StartDaemon starts the daemon on h with cfg and waits until it is ready
// and its cluster node runs.
func (l *Lab) StartDaemon(h *netlab.Host, cfg string) (*Daemon, error) {
	p, err := l.WriteConfig(h.Name, cfg)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.seq++
	logPath := filepath.Join(l.Dir, fmt.Sprintf("%s-%d.log", h.Name, l.seq))
	l.mu.Unlock()
	proc, err := h.StartProcess(logPath, l.Bin, "run", "--config", p, "--watch=false")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Daemon: e2etest.NewDaemon(h, proc, AdminAddr, 3*time.Second), Name: h.Name, CfgPath: p}
	d.LogTail = 4096
	err = d.WaitReady(20*time.Second, func() error {
		cv, err := d.Cluster()
		if err == nil && !cv.Enabled {
			err = errors.New("cluster not enabled")
		}
		return err
	})
	if err != nil {
		if !proc.Exited() {
			proc.Stop(time.Second)
		}
		return nil, err
	}
	return d, nil
}

// Crash is LAB.md's crash: link down, then kill -9 (the process group).
func (d *Daemon) Crash() error {
	if err := d.Host.SetLinkDown(); err != nil {
		return err
	}
	if err := d.Proc.Kill(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	d.Proc.Wait()
	return nil
}

// ClusterView is GET /api/v1/cluster.
type ClusterView struct {
	Enabled bool `json:"enabled"`
	Members []struct {
		Name    string   `json:"name"`
		State   string   `json:"state"`
		Self    bool     `json:"self"`
		Healthy bool     `json:"healthy"`
		Witness bool     `json:"witness"`
		Holds   []string `json:"holds"`
		Digest  string   `json:"digest"`
	} `json:"members"`
	Owners map[string]string `json:"owners"`
}

// Alive reports whether name is an alive member in the view.
func (c ClusterView) Alive(name string) bool {
	for _, m := range c.Members {
		if m.Name == name && m.State == "alive" {
			return true
		}
	}
	return false
}

// Listed reports whether name appears in the view in any state.
func (c ClusterView) Listed(name string) bool {
	for _, m := range c.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// Healthy reports whether name is an alive, healthy member.
func (c ClusterView) Healthy(name string) bool {
	for _, m := range c.Members {
		if m.Name == name && m.State == "alive" && m.Healthy {
			return true
		}
	}
	return false
}

// Cluster returns GET /api/v1/cluster.
func (d *Daemon) Cluster() (ClusterView, error) {
	var cv ClusterView
	err := d.GetJSON("/api/v1/cluster", &cv)
	return cv, err
}

// Release posts /api/v1/vips/{vip}/release, with the token if token is
// not empty, and returns the status code.
func (d *Daemon) Release(vip, token string) (int, string, error) {
	resp, err := d.Post("/api/v1/vips/"+vip+"/release", token, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Reload writes cfg and posts /api/v1/reload with the token.
func (d *Daemon) Reload(cfg string) error {
	if err := writeByRename(d.CfgPath, cfg); err != nil {
		return err
	}
	resp, err := d.Post("/api/v1/reload", AdminToken, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload %s: %s: %s", d.Name, resp.Status, b)
	}
	return nil
}

// Metrics is one scrape of /metrics (Daemon.Metrics).
type Metrics = e2etest.Metrics

// LogLines returns the daemon's JSON log records whose msg contains sub.
func (d *Daemon) LogLines(sub string) []map[string]any {
	return d.LogRecords(func(msg string) bool { return strings.Contains(msg, sub) })
}

// HasVIP reports whether h holds the VIP on eth0.
func HasVIP(h *netlab.Host) (bool, error) { return hasAddr(h, h.Link) }

// hasAddr reports whether h holds the VIP on ifname.
func hasAddr(h *netlab.Host, ifname string) (bool, error) {
	lk, err := h.Handle().LinkByName(ifname)
	if err != nil {
		return false, err
	}
	addrs, err := h.Handle().AddrList(lk, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == VIP {
			return true, nil
		}
	}
	return false, nil
}

var witnessHost = &net.IPNet{IP: net.IP(WitnessAddr.Addr().AsSlice()), Mask: net.CIDRMask(32, 32)}

// BlockWitness makes the witness unreachable from h alone: a blackhole
// route for its address in h's namespace (connect fails at once with
// EINVAL, which the TCP witness counts as a failure; only a refusal counts
// as reachable). Gossip and client traffic are untouched.
func BlockWitness(h *netlab.Host) error {
	return h.Handle().RouteAdd(&netlink.Route{Dst: witnessHost, Type: unix.RTN_BLACKHOLE})
}

// UnblockWitness removes BlockWitness's route.
func UnblockWitness(h *netlab.Host) error {
	return h.Handle().RouteDel(&netlink.Route{Dst: witnessHost, Type: unix.RTN_BLACKHOLE})
}

// ServeEcho serves the line echo on addr in h's namespace, answering with
// h's name; Close stops it.
func (l *Lab) ServeEcho(h *netlab.Host, addr string) (io.Closer, error) {
	s := e2etest.NewEchoServer(h, h.Name, addr)
	if err := s.Start(); err != nil {
		return nil, err
	}
	l.servers = append(l.servers, s)
	return s, nil
}

// Flow is a client TCP connection through the VIP.
type Flow struct {
	C       net.Conn
	r       *bufio.Reader
	Backend string
	n       int
}

// DialFlow connects from client to addr and makes a first exchange.
func DialFlow(ctx context.Context, client *netlab.Host, addr string, timeout time.Duration) (*Flow, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := client.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &Flow{C: c, r: bufio.NewReader(c)}
	name, err := f.Exchange(timeout)
	if err != nil {
		c.Close()
		return nil, err
	}
	f.Backend = name
	return f, nil
}

// Exchange sends a line and returns the name of the host that echoed it;
// a reply that is not the echo, or from another host than the first, is
// an error.
func (f *Flow) Exchange(timeout time.Duration) (string, error) {
	f.n++
	msg := fmt.Sprintf("msg %d from %s", f.n, f.C.LocalAddr())
	f.C.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(f.C, msg+"\n"); err != nil {
		return "", fmt.Errorf("send %d: %w", f.n, err)
	}
	line, err := f.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reply %d: %w", f.n, err)
	}
	name, echo, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if !ok || echo != msg {
		return "", fmt.Errorf("reply %d is %q, want \"NAME %s\"", f.n, line, msg)
	}
	if f.Backend != "" && name != f.Backend {
		return name, fmt.Errorf("reply %d came from %s, the connection started on %s", f.n, name, f.Backend)
	}
	return name, nil
}

// Close closes the connection.
func (f *Flow) Close() error { return f.C.Close() }

// Probe is one new connection of a Prober.
type Probe struct {
	Start, End time.Time
	Who        string
	Err        error
}

// Prober starts a new TCP connection (connect + one echo exchange) every
// interval, each with its own timeout, concurrently, so a lost SYN does
// not delay the next probe.
type Prober struct {
	mu      sync.Mutex
	results []Probe
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartProber probes addr from client: each probe is a new TCP
// connection and one echo exchange.
func StartProber(client *netlab.Host, addr string, every, timeout time.Duration) *Prober {
	return StartProbing(every, func(ctx context.Context) (string, error) {
		f, err := DialFlow(ctx, client, addr, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return "", errDiscard // cancelled by Stop, not a result
			}
			return "", err
		}
		f.Close()
		return f.Backend, nil
	})
}

// errDiscard, from a probe function, leaves that probe out of the results.
var errDiscard = errors.New("e2e: probe discarded")

// StartProbing runs probe every interval, each run on its own goroutine,
// and records who answered or the error: the loop of StartProber for any
// kind of probe (the namespace lab's probes are HTTP requests). ctx ends
// at Stop.
func StartProbing(every time.Duration, probe func(ctx context.Context) (who string, err error)) *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{cancel: cancel}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.wg.Go(func() {
				r := Probe{Start: time.Now()}
				r.Who, r.Err = probe(ctx)
				r.End = time.Now()
				if r.Err == errDiscard {
					return
				}
				p.mu.Lock()
				p.results = append(p.results, r)
				p.mu.Unlock()
			})
		}
	})
	return p
}

// Results returns the probes so far, by start time.
func (p *Prober) Results() []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.results)
	slices.SortFunc(out, func(a, b Probe) int { return a.Start.Compare(b.Start) })
	return out
}

// Stop stops probing and returns every result.
func (p *Prober) Stop() []Probe {
	p.cancel()
	p.wg.Wait()
	return p.Results()
}

// FirstOKAfter returns the first successful probe started at or after t
// and how long after t it completed.
func FirstOKAfter(rs []Probe, t time.Time) (Probe, time.Duration, bool) {
	var best *Probe
	for i := range rs {
		r := &rs[i]
		if r.Err == nil && !r.Start.Before(t) && (best == nil || r.End.Before(best.End)) {
			best = r
		}
	}
	if best == nil {
		return Probe{}, 0, false
	}
	return *best, best.End.Sub(t), true
}

// WaitFor polls cond every 20 ms until it is true or within passes.
func WaitFor(within time.Duration, cond func() bool) (time.Duration, bool) {
	return e2etest.WaitFor(within, cond)
}
