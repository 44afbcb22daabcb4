package config

import (
	"fmt"
	"net/netip"
)

// ParseEncapSource reads l4.encap_source_v4/v6: a prefix, or a plain
// address meaning that address alone.
func ParseEncapSource(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix or an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
