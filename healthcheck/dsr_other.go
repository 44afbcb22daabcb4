//go:build !linux

package healthcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// DSRChecker needs Linux packet sockets; elsewhere it always fails.
type DSRChecker struct {
	Interface  string
	BackendMAC net.HardwareAddr
	VIP        netip.Addr
	Port       uint16
	Source     netip.Addr
	// Backend, Encap and OuterSource: see the Linux version.
	Backend     netip.Addr
	Encap       bool
	OuterSource netip.Addr
	GUEPort     uint16
}

// Check fails: there is no packet socket to send the probe with.
func (c *DSRChecker) Check(context.Context) (string, error) {
	return "", errors.New("dsr probe: needs Linux")
}
