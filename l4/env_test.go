package l4

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/portcullis-lb/portcullis/bpf"
	"github.com/portcullis-lb/portcullis/l4/flowhash"
)

// env is a loaded (never attached) Dataplane driven by BPF_PROG_TEST_RUN.
type env struct {
	t    testing.TB
	d    *Dataplane
	svcs []Service
}

func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads the XDP program and runs it with BPF_PROG_TEST_RUN")
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, cfg Config, svcs []Service) *env {
	t.Helper()
	requireBPF(t)
	d, err := newDataplane(cfg, quietLog(), lbMAC)
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
			t.Skipf("BPF unavailable here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e := &env{t: t, d: d}
	e.apply(svcs)
	return e
}

func (e *env) apply(svcs []Service) {
	e.t.Helper()
	e.svcs = svcs
	if err := e.d.Apply(svcs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run(in []byte) (uint32, []byte) {
	e.t.Helper()
	out := make([]byte, len(in)+256)
	opts := ebpf.RunOptions{Data: in, DataOut: out, Repeat: 1}
	ret, err := e.d.objs.XdpLb.Run(&opts)
	if err != nil {
		e.t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut
}

func (e *env) service(name string) *Service {
	for i := range e.svcs {
		if e.svcs[i].Name == name {
			return &e.svcs[i]
		}
	}
	e.t.Fatalf("no service %q", name)
	return nil
}

// modelBackend is where the Go side (flowhash + maglev) says a new flow
// goes: what `portcullis maglev explain` will print.
func (e *env) modelBackend(svc string, p pkt) *Backend {
	e.t.Helper()
	s := e.service(svc)
	tab, err := MaglevTable(s, e.d.cfg.MaglevSize, e.d.cfg.HashSeed)
	if err != nil {
		e.t.Fatal(err)
	}
	i := tab.Lookup(flowhash.Hash(e.d.cfg.HashSeed, p.src, p.dst, p.sport, p.dport, p.proto))
	if i < 0 {
		return nil
	}
	return &s.Backends[i]
}

func (e *env) stats() Stats {
	e.t.Helper()
	st, err := e.d.Stats()
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// ctKey is the conntrack key of a tuple, from flowhash's wire layout.
func ctKey(src, dst netip.Addr, sport, dport uint16, proto uint8) bpf.LBFlowKey {
	k := flowhash.MakeKey(src, dst, sport, dport, proto)
	var fk bpf.LBFlowKey
	for i := range 4 {
		fk.Src[i] = le32(k[4*i:])
		fk.Dst[i] = le32(k[16+4*i:])
	}
	fk.Ports = le32(k[32:])
	fk.Proto = proto
	return fk
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0xbe, 0, 0, 0, last} }

func dsr(name string, last byte) Backend {
	return Backend{Name: name, Addr: netip.AddrFrom4([4]byte{10, 1, 0, last}), MAC: mac(last), Mode: ModeDSRL2, Weight: 1}
}
