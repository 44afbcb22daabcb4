//go:build linux

package halab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/cluster/e2e"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The lab's addresses beyond cluster/e2e's (client .10, a .2, b .3, be1
// .21, be2 .22, witness .50, and e2e.VIP .100, which is the tcp-443 VIP).
var (
	// VIPHTTP is the http VIP (ha-pair's 192.0.2.80).
	VIPHTTP = netip.MustParseAddr("10.78.0.80")
	// VIPTCP is the tcp-443 VIP (ha-pair's 192.0.2.10): e2e.VIP, which
	// e2e.Build already puts on the backends' lo.
	VIPTCP = e2e.VIP
	// DefaultHostAddr is the machine's address on the lab's bridge.
	DefaultHostAddr = netip.MustParsePrefix("10.78.0.254/24")
)

const (
	// DefaultStateDir holds the state, configs, keys, logs and the control
	// socket. /run is a tmpfs, like /run/netns: both go at reboot.
	DefaultStateDir = "/run/portcullis-lab"
	// DefaultPrefix names the lab's namespaces ("pclab" + 6 hex digits).
	DefaultPrefix = "pclab"
	// HostLinkName is the caller link's suffix: "<lab>-h" on the machine.
	HostLinkName = "h"
	httpPort     = 80
	tcpPort      = 443
	appPort      = 8080
	adminPort    = 9900
	stateFile    = "state.json"
	socketFile   = "control.sock"
)

// Options are the flags of every command.
type Options struct {
	StateDir string // DefaultStateDir
	Prefix   string // DefaultPrefix
	Bin      string // the portcullis binary (up)
	Repo     string // the repository root (up; found from the working folder if empty)
	XDPMode  string // native (default) or generic
	// HostAddr is the machine's address on the lab's bridge; the zero
	// prefix means no link (dashboards only through `ip netns exec`).
	HostAddr netip.Prefix
	// Out receives what the commands print (os.Stdout if nil).
	Out io.Writer
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.XDPMode == "" {
		o.XDPMode = "native"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
}

// State is state.json: what `up` made, for the other commands and people.
type State struct {
	Lab        string            `json:"lab"`
	Prefix     string            `json:"prefix"`
	Dir        string            `json:"dir"`
	Supervisor int               `json:"supervisor_pid"`
	Namespaces map[string]string `json:"namespaces"` // host name → netns name
	Nodes      []Node            `json:"nodes"`
	Backends   []Backend         `json:"backends"`
	VIPs       []VIP             `json:"vips"`
	HostLink   string            `json:"host_link,omitempty"`
	HostAddr   string            `json:"host_addr,omitempty"`
	Token      string            `json:"admin_token"`
	TokenFile  string            `json:"admin_token_file"`
	XDPMode    string            `json:"xdp_mode"`
}

// Node is one LB node.
type Node struct {
	Name      string `json:"name"` // node.name (lb-a)
	Host      string `json:"host"` // lab host (a)
	NS        string `json:"netns"`
	Addr      string `json:"addr"`
	Dashboard string `json:"dashboard"`
	Config    string `json:"config"`
	PID       int    `json:"pid"`
	Log       string `json:"log"`
}

// Backend is one DSR backend.
type Backend struct {
	Name string `json:"name"`
	NS   string `json:"netns"`
	Addr string `json:"addr"`
	PID  int    `json:"pid"`
	Log  string `json:"log"`
}

// VIP is one floating service address.
type VIP struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // ip:port
	URL  string `json:"url"`
}

// supervisor holds the lab for as long as it runs.
type supervisor struct {
	o       Options
	repo    string
	nl      *netlab.Lab
	lab     *e2e.Lab
	link    *netlab.CallerLink
	cfg     map[string]string // host → rendered config
	nodes   map[string]string // host → node name
	mu      sync.Mutex        // one command at a time (failover)
	dmu     sync.Mutex        // daemons and state
	daemons map[string]*e2e.Daemon
	state   State
	stop    chan struct{}
	once    sync.Once
}

// Serve is the supervisor (`portcullis-lab serve`, started by Up): it
// builds and starts the lab, writes "ready" (or "error: ...") to ready,
// serves the control socket, and closes the lab on SIGTERM/SIGINT/SIGHUP
// or POST /down.
func Serve(o Options, ready io.WriteCloser) error {
	o.defaults()
	s := &supervisor{o: o, cfg: map[string]string{}, nodes: map[string]string{"a": "lb-a", "b": "lb-b"},
		daemons: map[string]*e2e.Daemon{}, stop: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		s.shutdown()
	}()
	fail := func(err error) error {
		fmt.Fprintf(ready, "error: %v\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		ready.Close()
		s.close()
		return err
	}
	if err := s.build(); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("unix", filepath.Join(o.StateDir, socketFile))
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: s.handler()}
	go srv.Serve(ln)
	if err := s.writeState(); err != nil {
		srv.Close()
		return fail(err)
	}
	io.WriteString(ready, "ready\n")
	ready.Close()
	logf("lab %s is up", s.nl.Name)
	<-s.stop
	srv.Close()
	s.close()
	os.Remove(filepath.Join(o.StateDir, socketFile))
	logf("lab %s is down", s.nl.Name)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
}

func (s *supervisor) shutdown() { s.once.Do(func() { close(s.stop) }) }

func (s *supervisor) close() {
	if s.lab != nil {
		s.lab.Close()
	}
	if s.nl != nil {
		if err := s.nl.Close(); err != nil {
			logf("closing lab: %v", err)
		}
	}
}

func (s *supervisor) build() error {
	o := s.o
	repo, err := FindRepo(o.Repo)
	if err != nil {
		return err
	}
	s.repo = repo
	if s.nl, err = netlab.Create(netlab.Options{Prefix: o.Prefix, StopGrace: 3 * time.Second}); err != nil {
		return err
	}
	logf("lab %s: building", s.nl.Name)
	if s.lab, err = e2e.Build(s.nl, e2e.Options{Bin: o.Bin, Dir: o.StateDir, XDPMode: o.XDPMode}); err != nil {
		return fmt.Errorf("build the topology: %w", err)
	}
	be3, err := s.lab.AddBackend("be3", e2e.BE3Addr)
	if err != nil {
		return fmt.Errorf("add be3: %w", err)
	}
	st := &s.state
	*st = State{Lab: s.nl.Name, Prefix: o.Prefix, Dir: o.StateDir, Supervisor: os.Getpid(), XDPMode: o.XDPMode,
		Namespaces: map[string]string{}}
	for _, h := range s.nl.Hosts() {
		st.Namespaces[h.Name] = h.NSName
	}
	st.Namespaces["bridge"] = s.nl.Bridge.NSName

	// Backends: the same script and sysctl file as the Vagrant backends.
	script := filepath.Join(repo, "vagrant", "provision", "dsr-backend.sh")
	backends := []*netlab.Host{s.lab.BE1, s.lab.BE2, be3}
	for _, be := range backends {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := be.Run(ctx, "bash", script, "setup", netlab.HostLink, VIPTCP.String())
		cancel()
		if err != nil {
			return fmt.Errorf("%s: dsr-backend.sh setup: %w\n%s", be.Name, err, out)
		}
		logPath := filepath.Join(o.StateDir, be.Name+".log")
		p, err := be.StartProcess(logPath, "bash", script, "serve", be.Name, fmt.Sprint(tcpPort), fmt.Sprint(appPort))
		if err != nil {
			return err
		}
		st.Backends = append(st.Backends, Backend{Name: be.Name, NS: be.NSName, Addr: be.IPv4().String(), PID: p.PID(), Log: logPath})
	}
	hc := s.lab.Client.HTTPClient()
	hc.Timeout = time.Second
	for _, be := range backends {
		url := fmt.Sprintf("http://%s:%d/healthz", be.IPv4(), appPort)
		if _, ok := e2e.WaitFor(15*time.Second, func() bool {
			resp, err := hc.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}); !ok {
			return fmt.Errorf("%s does not answer %s (log %s)", be.Name, url, filepath.Join(o.StateDir, be.Name+".log"))
		}
	}

	// The admin token.
	var tok [16]byte
	rand.Read(tok[:])
	st.Token = hex.EncodeToString(tok[:])
	st.TokenFile = filepath.Join(o.StateDir, "admin.token")
	if err := os.WriteFile(st.TokenFile, []byte(st.Token+"\n"), 0o600); err != nil {
		return err
	}

	// The machine on the bridge, for the dashboards.
	if o.HostAddr.IsValid() {
		if s.link, err = s.nl.AddCallerLink(HostLinkName, o.HostAddr); err != nil {
			return fmt.Errorf("host link: %w", err)
		}
		st.HostLink, st.HostAddr = s.link.Name, o.HostAddr.String()
	}

	// The ha-pair configs, rendered for the lab's addresses.
	env := map[string]string{
		"WITNESS_IP": e2e.WitnessAddr.Addr().String(),
		"LB_A_IP":    s.lab.A.IPv4().String(), "LB_A_MAC": s.lab.A.MAC.String(),
		"LB_B_IP": s.lab.B.IPv4().String(), "LB_B_MAC": s.lab.B.MAC.String(),
		"VIP_TCP": VIPTCP.String(), "VIP_HTTP": VIPHTTP.String(),
		"BE1_IP": s.lab.BE1.IPv4().String(), "BE1_MAC": s.lab.BE1.MAC.String(),
		"BE2_IP": s.lab.BE2.IPv4().String(), "BE2_MAC": s.lab.BE2.MAC.String(),
		"BE3_IP": be3.IPv4().String(), "BE3_MAC": be3.MAC.String(),
		"APP1_IP": s.lab.BE1.IPv4().String(), "APP2_IP": s.lab.BE2.IPv4().String(),
		"IFACE":        netlab.HostLink,
		"ADMIN_LISTEN": fmt.Sprintf("0.0.0.0:%d", adminPort),
		"TOKEN_FILE":   st.TokenFile,
		"XDP_MODE":     o.XDPMode,
	}
	for host, file := range map[string]string{"a": "node-a.yaml", "b": "node-b.yaml"} {
		cfg, err := Render(repo, file, env)
		if err != nil {
			return err
		}
		s.cfg[host] = cfg
	}
	for _, h := range []*netlab.Host{s.lab.A, s.lab.B} {
		if err := s.startDaemon(h); err != nil {
			return err
		}
	}
	if _, err := s.settled(30 * time.Second); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		ap   netip.AddrPort
		url  string
	}{
		{"http", netip.AddrPortFrom(VIPHTTP, httpPort), fmt.Sprintf("http://%s/", VIPHTTP)},
		{"tcp-443", netip.AddrPortFrom(VIPTCP, tcpPort), fmt.Sprintf("http://%s:%d/", VIPTCP, tcpPort)},
	} {
		st.VIPs = append(st.VIPs, VIP{Name: v.name, Addr: v.ap.String(), URL: v.url})
	}
	return nil
}

// Render runs vagrant/provision/render-config.sh on configs/ha-pair/file
// with env and returns the config.
func Render(repo, file string, env map[string]string) (string, error) {
	tmp, err := os.CreateTemp("", "halab-*.yaml")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("bash", filepath.Join(repo, "vagrant", "provision", "render-config.sh"),
		filepath.Join(repo, "configs", "ha-pair", file), tmp.Name())
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("render-config.sh %s: %w\n%s", file, err, out)
	}
	b, err := os.ReadFile(tmp.Name())
	return string(b), err
}

// FindRepo returns dir if set, else the first folder from the working
// folder up that holds configs/ha-pair and vagrant/provision.
func FindRepo(dir string) (string, error) {
	want := func(d string) bool {
		for _, f := range []string{"configs/ha-pair/node-a.yaml", "vagrant/provision/render-config.sh", "vagrant/provision/dsr-backend.sh"} {
			if _, err := os.Stat(filepath.Join(d, f)); err != nil {
				return false
			}
		}
		return true
	}
	if dir != "" {
		if !want(dir) {
			return "", fmt.Errorf("%s is not the portcullis repository (no configs/ha-pair or vagrant/provision)", dir)
		}
		return filepath.Abs(dir)
	}
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if want(d) {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("run from the portcullis repository, or pass -repo")
		}
		d = up
	}
}

func (s *supervisor) startDaemon(h *netlab.Host) error {
	d, err := s.lab.StartDaemon(h, s.cfg[h.Name])
	if err != nil {
		return fmt.Errorf("%s: %w", s.nodes[h.Name], err)
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.daemons[h.Name] = d
	n := Node{Name: s.nodes[h.Name], Host: h.Name, NS: h.NSName, Addr: h.IPv4().String(),
		Dashboard: fmt.Sprintf("http://%s:%d/", h.IPv4(), adminPort), Config: d.CfgPath, PID: d.Proc.PID(), Log: d.Proc.LogPath}
	for i := range s.state.Nodes {
		if s.state.Nodes[i].Host == h.Name {
			s.state.Nodes[i] = n
			return nil
		}
	}
	s.state.Nodes = append(s.state.Nodes, n)
	return nil
}

func (s *supervisor) daemon(host string) *e2e.Daemon {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.daemons[host]
}

func (s *supervisor) writeState() error {
	s.dmu.Lock()
	b, err := json.MarshalIndent(s.state, "", "  ")
	s.dmu.Unlock()
	if err != nil {
		return err
	}
	p := filepath.Join(s.o.StateDir, stateFile)
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// settled waits until both nodes run, see each other alive and healthy,
// agree on one owner for both VIPs, and only that node holds the tcp-443
// VIP on eth0. It returns the owner's host name.
func (s *supervisor) settled(within time.Duration) (string, error) {
	var last, owner string
	_, ok := e2e.WaitFor(within, func() bool {
		owner = ""
		var b strings.Builder
		for _, host := range []string{"a", "b"} {
			d := s.daemon(host)
			if d == nil || d.Proc.Exited() {
				last = host + " is not running"
				return false
			}
			cv, err := d.Cluster()
			fmt.Fprintf(&b, "%s: owners %v (%v); ", s.nodes[host], cv.Owners, err)
			if err != nil || !cv.Healthy("lb-a") || !cv.Healthy("lb-b") {
				last = b.String()
				return false
			}
			for _, vip := range []string{"http", "tcp-443"} {
				o := cv.Owners[vip]
				if o == "" || owner != "" && o != owner {
					last = b.String()
					return false
				}
				owner = o
			}
		}
		last = b.String()
		holders := 0
		for _, h := range []*netlab.Host{s.lab.A, s.lab.B} {
			if has, _ := e2e.HasVIP(h); has {
				holders++
				if s.nodes[h.Name] != owner {
					return false
				}
			}
		}
		return holders == 1
	})
	if !ok {
		return "", fmt.Errorf("the pair did not settle within %s: %s", within, last)
	}
	for h, n := range s.nodes {
		if n == owner {
			return h, nil
		}
	}
	return "", fmt.Errorf("unknown owner %q", owner)
}

// liveView is GET /status: the state plus each node's view now.
type liveView struct {
	State
	Views map[string]any `json:"views"`
}

func (s *supervisor) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s.dmu.Lock()
		v := liveView{State: s.state, Views: map[string]any{}}
		s.dmu.Unlock()
		for _, host := range []string{"a", "b"} {
			d := s.daemon(host)
			if d == nil || d.Proc.Exited() {
				v.Views[s.nodes[host]] = "not running"
				continue
			}
			cv, err := d.Cluster()
			if err != nil {
				v.Views[s.nodes[host]] = err.Error()
				continue
			}
			v.Views[s.nodes[host]] = cv
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
	mux.HandleFunc("POST /failover", func(w http.ResponseWriter, r *http.Request) {
		dur, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || dur <= 0 || dur > time.Minute {
			dur = 5 * time.Second
		}
		if !s.mu.TryLock() {
			http.Error(w, "another command is running", http.StatusConflict)
			return
		}
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fw := &flushWriter{w: w}
		if err := s.failover(fw, dur); err != nil {
			fmt.Fprintf(fw, "FAILED: %v\n", err)
		} else {
			fmt.Fprintln(fw, "OK")
		}
	})
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "stopping\n")
		s.shutdown()
	})
	return mux
}

type flushWriter struct{ w http.ResponseWriter }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
