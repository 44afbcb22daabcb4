package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BGP defaults. The router id is not filled in here: it comes from
// node.interface's address, which only the running daemon can read.
const (
	DefaultBGPListenPort     = 179
	DefaultBGPHoldTime       = 90 * time.Second
	DefaultBGPConnectRetry   = 5 * time.Second
	DefaultBGPWithdrawSettle = 2 * time.Second
	DefaultBFDInterval       = 300 * time.Millisecond
	DefaultBFDMultiplier     = 3
)

func (c *Config) applyBGPDefaults() {
	b := c.BGP
	if b == nil {
		return
	}
	def(&b.ListenPort, DefaultBGPListenPort)
	def(&b.WithdrawSettle, Duration(DefaultBGPWithdrawSettle))
	for i := range b.Peers {
		p := &b.Peers[i]
		def(&p.Port, DefaultBGPListenPort)
		def(&p.HoldTime, Duration(DefaultBGPHoldTime))
		def(&p.Keepalive, p.HoldTime/3)
		def(&p.ConnectRetry, Duration(DefaultBGPConnectRetry))
		if f := p.BFD; f != nil {
			if f.Enabled == nil {
				on := true
				f.Enabled = &on
			}
			def(&f.MinTx, Duration(DefaultBFDInterval))
			def(&f.MinRx, Duration(DefaultBFDInterval))
			def(&f.Multiplier, DefaultBFDMultiplier)
		}
	}
}

// wellKnownCommunities are the RFC 1997/7999/3765 names bgp.communities
// accepts besides ASN:value.
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xffffff01,
	"no-advertise":        0xffffff02,
	"no-export-subconfed": 0xffffff03,
	"no-peer":             0xffffff04,
	"blackhole":           0xffff029a,
}

// ParseCommunity reads a standard BGP community: "ASN:value" (each 0-65535)
// or a well-known name.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: write ASN:value (e.g. 65001:100) or one of no-export, no-advertise, no-export-subconfed, no-peer, blackhole", s)
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: both halves must be numbers 0-65535", s)
	}
	return uint32(a)<<16 | uint32(b), nil
}
