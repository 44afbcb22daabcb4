package config

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// validateProxy checks the proxy-wide L7 settings. It is called from
// validate beside the listener, pool and route checks.
func (v *validator) validateProxy() {
	l7 := &v.c.L7
	for i, s := range l7.TrustedProxies {
		p := fmt.Sprintf("l7.trusted_proxies[%d]", i)
		if _, err := ParseTrustedProxy(s); err != nil {
			v.errorf(p, "%q is neither an IP address nor a CIDR prefix", s)
		}
	}
	if l7.Via != "" && strings.ContainsAny(l7.Via, " \t\r\n,()") {
		v.errorf("l7.via", "via %q: a pseudonym is one token (no spaces, commas or parentheses)", l7.Via)
	}
	h := l7.RequestIDHeader
	if h != "" && (strings.ContainsAny(h, " \t\r\n:") || http.CanonicalHeaderKey(h) == "") {
		v.errorf("l7.request_id_header", "%q is not a header name", h)
	}
	if l7.AccessLog.Buffer < 0 {
		v.errorf("l7.access_log.buffer", "buffer %d must be positive", l7.AccessLog.Buffer)
	}
}

// ParseTrustedProxy reads one l7.trusted_proxies entry: an address is a
// prefix of its full length.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
