// Package decap loads and attaches the backend side of the ipip and gue
// forwarding modes (bpf/xdp_decap.c): on a backend's interface it strips
// the outer header of IP-in-IP (and, with GUEPort, IP-in-UDP) packets from allowed load balancers and
// passes the client's packet to the local stack, where the server holding
// the VIP on lo answers the client directly. `portcullis decap` runs it.
//
//	p, err := decap.New(decap.Config{Interface: "eth0", Allow: lbs}, log)
//	err = p.Attach()
//	defer p.Close()
package decap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4"
	"github.com/portcullis-lb/portcullis/l4/internal/bpfconv"
)

// Config is fixed for the life of a Program.
type Config struct {
	// Interface receives the encapsulated packets.
	Interface string
	// Mode is "auto" (native, falling back to generic), "native" or
	// "generic". Empty means auto.
	Mode string
	// Allow lists the load balancers' outer source addresses (their
	// encap source prefixes, or their own addresses). Encapsulated
	// packets from anywhere else are dropped and counted: without the
	// check, anyone who can reach this host could inject packets that
	// seem to come from any client. At least one prefix is required.
	Allow []netip.Prefix
	// Local are the outer destinations that are this host's. Empty means
	// the interface's addresses when New runs.
	Local []netip.Addr
	// GUEPort also takes GUE (IP in UDP to this port, the load balancer's
	// l4.gue_port); 0 takes only IP-in-IP, and every UDP packet passes.
	GUEPort uint16
}

// Stats are the program's counters summed over CPUs, by their C names
// (decap_v4, drop_not_allowed, ...; see bpf/decap_maps.h).
type Stats map[string]uint64

// Program is the loaded decap program and its maps.
type Program struct {
	cfg  Config
	log  *slog.Logger
	objs bpf.DecapObjects

	mu     sync.Mutex
	link   link.Link
	mode   string
	pinned string
}

// New loads the program and fills the allow-list and local addresses;
// nothing is attached yet.
func New(cfg Config, log *slog.Logger) (*Program, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Allow) == 0 {
		return nil, errors.New("decap: no allow-list: name the load balancers' encap source prefixes")
	}
	if len(cfg.Local) == 0 && cfg.Interface != "" {
		ifc, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("decap: interface %q: %w", cfg.Interface, err)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("decap: interface %q: %w", cfg.Interface, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && !ip.IsLinkLocalUnicast() {
					cfg.Local = append(cfg.Local, ip.Unmap())
				}
			}
		}
	}
	if len(cfg.Local) == 0 {
		return nil, fmt.Errorf("decap: no local addresses (interface %q has none)", cfg.Interface)
	}
	p := &Program{cfg: cfg, log: log}
	spec, err := bpf.LoadDecap()
	if err != nil {
		return nil, fmt.Errorf("decap: parse object: %w", err)
	}
	if err := spec.Variables[bpf.DecapVarGuePort].Set(cfg.GUEPort); err != nil {
		return nil, fmt.Errorf("decap: set gue_port: %w", err)
	}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("decap: load program: %+v", ve)
		}
		return nil, fmt.Errorf("decap: load program: %w", err)
	}
	for _, pr := range cfg.Allow {
		if err := p.objs.DecapAllow.Put(PrefixKey(pr), uint32(1)); err != nil {
			p.objs.Close()
			return nil, fmt.Errorf("decap: allow %s: %w", pr, err)
		}
	}
	for _, a := range cfg.Local {
		if err := p.objs.DecapLocal.Put(bpfconv.AddrWords(a), uint32(1)); err != nil {
			p.objs.Close()
			return nil, fmt.Errorf("decap: local %s: %w", a, err)
		}
	}
	return p, nil
}

// PrefixKey is the decap_allow key of a prefix: v4-mapped, IPv4 lengths
// plus 96.
func PrefixKey(p netip.Prefix) bpf.DecapDecapPrefix {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return bpf.DecapDecapPrefix{Prefixlen: uint32(bits), Addr: bpfconv.AddrWords(p.Addr())}
}

// Attach attaches the program to Config.Interface.
func (p *Program) Attach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link != nil {
		return errors.New("decap: already attached")
	}
	l, mode, err := l4.AttachXDP(p.objs.XdpDecap, p.cfg.Interface, p.cfg.Mode, p.log)
	if err != nil {
		return fmt.Errorf("decap: %w", err)
	}
	p.link, p.mode = l, mode
	p.log.Info("decap attached", "interface", p.cfg.Interface, "mode", mode, "allow", p.cfg.Allow, "local", p.cfg.Local, "gue_port", p.cfg.GUEPort)
	return nil
}

// AttachedMode is "native", "generic", or "" when not attached.
func (p *Program) AttachedMode() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Stats reads the counters.
func (p *Program) Stats() (Stats, error) { return readStats(p.objs.DecapStats) }

func readStats(m *ebpf.Map) (Stats, error) {
	var percpu []bpf.DecapDecapCounters
	if err := m.Lookup(uint32(0), &percpu); err != nil {
		return nil, fmt.Errorf("decap: read counters: %w", err)
	}
	var sum bpf.DecapDecapCounters
	bpfconv.SumInto(&sum, percpu)
	return Stats(bpfconv.Fields(&sum)), nil
}

// DefaultPinDir is where a running `portcullis decap` pins its counters
// for `portcullis decap --stats`: per network namespace and interface, so
// backends in namespaces of one host (a test lab) do not collide.
func DefaultPinDir(ifname string) string {
	ns := "host"
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err == nil {
		ns = fmt.Sprint(st.Ino)
	}
	return filepath.Join("/sys/fs/bpf/portcullis/decap", ns, ifname)
}

// Pin pins the counters map in dir (mounting bpffs on /sys/fs/bpf first
// if it is not there); Close removes the pin.
func (p *Program) Pin(dir string) error {
	if err := ensureBPFFS(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("decap: pin: %w", err)
	}
	path := filepath.Join(dir, "stats")
	os.Remove(path) // a pin left by a killed process
	if err := p.objs.DecapStats.Pin(path); err != nil {
		return fmt.Errorf("decap: pin: %w", err)
	}
	p.mu.Lock()
	p.pinned = path
	p.mu.Unlock()
	return nil
}

func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o755); err != nil {
		return fmt.Errorf("decap: bpffs: %w", err)
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
		return fmt.Errorf("decap: mount bpffs on /sys/fs/bpf: %w", err)
	}
	return nil
}

// ReadPinnedStats reads the counters a running `portcullis decap` pinned
// in dir.
func ReadPinnedStats(dir string) (Stats, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "stats"), &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("decap: no running decap program's counters in %s: %w", dir, err)
	}
	defer m.Close()
	return readStats(m)
}

// Close detaches the program, removes the pin and frees the maps.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
		p.link, p.mode = nil, ""
	}
	if p.pinned != "" {
		errs = append(errs, p.objs.DecapStats.Unpin())
		p.pinned = ""
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// Collector exports the counters as portcullis_decap_* metrics.
func (p *Program) Collector() prometheus.Collector { return collector{p} }

type collector struct{ p *Program }

var (
	descPackets = prometheus.NewDesc("portcullis_decap_packets_total",
		"Encapsulated packets stripped and passed, by inner family.", []string{"family"}, nil)
	descGUE = prometheus.NewDesc("portcullis_decap_gue_packets_total",
		"Of the packets passed, those that came in GUE (IP in UDP).", nil, nil)
	descBytes = prometheus.NewDesc("portcullis_decap_bytes_total",
		"Bytes of the inner frames passed.", nil, nil)
	descExceptions = prometheus.NewDesc("portcullis_decap_exceptions_total",
		"Packets not decapsulated, by reason (see bpf/xdp_decap.c): drop_* were dropped, pass_* passed untouched.", []string{"reason"}, nil)
	descAttached = prometheus.NewDesc("portcullis_decap_xdp_attached",
		"1 for the XDP attach mode in force.", []string{"mode"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descGUE, descBytes, descExceptions, descAttached} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.p.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPackets, err)
		return
	}
	for k, v := range st {
		switch k {
		case "decap_v4":
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(v), "ipv4")
		case "decap_v6":
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(v), "ipv6")
		case "decap_bytes":
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(v))
		case "decap_gue":
			ch <- prometheus.MustNewConstMetric(descGUE, prometheus.CounterValue, float64(v))
		default:
			ch <- prometheus.MustNewConstMetric(descExceptions, prometheus.CounterValue, float64(v), k)
		}
	}
	if m := c.p.AttachedMode(); m != "" {
		ch <- prometheus.MustNewConstMetric(descAttached, prometheus.GaugeValue, 1, m)
	}
}
