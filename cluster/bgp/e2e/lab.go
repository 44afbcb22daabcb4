//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/cluster/bgp"
	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The lab's addresses (see doc.go).
var (
	ClientAddr = netip.MustParsePrefix("10.79.1.10/24")
	// RouterClientSide and RouterNodeSide are the router's two subnets'
	// gateways; RouterNodeSide is also its BGP address and router id.
	RouterClientSide = netip.MustParsePrefix("10.79.1.1/24")
	RouterNodeSide   = netip.MustParsePrefix("10.79.2.1/24")
	// VIP is announced by the nodes and held on lo by the backends.
	VIP       = netip.MustParseAddr("10.79.100.1")
	VIPPrefix = netip.PrefixFrom(VIP, 32)
	// FloatVIP (Options.FloatingVIP) floats between the nodes in the
	// cluster's VRRP-like mode, next to the BGP VIP: on the nodes' own
	// subnet, so the router reaches it by ARP to whichever node owns it.
	FloatVIP = netip.MustParseAddr("10.79.2.100")
)

const (
	VIPPort    = 80
	RouterASN  = 65000
	NodeASN    = 65001
	HashSeed   = 7
	AdminAddr  = "127.0.0.1:9900" // inside each node's namespace
	AdminToken = "bgp-e2e-token"
	// VIPName is the name of the VIP in the daemon's config.
	VIPName = "web"
	// FloatVIPName is FloatVIP's name in the config.
	FloatVIPName = "float"
)

// NodeAddr is node i's address (i from 1): 10.79.2.1i/24.
func NodeAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 79, 2, byte(10 + i)}), 24)
}

// BackendAddr is backend i's address (i from 1): 10.79.2.2i/24.
func BackendAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 79, 2, byte(20 + i)}), 24)
}

// Timers are the BGP session's timers and BFD, written alike into the
// router's bird config and every node's config.
type Timers struct {
	// Hold and Keepalive: zero leaves the daemon's defaults (90s, hold/3)
	// and gives bird the same values (its own default is 240s/80s).
	Hold, Keepalive time.Duration
	// BFD turns BFD on for every session, with BFDInterval as the minimum
	// transmit and receive interval (default 100ms) and BFDMult as the
	// detection multiplier (default 3).
	BFD         bool
	BFDInterval time.Duration
	BFDMult     int
}

// birdBFD is bird's BFD protocol for these timers ("" without BFD).
func (t Timers) birdBFD() string {
	if !t.BFD {
		return ""
	}
	return fmt.Sprintf(`protocol bfd {
	interface "eth0" {
		min rx interval %d ms;
		min tx interval %d ms;
		multiplier %d;
	};
}
`, t.bfdInterval().Milliseconds(), t.bfdInterval().Milliseconds(), t.bfdMult())
}

func (t Timers) hold() time.Duration {
	if t.Hold == 0 {
		return 90 * time.Second
	}
	return t.Hold
}

func (t Timers) keepalive() time.Duration {
	if t.Keepalive == 0 {
		return t.hold() / 3
	}
	return t.Keepalive
}

func (t Timers) bfdInterval() time.Duration {
	if t.BFDInterval == 0 {
		return 100 * time.Millisecond
	}
	return t.BFDInterval
}

func (t Timers) bfdMult() int {
	if t.BFDMult == 0 {
		return 3
	}
	return t.BFDMult
}

// String describes the timers, e.g. "hold 3s/keepalive 1s, bfd 100ms×3".
func (t Timers) String() string {
	s := fmt.Sprintf("hold %v/keepalive %v", t.hold(), t.keepalive())
	if t.BFD {
		s += fmt.Sprintf(", bfd %v×%d", t.bfdInterval(), t.bfdMult())
	}
	return s
}

// Speaker values: who announces the VIP from a node.
const (
	// SpeakerPortcullis: the daemon's own bgp section (what is tested).
	SpeakerPortcullis = "portcullis"
	// SpeakerBird: a bird2 in the node's namespace announces the VIP and
	// the daemon runs without a bgp section (a reference).
	SpeakerBird = "bird"
)

// Options for Build.
type Options struct {
	Bin string // the portcullis binary
	Dir string // configs, sockets and logs; keep it short (unix socket paths)
	// XDPMode is generic (default) or native. Native on veth needs an XDP
	// program on each node's bridge-side peer; Build attaches it.
	XDPMode string
	// Nodes and Backends: how many hosts lbN and beN (default 3 each).
	Nodes, Backends int
	Timers          Timers
	// Speaker is SpeakerPortcullis (default) or SpeakerBird.
	Speaker string
	// Cluster adds a cluster section (gossip with the fast profile, no
	// floating VIP) to the nodes' configs.
	Cluster bool
	// LogLevel of the daemons (default info).
	LogLevel string
	// HealthChecks adds a tcp health check of the VIP's backends (every
	// 200ms, down after 2 failures, up after 1 success; the probe is a SYN
	// to VIP:80 at the backend's MAC).
	HealthChecks bool
	// FloatingVIP adds FloatVIP, with the same backends, as a floating
	// VIP of the cluster (needs Cluster): the two modes on one node.
	FloatingVIP bool
}

// Lab is the BGP topology in a netlab lab.
type Lab struct {
	Net            *netlab.Lab
	Client, Router *netlab.Host
	Nodes          []*netlab.Host // lb1..lbN
	Backends       []*netlab.Host // be1..beN
	Opts           Options
	BirdBin        string
	BirdcBin       string
	KeyFile        string

	// Bird is the router's bird, BirdSock its control socket.
	Bird     *netlab.Process
	BirdSock string

	servers []*e2etest.EchoServer
	mu      sync.Mutex
	seq     int
}

// ErrNoBird is returned by Build when bird2 is not installed.
var ErrNoBird = errors.New("bird2 is not installed (apt-get install bird2): no bird/birdc in PATH or /usr/sbin")

// FindBird returns the paths of bird and birdc.
func FindBird() (bird, birdc string, err error) {
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
		}
		return ""
	}
	bird, birdc = find("bird"), find("birdc")
	if bird == "" || birdc == "" {
		return "", "", ErrNoBird
	}
	return bird, birdc, nil
}

// Build adds the hosts to nl, wires the routes and sysctls, makes the
// backends DSR backends for the VIP and serves the line echo (answering
// "NAME LINE") on VIP:80 on each. It starts no bird and no daemon.
func Build(nl *netlab.Lab, o Options) (*Lab, error) {
	if o.XDPMode == "" {
		o.XDPMode = "generic"
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Backends == 0 {
		o.Backends = 3
	}
	if o.Speaker == "" {
		o.Speaker = SpeakerPortcullis
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	bird, birdc, err := FindBird()
	if err != nil {
		return nil, err
	}
	l := &Lab{Net: nl, Opts: o, BirdBin: bird, BirdcBin: birdc}
	if l.Client, err = nl.NewHost("client", ClientAddr); err != nil {
		return nil, err
	}
	if l.Router, err = nl.NewHost("router", RouterClientSide, RouterNodeSide); err != nil {
		return nil, err
	}
	for i := 1; i <= o.Nodes; i++ {
		h, err := nl.NewHost(fmt.Sprintf("lb%d", i), NodeAddr(i))
		if err != nil {
			return nil, err
		}
		l.Nodes = append(l.Nodes, h)
	}
	for i := 1; i <= o.Backends; i++ {
		h, err := nl.NewHost(fmt.Sprintf("be%d", i), BackendAddr(i))
		if err != nil {
			return nil, err
		}
		l.Backends = append(l.Backends, h)
	}
	if err := l.DefaultRoute(l.Client); err != nil {
		return nil, err
	}
	for _, h := range append(slices.Clone(l.Nodes), l.Backends...) {
		if err := l.DefaultRoute(h); err != nil {
			return nil, err
		}
	}
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.default.send_redirects", "0"},
		{"net.ipv4.conf.eth0.send_redirects", "0"},
		// ECMP on the L4 ports: one client's connections spread.
		{"net.ipv4.fib_multipath_hash_policy", "1"},
	} {
		if err := l.Router.Sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	for _, h := range nl.Hosts() {
		if h == l.Router {
			continue
		}
		for _, k := range []string{"net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.eth0.accept_redirects"} {
			if err := h.Sysctl(k, "0"); err != nil {
				return nil, err
			}
		}
	}
	// Checksums complete in software: required where traffic crosses a
	// native XDP program, harmless with generic XDP.
	for _, h := range nl.Hosts() {
		if err := h.DisableTxOffload(); err != nil {
			return nil, err
		}
	}
	if o.XDPMode == "native" {
		for _, h := range l.Nodes {
			if _, err := h.AttachXDPPass(); err != nil {
				return nil, err
			}
		}
	}
	vips := []netip.Addr{VIP}
	if o.FloatingVIP {
		vips = append(vips, FloatVIP)
	}
	for _, be := range l.Backends {
		for _, vip := range vips {
			if err := be.MakeDSRBackend(vip); err != nil {
				return nil, err
			}
			s := e2etest.NewEchoServer(be, be.Name, netip.AddrPortFrom(vip, VIPPort).String())
			if err := s.Start(); err != nil {
				return nil, err
			}
			l.servers = append(l.servers, s)
		}
	}
	if o.Cluster {
		l.KeyFile = filepath.Join(o.Dir, "gossip.key")
		if err := os.WriteFile(l.KeyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Echo is backend i's echo server (i from 1): Stop makes the backend
// refuse connections, Start serves again.
func (l *Lab) Echo(i int) *e2etest.EchoServer { return l.servers[i-1] }

// Close stops the echo servers (the netlab lab closes everything else).
func (l *Lab) Close() {
	for _, s := range l.servers {
		s.Stop()
	}
}

// gateway is the router's address on h's subnet.
func (l *Lab) gateway(h *netlab.Host) netip.Addr {
	if h == l.Client {
		return RouterClientSide.Addr()
	}
	return RouterNodeSide.Addr()
}

// DefaultRoute (re)installs h's default route via the router (taking a
// link down removes it).
func (l *Lab) DefaultRoute(h *netlab.Host) error {
	lk, err := h.Handle().LinkByName(h.Link)
	if err != nil {
		return err
	}
	r := &netlink.Route{LinkIndex: lk.Attrs().Index, Gw: l.gateway(h).AsSlice()}
	if err := h.Handle().RouteReplace(r); err != nil {
		return fmt.Errorf("%s: default route via %s: %w", h.Name, l.gateway(h), err)
	}
	return nil
}

// Node returns lbI (I from 1).
func (l *Lab) Node(i int) *netlab.Host { return l.Nodes[i-1] }

func (l *Lab) path(name string) string { return filepath.Join(l.Opts.Dir, name) }

func (l *Lab) logPath(name string) string {
	l.mu.Lock()
	l.seq++
	n := l.seq
	l.mu.Unlock()
	return l.path(fmt.Sprintf("%s-%d.log", name, n))
}

func secs(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// BirdConfig is the router's bird2 config: the kernel protocol exports
// every route with merge paths (ECMP), one BGP session per node (import
// all, export none), BFD if the timers ask for it.
func (l *Lab) BirdConfig() string {
	t := l.Opts.Timers
	var b strings.Builder
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
`, RouterNodeSide.Addr())
	b.WriteString(t.birdBFD())
	for i, h := range l.Nodes {
		b.WriteString(t.birdBGP(h.Name, RouterNodeSide.Addr(), RouterASN, NodeAddr(i+1).Addr(), NodeASN,
			"import all; export none;"))
	}
	return b.String()
}

// birdBGP is one bird2 BGP session with the lab's timers (fast retries:
// a restarted peer comes back within seconds); ipv4 is the channel's
// import and export rules.
func (t Timers) birdBGP(name string, local netip.Addr, localAS int, neighbor netip.Addr, neighborAS int, ipv4 string) string {
	bfd := "off"
	if t.BFD {
		bfd = "on"
	}
	return fmt.Sprintf(`protocol bgp %s {
	local %s as %d;
	neighbor %s as %d;
	hold time %d;
	keepalive time %d;
	connect retry time 1;
	error wait time 1, 2;
	ipv4 { %s };
	bfd %s;
}
`, name, local, localAS, neighbor, neighborAS, secs(t.hold()), secs(t.keepalive()), ipv4, bfd)
}

// StartBird writes BirdConfig, checks it with `bird -p`, starts bird in
// the router's namespace and waits until birdc answers.
func (l *Lab) StartBird() error {
	conf := l.path("bird.conf")
	if err := os.WriteFile(conf, []byte(l.BirdConfig()), 0o644); err != nil {
		return err
	}
	p, sock, err := l.startBird(l.Router, "router", conf)
	if err != nil {
		return err
	}
	l.Bird, l.BirdSock = p, sock
	return nil
}

func (l *Lab) startBird(h *netlab.Host, name, conf string) (*netlab.Process, string, error) {
	if out, err := exec.Command(l.BirdBin, "-p", "-c", conf).CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("bird -p -c %s: %v: %s", conf, err, out)
	}
	sock := l.path(name + "-bird.ctl")
	p, err := h.StartProcess(l.logPath(name+"-bird"), l.BirdBin, "-f", "-c", conf, "-s", sock, "-P", l.path(name+"-bird.pid"))
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := l.birdc(sock, "show", "status")
		if err == nil {
			return p, sock, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			p.Stop(time.Second)
			return nil, "", fmt.Errorf("%s: bird did not come up: %v\n%s", name, err, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Birdc runs birdc against the router's bird, e.g. Birdc("show", "route").
// birdc talks over a unix socket, so it runs in the caller's namespace.
func (l *Lab) Birdc(args ...string) (string, error) { return l.birdc(l.BirdSock, args...) }

func (l *Lab) birdc(sock string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, l.BirdcBin, append([]string{"-s", sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// RouteNexthops returns the next hops of the router's kernel route for
// prefix (main table), sorted; none if there is no route.
func (l *Lab) RouteNexthops(prefix netip.Prefix) ([]netip.Addr, error) {
	dst := &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen())}
	rs, err := l.Router.Handle().RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	var out []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	for _, r := range rs {
		if r.Dst == nil || r.Dst.String() != dst.String() {
			continue
		}
		if r.Gw != nil {
			add(r.Gw)
		}
		for _, nh := range r.MultiPath {
			if nh.Gw != nil {
				add(nh.Gw)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// VIPNexthops is RouteNexthops(VIPPrefix).
func (l *Lab) VIPNexthops() ([]netip.Addr, error) { return l.RouteNexthops(VIPPrefix) }

// NodeAddrs returns the addresses of the nodes with the given indexes
// (from 1), sorted: the next hops expected when exactly they announce.
func NodeAddrs(idx ...int) []netip.Addr {
	var out []netip.Addr
	for _, i := range idx {
		out = append(out, NodeAddr(i).Addr())
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// WaitNexthops polls the VIP's route every poll (5ms if 0) until its next
// hops are exactly want, and returns how long that took; after within it
// returns an error with the last next hops seen and bird's view.
func (l *Lab) WaitNexthops(want []netip.Addr, within, poll time.Duration) (time.Duration, error) {
	if poll == 0 {
		poll = 5 * time.Millisecond
	}
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	start := time.Now()
	var last []netip.Addr
	var lastErr error
	for {
		nh, err := l.VIPNexthops()
		if err == nil && slices.Equal(nh, want) {
			return time.Since(start), nil
		}
		last, lastErr = nh, err
		if time.Since(start) > within {
			protos, _ := l.Birdc("show", "protocols")
			routes, _ := l.Birdc("show", "route", "all")
			return time.Since(start), fmt.Errorf("router's route for %s: want next hops %v, have %v (err %v) after %v\nbird protocols:\n%s\nbird routes:\n%s",
				VIPPrefix, want, last, lastErr, within, protos, routes)
		}
		time.Sleep(poll)
	}
}

// NodeConfig renders node i's daemon config (i from 1).
func (l *Lab) NodeConfig(i int) string {
	h := l.Node(i)
	t := l.Opts.Timers
	var b strings.Builder
	fmt.Fprintf(&b, `node: {name: %s, interface: eth0, id: %d}
log: {format: json, level: %s}
admin: {listen: "%s", token: %s}
l4: {xdp_mode: %s, hash_seed: %d, conntrack_size: 16384}
vips:
  - name: %s
    address: %s
    port: %d
    protocol: tcp
    backends:
`, h.Name, i, l.Opts.LogLevel, AdminAddr, AdminToken, l.Opts.XDPMode, HashSeed, VIPName, VIP, VIPPort)
	backends := func() {
		for _, be := range l.Backends {
			fmt.Fprintf(&b, "      - {name: %s, address: %s, mac: %q, forwarding: dsr-l2}\n", be.Name, be.IPv4(), be.MAC.String())
		}
	}
	backends()
	if l.Opts.FloatingVIP {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    port: %d\n    protocol: tcp\n    backends:\n", FloatVIPName, FloatVIP, VIPPort)
		backends()
	}
	if l.Opts.HealthChecks {
		fmt.Fprintf(&b, "healthchecks:\n  - {name: %s-check, vip: %s, type: tcp, interval: 200ms, timeout: 150ms, fall: 2, rise: 1}\n", VIPName, VIPName)
	}
	if l.Opts.Speaker == SpeakerPortcullis {
		fmt.Fprintf(&b, `bgp:
  asn: %d
  router_id: %s
  listen_port: -1
  peers:
    - address: %s
      asn: %d
`, NodeASN, NodeAddr(i).Addr(), RouterNodeSide.Addr(), RouterASN)
		if t.Hold != 0 {
			fmt.Fprintf(&b, "      hold_time: %v\n", t.Hold)
		}
		if t.Keepalive != 0 {
			fmt.Fprintf(&b, "      keepalive: %v\n", t.Keepalive)
		}
		if t.BFD {
			fmt.Fprintf(&b, "      bfd: {enabled: true, min_tx: %v, min_rx: %v, multiplier: %d}\n", t.bfdInterval(), t.bfdInterval(), t.bfdMult())
		}
		fmt.Fprintf(&b, "  vips:\n    - vip: %s\n", VIPName)
	}
	if l.Opts.Cluster {
		var peers []string
		for j := range l.Nodes {
			peers = append(peers, NodeAddr(j+1).Addr().String()+":7946")
		}
		fmt.Fprintf(&b, `cluster:
  bind: %s:7946
  peers: [%s]
  key_file: %s
  profile: fast
`, NodeAddr(i).Addr(), strings.Join(peers, ", "), l.KeyFile)
		if l.Opts.FloatingVIP {
			fmt.Fprintf(&b, "  vips: [{vip: %s}]\n", FloatVIPName)
		}
	}
	return b.String()
}

// speakerConfig is the reference speaker's bird config for node i: the
// VIP as a static blackhole route exported over BGP (eBGP sets the next
// hop to the session address).
func (l *Lab) speakerConfig(i int) string {
	t := l.Opts.Timers
	var b strings.Builder
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { }
protocol static { ipv4; route %s blackhole; }
`, NodeAddr(i).Addr(), VIPPrefix)
	b.WriteString(t.birdBFD())
	b.WriteString(t.birdBGP("uplink", NodeAddr(i).Addr(), NodeASN, RouterNodeSide.Addr(), RouterASN,
		fmt.Sprintf("import none; export where net = %s;", VIPPrefix)))
	return b.String()
}

// Node is one LB node's daemon (and, with SpeakerBird, its bird).
type Node struct {
	*e2etest.Daemon
	Index   int
	Name    string
	CfgPath string
	Speaker *netlab.Process // SpeakerBird only
	lab     *Lab
}

// StartNode writes node i's config, starts the daemon in its namespace
// (and the reference speaker with SpeakerBird) and waits up to 20s for
// GET /readyz to answer 200. It does not wait for the announcement.
func (l *Lab) StartNode(i int) (*Node, error) {
	h := l.Node(i)
	cfg := l.path(h.Name + ".yaml")
	if err := os.WriteFile(cfg, []byte(l.NodeConfig(i)), 0o644); err != nil {
		return nil, err
	}
	proc, err := h.StartProcess(l.logPath(h.Name), l.Opts.Bin, "run", "--config", cfg, "--watch=false")
	if err != nil {
		return nil, err
	}
	n := &Node{Daemon: e2etest.NewDaemon(h, proc, AdminAddr, 3*time.Second), Index: i, Name: h.Name, CfgPath: cfg, lab: l}
	n.LogTail = 6144
	if err := n.WaitReady(20*time.Second, n.Readyz); err != nil {
		proc.Stop(time.Second)
		return nil, err
	}
	if l.Opts.Speaker == SpeakerBird {
		conf := l.path(h.Name + "-bird.conf")
		if err := os.WriteFile(conf, []byte(l.speakerConfig(i)), 0o644); err != nil {
			return nil, err
		}
		if n.Speaker, _, err = l.startBird(h, h.Name, conf); err != nil {
			proc.Stop(time.Second)
			return nil, err
		}
	}
	return n, nil
}

// Kill is a process crash: SIGKILL to the daemon (and the reference
// speaker); the kernel closes the BGP session.
func (n *Node) Kill() error { return n.signal(syscall.SIGKILL, true) }

// Crash is a node vanishing from the network: its eth0 down inside its
// namespace, then SIGKILL, so no FIN or NOTIFICATION reaches the router.
func (n *Node) Crash() error {
	if err := n.Host.SetLinkDown(); err != nil {
		return err
	}
	return n.Kill()
}

// Term sends SIGTERM to the daemon (and the reference speaker) without
// waiting.
func (n *Node) Term() error { return n.signal(syscall.SIGTERM, false) }

// signal sends sig to the reference speaker, if any, and the daemon; with
// wait it reaps each before the next.
func (n *Node) signal(sig syscall.Signal, wait bool) error {
	for _, p := range []*netlab.Process{n.Speaker, n.Proc} {
		if p == nil {
			continue
		}
		if err := p.Kill(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		if wait {
			p.Wait()
		}
	}
	return nil
}

// Stop stops the processes (SIGTERM, SIGKILL after grace).
func (n *Node) Stop(grace time.Duration) {
	if n.Speaker != nil {
		n.Speaker.Stop(grace)
	}
	n.Proc.Stop(grace)
}

// Logs is the daemon's log (and the speaker's).
func (n *Node) Logs() string {
	s := n.Proc.Logs()
	if n.Speaker != nil {
		s += "\n--- bird speaker ---\n" + n.Speaker.Logs()
	}
	return s
}

// RestoreLink brings node i's eth0 back up with its default route.
func (l *Lab) RestoreLink(i int) error {
	h := l.Node(i)
	if err := h.SetLinkUp(); err != nil {
		return err
	}
	// Wait for carrier, or the route is refused as unreachable.
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := l.DefaultRoute(h)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BGPView is the admin API's GET /api/v1/bgp.
type BGPView struct {
	Peers []bgp.PeerStatus `json:"peers"`
	VIPs  []bgp.VIPStatus  `json:"vips"`
}

// BGP returns the daemon's BGP view.
func (n *Node) BGP() (BGPView, error) {
	var v BGPView
	err := n.GetJSON("/api/v1/bgp", &v)
	return v, err
}

// AliveMembers returns the names of the alive members in the node's
// GET /api/v1/cluster view (Options.Cluster), sorted.
func (n *Node) AliveMembers() ([]string, error) {
	var cv struct {
		Enabled bool `json:"enabled"`
		Members []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"members"`
	}
	if err := n.GetJSON("/api/v1/cluster", &cv); err != nil {
		return nil, err
	}
	if !cv.Enabled {
		return nil, fmt.Errorf("%s: cluster not enabled", n.Name)
	}
	var out []string
	for _, m := range cv.Members {
		if m.State == "alive" {
			out = append(out, m.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Counters are a node's fast-path counters for the VIP.
type Counters struct {
	Packets, NewFlows float64
	// MissesNonSYN are packets of flows the node has no conntrack entry
	// for that are not a SYN: flows it took over from another node.
	MissesNonSYN float64
	BackendFlows map[string]float64 // backend name → new flows
}

// Counters scrapes the node's portcullis_l4_* metrics for the VIP.
func (n *Node) Counters() (Counters, error) {
	m, err := n.Metrics()
	if err != nil {
		return Counters{}, err
	}
	c := Counters{BackendFlows: map[string]float64{}}
	var ok bool
	if c.Packets, ok = m.Get("portcullis_l4_service_packets_total", "service="+VIPName); !ok {
		return c, fmt.Errorf("%s: no portcullis_l4_service_packets_total{service=%q}", n.Name, VIPName)
	}
	c.NewFlows, _ = m.Get("portcullis_l4_service_new_flows_total", "service="+VIPName)
	c.MissesNonSYN, _ = m.Get("portcullis_l4_service_conntrack_misses_non_syn_total", "service="+VIPName)
	for _, be := range n.lab.Backends {
		c.BackendFlows[be.Name], _ = m.Get("portcullis_l4_backend_new_flows_total", "service="+VIPName, "backend="+be.Name)
	}
	return c, nil
}

// VIPAddr is VIP:80.
func VIPAddr() string { return netip.AddrPortFrom(VIP, VIPPort).String() }
