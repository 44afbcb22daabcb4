// Package l4 loads, attaches and feeds the XDP fast path (bpf/xdp_lb.c):
// VIPs, backends, per-VIP Maglev tables and QUIC node ids go in through
// Apply, counters come out through Stats and Collector.
//
// The daemon owns one Dataplane per interface:
//
//	dp, err := l4.New(cfg, log)   // load (no traffic yet)
//	err = dp.Apply(services)      // desired state, on every config/health change
//	err = dp.Attach()             // start taking packets
//	defer dp.Close()
package l4

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/maglev"
)

// Forwarding modes of a Backend.
const (
	// ModeLocal hands the packet to this node's stack (XDP_PASS), for
	// VIPs served by the local L7 proxy.
	ModeLocal = "local"
	// ModeDSRL2 rewrites the destination MAC to the backend's and the
	// source MAC to the interface's, and sends the frame back out
	// (XDP_TX). The backend must hold the VIP on lo with arp_ignore=1
	// and arp_announce=2, and be on the same L2 segment.
	ModeDSRL2 = "dsr-l2"
	// ModeIPIP wraps the client's packet in an outer IPv4 (IPv6) header
	// to the backend's address and sends it to MAC, the next hop (the
	// router towards the backend, or the backend on the same segment),
	// with XDP_TX. The backend runs the decap program (portcullis decap)
	// and holds the VIP on lo; the VIP and the backend must be of the
	// same family. See docs/encapsulation.md.
	ModeIPIP = "ipip"
	// ModeGUE is ModeIPIP with a UDP header between the outer and the
	// client's IP header (GUE variant 1), to Config.GUEPort: for networks
	// that pass or balance only TCP/UDP, and NICs that spread only UDP
	// by ports. The decap program takes it with --gue-port.
	ModeGUE = "gue"
)

// Attach modes of Config.Mode and AttachedMode.
const (
	AttachAuto    = "auto"
	AttachNative  = "native"
	AttachGeneric = "generic"
)

// Mirrors of bpf/lb_consts.h that are not map sizes (map sizes are read
// from the object itself).
const (
	beModeLocal  = 1
	beModeDSRL2  = 2
	beModeIPIP   = 3
	beModeGUE    = 4
	beFlagDown   = 1 << 0
	beFlagV6     = 1 << 1
	vipFlagQUIC  = 1 << 0
	quicNodeSlot = 256
	// vipIndexCollide is VIP_INDEX_COLLIDE.
	vipIndexCollide = 0xFFFFFFFF
	// maglevChunk is MAGLEV_CHUNK: slots per inner-array element.
	maglevChunk = 32
)

// Defaults for zero Config fields.
const (
	// DefaultConntrackSize holds 256Ki flows, about 30 MB of kernel
	// memory (LRU element overhead plus a 40-byte key and 16-byte value).
	DefaultConntrackSize = 1 << 18
	// DefaultUDPTimeout is how long a UDP flow stays pinned to its
	// backend without packets.
	DefaultUDPTimeout = 30 * time.Second
	// DefaultSYNFloodRate is Katran's MAX_CONN_RATE: above 125k SYNs per
	// second on one CPU, SYNs stop opening conntrack entries.
	DefaultSYNFloodRate = 125000
	// NoSYNFloodGuard as Config.SYNFloodRate turns the guard off: every
	// SYN opens an entry.
	NoSYNFloodGuard = math.MaxUint32
)

// Config is fixed for the life of a Dataplane: every field is compiled
// into the program or sizes a map at load time.
type Config struct {
	// Interface to attach to. Its MAC becomes the source MAC of DSR frames
	// and the only destination MAC whose VIP packets the program handles:
	// frames for other hosts that reach the interface (a switch flooding
	// unknown unicast, promiscuous mode) and multicast/broadcast pass to
	// the stack untouched, counted as pass_not_ours.
	// May be empty for a Dataplane that is only loaded (tests, tooling);
	// its MAC is then 00:00:00:00:00:00.
	Interface string
	// Mode is "auto" (native XDP, falling back to generic), "native" or
	// "generic". Empty means auto.
	Mode string
	// ConntrackSize is the LRU connection table capacity in flows; 0 means
	// DefaultConntrackSize. When full, each new flow evicts the least
	// recently used one (which re-hashes to the same backend if the
	// Maglev table has not changed).
	ConntrackSize uint32
	// UDPTimeout unpins an idle UDP flow; 0 means DefaultUDPTimeout.
	UDPTimeout time.Duration
	// HashSeed seeds the flow hash and the Maglev permutations. It must be
	// the same on every node so they agree on where a flow goes.
	HashSeed uint32
	// MaglevSize is the table size M per VIP, a prime; 0 means
	// maglev.DefaultSize (65537). Two tables of 4*M bytes exist per VIP.
	MaglevSize uint32
	// SYNFloodRate is the SYN flood guard: when one CPU sees more SYNs
	// than this within a second, further SYNs of that second are
	// balanced by Maglev without a conntrack entry (counted as
	// ct_syn_unpinned); a real connection gets its entry from its first
	// non-SYN packet. This keeps a SYN flood from evicting live flows and
	// halves what each spoofed SYN costs, at the price that a Maglev
	// table change between such a SYN and its ACK moves that handshake.
	// 0 means DefaultSYNFloodRate; NoSYNFloodGuard turns it off.
	SYNFloodRate uint32
	// EncapSource4 and EncapSource6 are where the outer source address of
	// ipip packets comes from. A prefix: each flow gets the prefix with
	// host bits derived from the client's address and port, so that the
	// backend's RSS (which hashes the outer addresses) spreads flows over
	// its queues; the backends' decap allow-list must contain the prefix,
	// and the backends must route it back nowhere (replies go to the
	// client). A single address (/32, /128) is used as it is. IPv6 varies
	// at most the last 32 bits. Invalid (zero) means the interface's
	// first global address of that family, as a single address; ipip
	// backends of a family with neither are refused by Apply.
	EncapSource4, EncapSource6 netip.Prefix
	// EncapMTU is the L3 MTU of the path to the backends. A packet whose
	// encapsulated size would exceed it is answered with ICMP
	// fragmentation-needed / ICMPv6 packet-too-big (advertising EncapMTU
	// minus the outer header) so the client lowers its path MTU, or, with
	// EncapDropTooBig, dropped. 0 means DefaultEncapMTU.
	EncapMTU        uint32
	EncapDropTooBig bool
	// GUEPort is the UDP destination port of gue packets; 0 means
	// DefaultGUEPort.
	GUEPort uint16

	// encapRequired is false only for the A/B benchmark's baselines.
	encapRequired bool
}

// DefaultEncapMTU is Ethernet's: encapsulated packets must fit in 1500.
const DefaultEncapMTU = 1500

// DefaultGUEPort is Katran's GUE port.
const DefaultGUEPort = 6080

// Service is one VIP: (Addr, Port, Proto) and its ordered backends. The
// order matters: it is part of the Maglev input, and every node must use
// the same order to compute the same table.
type Service struct {
	Name  string
	Addr  netip.Addr
	Port  uint16
	Proto uint8 // 6 (TCP) or 17 (UDP)
	// QUIC routes short-header packets by the node id in the first byte of
	// the destination connection ID. UDP only.
	QUIC     bool
	Backends []Backend
}

// Backend is one destination of a Service. Name is its identity: it
// keys the Maglev permutation and the counters.
type Backend struct {
	Name string
	Addr netip.Addr // kept in the record for encapsulating modes
	MAC  net.HardwareAddr
	Mode string // ModeLocal or ModeDSRL2
	// Weight 0 drains: no new flows, established flows stay.
	Weight uint32
	// Down removes the backend from the table and moves its flows.
	Down bool
	// QUICNodeID (1..255) is the first connection-ID byte this backend's
	// proxy issues; 0 means none.
	QUICNodeID uint8
}

// ErrInvalid wraps every validation error of Apply.
var ErrInvalid = errors.New("l4: invalid service set")

// loadLBSpec parses the balancer object; benchmarks comparing variants
// of the C program replace it.
var loadLBSpec = bpf.LoadLB

// Dataplane is the loaded XDP program and its maps.
type Dataplane struct {
	cfg      Config
	log      *slog.Logger
	objs     bpf.LBObjects
	inner    *ebpf.MapSpec
	ncpu     int
	maxVIPs  uint32
	maxBEs   uint32
	filterN  uint32
	localMAC [6]byte

	mu     sync.Mutex
	link   link.Link
	mode   string
	st     state
	writes uint64 // map mutations by Apply; tests use it to prove idempotence
	slots  []uint32

	ctMu      sync.Mutex
	ctCount   uint64
	ctCounted time.Time
}

// New loads the XDP program and its maps with cfg compiled in. Nothing
// is attached; Apply may be called before Attach so the first packet
// already sees the full configuration.
func New(cfg Config, log *slog.Logger) (*Dataplane, error) {
	cfg.encapRequired = true
	var mac net.HardwareAddr
	if cfg.Interface != "" {
		ifc, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("l4: interface %q: %w", cfg.Interface, err)
		}
		mac = ifc.HardwareAddr
		p4, p6 := interfaceSources(ifc)
		if !cfg.EncapSource4.IsValid() {
			cfg.EncapSource4 = p4
		}
		if !cfg.EncapSource6.IsValid() {
			cfg.EncapSource6 = p6
		}
	}
	return newDataplane(cfg, log, mac)
}

func newDataplane(cfg Config, log *slog.Logger, mac net.HardwareAddr) (*Dataplane, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Mode == "" {
		cfg.Mode = AttachAuto
	}
	switch cfg.Mode {
	case AttachAuto, AttachNative, AttachGeneric:
	default:
		return nil, fmt.Errorf("l4: mode %q: want auto, native or generic", cfg.Mode)
	}
	if cfg.ConntrackSize == 0 {
		cfg.ConntrackSize = DefaultConntrackSize
	}
	if cfg.UDPTimeout == 0 {
		cfg.UDPTimeout = DefaultUDPTimeout
	}
	if cfg.UDPTimeout < 0 {
		return nil, fmt.Errorf("l4: udp timeout %v is negative", cfg.UDPTimeout)
	}
	if cfg.MaglevSize == 0 {
		cfg.MaglevSize = maglev.DefaultSize
	}
	if cfg.SYNFloodRate == 0 {
		cfg.SYNFloodRate = DefaultSYNFloodRate
	}
	if cfg.EncapMTU == 0 {
		cfg.EncapMTU = DefaultEncapMTU
	}
	if cfg.GUEPort == 0 {
		cfg.GUEPort = DefaultGUEPort
	}
	if cfg.EncapMTU < 1280 || cfg.EncapMTU > 65535 {
		return nil, fmt.Errorf("l4: encap mtu %d: want 1280..65535", cfg.EncapMTU)
	}
	for _, p := range []netip.Prefix{cfg.EncapSource4, cfg.EncapSource6} {
		if p.IsValid() && (p.Addr().Is4In6() || p.Addr().Zone() != "") {
			return nil, fmt.Errorf("l4: encap source %s: want a plain IPv4 or IPv6 prefix", p)
		}
	}
	if cfg.EncapSource4.IsValid() && !cfg.EncapSource4.Addr().Is4() {
		return nil, fmt.Errorf("l4: encap source v4 %s is not IPv4", cfg.EncapSource4)
	}
	if cfg.EncapSource6.IsValid() && !cfg.EncapSource6.Addr().Is6() {
		return nil, fmt.Errorf("l4: encap source v6 %s is not IPv6", cfg.EncapSource6)
	}
	if !maglev.IsPrime(uint64(cfg.MaglevSize)) || cfg.MaglevSize > maglev.MaxSize {
		return nil, fmt.Errorf("l4: maglev size %d: want a prime <= %d", cfg.MaglevSize, maglev.MaxSize)
	}
	if len(mac) != 0 && len(mac) != 6 {
		return nil, fmt.Errorf("l4: interface %q: MAC %s is not Ethernet", cfg.Interface, mac)
	}

	spec, err := loadLBSpec()
	if err != nil {
		return nil, fmt.Errorf("l4: parse object: %w", err)
	}
	d := &Dataplane{cfg: cfg, log: log, ncpu: ebpf.MustPossibleCPU()}
	copy(d.localMAC[:], mac)

	timeout := uint64(cfg.UDPTimeout.Nanoseconds())
	src4, mask4, src6, mask6 := encapSourceVars(cfg.EncapSource4, cfg.EncapSource6)
	icmp := uint8(1)
	if cfg.EncapDropTooBig {
		icmp = 0
	}
	for name, v := range map[string]any{
		bpf.LBVarEncapSrc4:    src4,
		bpf.LBVarEncapMask4:   mask4,
		bpf.LBVarEncapSrc6:    src6,
		bpf.LBVarEncapMask6:   mask6,
		bpf.LBVarEncapMtu:     cfg.EncapMTU,
		bpf.LBVarEncapIcmp:    icmp,
		bpf.LBVarMaglevSize:   cfg.MaglevSize,
		bpf.LBVarHashSeed:     cfg.HashSeed,
		bpf.LBVarUdpTimeoutNs: timeout,
		bpf.LBVarUdpRefreshNs: timeout / 8,
		bpf.LBVarSynFloodRate: cfg.SYNFloodRate,
		bpf.LBVarLocalMac:     d.localMAC,
	} {
		vs, ok := spec.Variables[name]
		if !ok && strings.HasPrefix(name, "encap_") && !cfg.encapRequired {
			// An object built before issue #11, loaded by the A/B
			// benchmark as a baseline; it has no ipip mode to configure.
			continue
		}
		if !ok {
			return nil, fmt.Errorf("l4: object has no variable %q", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("l4: set %s: %w", name, err)
		}
	}
	spec.Maps[bpf.LBMapConntrack].MaxEntries = cfg.ConntrackSize
	outer := spec.Maps[bpf.LBMapMaglevTables]
	outer.InnerMap.MaxEntries = (cfg.MaglevSize + maglevChunk - 1) / maglevChunk
	d.inner = outer.InnerMap.Copy()
	d.maxVIPs = spec.Maps[bpf.LBMapVips].MaxEntries
	d.maxBEs = spec.Maps[bpf.LBMapBackends].MaxEntries
	d.filterN = spec.Maps[bpf.LBMapVipFilter].MaxEntries * 64

	// Programs and maps only: the variables were set above, and an A/B
	// baseline object may lack some of them.
	loaded := struct {
		bpf.LBPrograms
		bpf.LBMaps
	}{}
	err = spec.LoadAndAssign(&loaded, nil)
	d.objs.LBPrograms, d.objs.LBMaps = loaded.LBPrograms, loaded.LBMaps
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("l4: load program: %+v", ve)
		}
		return nil, fmt.Errorf("l4: load program: %w", err)
	}
	d.st = newState(d.maxVIPs, d.maxBEs)
	d.slots = make([]uint32, cfg.MaglevSize)
	return d, nil
}

// Attach attaches the program to Config.Interface. In auto mode it tries
// native (driver) XDP first and falls back to generic; the flags are
// always explicit because the kernel's own fallback is silent.
func (d *Dataplane) Attach() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.link != nil {
		return errors.New("l4: already attached")
	}
	l, mode, err := attach(d.objs.XdpLb, d.cfg.Interface, d.cfg.Mode, d.log)
	if err != nil {
		return err
	}
	d.link, d.mode = l, mode
	d.log.Info("xdp attached", "interface", d.cfg.Interface, "mode", mode)
	return nil
}

// AttachXDP attaches an XDP program to an interface the way Attach does
// (mode auto, native or generic; explicit flags, auto falls back to
// generic with a warning) and says which mode is in force. The decap
// program (l4/decap) uses it.
func AttachXDP(prog *ebpf.Program, ifname, mode string, log *slog.Logger) (link.Link, string, error) {
	if log == nil {
		log = slog.Default()
	}
	if mode == "" {
		mode = AttachAuto
	}
	return attach(prog, ifname, mode, log)
}

func attach(prog *ebpf.Program, ifname, mode string, log *slog.Logger) (link.Link, string, error) {
	if ifname == "" {
		return nil, "", errors.New("l4: no interface configured")
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, "", fmt.Errorf("l4: interface %q: %w", ifname, err)
	}
	try := func(flags link.XDPAttachFlags) (link.Link, error) {
		return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: flags})
	}
	switch mode {
	case AttachNative:
		l, err := try(link.XDPDriverMode)
		if err != nil {
			return nil, "", fmt.Errorf("l4: attach native xdp to %q: %w", ifname, err)
		}
		return l, AttachNative, nil
	case AttachGeneric:
		l, err := try(link.XDPGenericMode)
		if err != nil {
			return nil, "", fmt.Errorf("l4: attach generic xdp to %q: %w", ifname, err)
		}
		return l, AttachGeneric, nil
	}
	l, err := try(link.XDPDriverMode)
	if err == nil {
		return l, AttachNative, nil
	}
	log.Warn("native xdp unavailable, falling back to generic", "interface", ifname, "error", err)
	l, gerr := try(link.XDPGenericMode)
	if gerr != nil {
		return nil, "", fmt.Errorf("l4: attach xdp to %q: native: %v; generic: %w", ifname, err, gerr)
	}
	return l, AttachGeneric, nil
}

// AttachedMode is "native", "generic", or "" when not attached.
func (d *Dataplane) AttachedMode() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode
}

// Close detaches the program and releases every map. Established flows
// are forgotten; on another node with the same config they re-hash to
// the same backends.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
		d.link, d.mode = nil, ""
	}
	for _, v := range d.st.vips {
		for _, m := range v.tables {
			if m != nil {
				errs = append(errs, m.Close())
			}
		}
	}
	d.st.vips = nil
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}
