//go:build linux

package e2e

import (
	"net/netip"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// BE3Addr is a third backend's address, for labs that add one with
// AddBackend (`make lab` does; the tests use be1 and be2).
var BE3Addr = netip.MustParsePrefix("10.78.0.23/24")

// AddBackend adds a DSR backend host as Build adds be1 and be2: the VIP on
// lo with the ARP sysctls (netlab's MakeDSRBackend) and, in native XDP
// mode, TX checksum offload off. It serves nothing: the caller starts its
// servers.
func (l *Lab) AddBackend(name string, addr netip.Prefix) (*netlab.Host, error) {
	h, err := l.Net.NewHost(name, addr)
	if err != nil {
		return nil, err
	}
	if err := h.MakeDSRBackend(VIP); err != nil {
		return nil, err
	}
	if l.XDPMode == "native" {
		if err := h.DisableTxOffload(); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	return h, nil
}
