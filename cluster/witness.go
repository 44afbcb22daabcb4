package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// witnessProber probes the witness every Interval. Down after Fails
// consecutive failures, up again after one success: a node that cannot
// see the witness must stop claiming quickly and for sure, while coming
// back costs nothing (non-preemptive VIPs stay where they are).
type witnessProber struct {
	cfg   Witness
	iface string
	in    func(func() error) error
	stop  chan struct{}
	once  sync.Once
	up    bool
	fails int
	seq   uint16
}

func newWitnessProber(cfg Witness, iface string, in func(func() error) error) *witnessProber {
	return &witnessProber{cfg: cfg, iface: iface, in: in, stop: make(chan struct{}), seq: uint16(rand.Uint32())}
}

// first runs one probe synchronously so that a starting node knows
// whether it may claim VIPs before its first election. Until a probe
// succeeds the witness counts as unreachable.
func (w *witnessProber) first() bool {
	w.up = w.probe() == nil
	return w.up
}

func (w *witnessProber) close() { w.once.Do(func() { close(w.stop) }) }

func (w *witnessProber) run(onChange func(up bool, detail string)) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		err := w.probe()
		select {
		case <-w.stop:
			return
		default:
		}
		switch {
		case err == nil:
			w.fails = 0
			if !w.up {
				w.up = true
				onChange(true, fmt.Sprintf("%s %s answered", w.cfg.Kind, w.cfg.Address))
			}
		default:
			w.fails++
			if w.up && w.fails >= w.cfg.Fails {
				w.up = false
				onChange(false, fmt.Sprintf("%s %s: %d probes failed in a row, last: %v", w.cfg.Kind, w.cfg.Address, w.fails, err))
			}
		}
	}
}

func (w *witnessProber) probe() error {
	w.seq++
	seq := w.seq
	return w.in(func() error {
		switch w.cfg.Kind {
		case WitnessTCP:
			return probeTCP(w.cfg.Address, w.cfg.Timeout)
		case WitnessICMP:
			return probeICMP(netip.MustParseAddr(w.cfg.Address).Unmap(), seq, w.cfg.Timeout)
		case WitnessARP:
			return probeARP(w.iface, netip.MustParseAddr(w.cfg.Address).Unmap(), w.cfg.Timeout)
		}
		return fmt.Errorf("unknown witness kind %q", w.cfg.Kind)
	})
}

// probeTCP: a refused connection means the host answered, which is all a
// witness has to prove.
func probeTCP(addr string, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err == nil {
		c.Close()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	return err
}

func probeICMP(dst netip.Addr, seq uint16, timeout time.Duration) error {
	network, laddr, proto := "ip4:icmp", "0.0.0.0", 1
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", 58
		typ, reply = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return err
	}
	defer c.Close()
	id := int(rand.Uint32() & 0xffff)
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: int(seq), Data: []byte("portcullis-witness")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	c.SetDeadline(deadline)
	if _, err := c.WriteTo(b, &net.IPAddr{IP: net.IP(dst.AsSlice())}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		k, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(proto, buf[:k])
		if err != nil || m.Type != reply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		ip, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if ok && e.ID == id && e.Seq == int(seq) && ip.Unmap() == dst {
			return nil
		}
	}
}

func probeARP(ifname string, dst netip.Addr, timeout time.Duration) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	_, err = c.Resolve(dst)
	return err
}
