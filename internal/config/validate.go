package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/portcullis-lb/portcullis/l4/maglev"
)

// validator checks the whole document and keeps going after an error, so an
// operator fixes a file in one round instead of one error per reload.
type validator struct {
	c    *Config
	file string
	pos  map[string]Pos
	bad  map[string]bool
	errs Errors
}

func (v *validator) errorf(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if v.bad[p] {
			return
		}
	}
	p := v.lookup(path)
	v.errs = append(v.errs, Error{File: v.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// lookup finds the position of a key path, or of its nearest parent when the
// key itself is absent from the file (a missing required key, a default).
func (v *validator) lookup(path string) Pos {
	for ; path != ""; path = parentPath(path) {
		if p, ok := v.pos[path]; ok && p.Line > 0 {
			return p
		}
	}
	return Pos{Line: 1, Col: 1}
}

func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// name checks a name's syntax and uniqueness among its siblings.
func (v *validator) name(path, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		v.errorf(path, "%s needs a name", kind)
	case !nameRE.MatchString(name):
		v.errorf(path, "%s name %q: use letters, digits, '.', '_' and '-' (at most 63)", kind, name)
	case seen[name]:
		v.errorf(path, "duplicate %s name %q", kind, name)
	}
	seen[name] = true
}

// hostPort checks host:port with a numeric port in 1-65535.
func (v *validator) hostPort(path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "%q is not host:port", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf(path, "port %q is out of range (1-65535)", port)
	}
	if host == "" {
		v.errorf(path, "%q has no host; write 0.0.0.0:%s or [::]:%s to listen on every address", s, port, port)
	}
}

func (v *validator) readable(path, f string) {
	if f == "" {
		return
	}
	if _, err := os.Stat(f); err != nil {
		v.errorf(path, "cannot read %s: %v", f, err)
	}
}

func (v *validator) validate() {
	c := v.c
	if !nameRE.MatchString(c.Node.Name) {
		v.errorf("node.name", "node name %q: use letters, digits, '.', '_' and '-'", c.Node.Name)
	}
	if c.Node.Priority < 0 || c.Node.Priority > 255 {
		v.errorf("node.priority", "priority %d is out of range (0-255)", c.Node.Priority)
	}
	if c.Node.ID < 0 || c.Node.ID > 255 {
		v.errorf("node.id", "node id %d is out of range (0-255)", c.Node.ID)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		v.errorf("log.level", "level %q: use debug, info, warn or error", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		v.errorf("log.format", "format %q: use text or json", c.Log.Format)
	}
	v.hostPort("admin.listen", c.Admin.Listen)
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		v.errorf("admin.token", "set token or token_file, not both")
	}
	v.readable("admin.token_file", c.Admin.TokenFile)
	v.validateL4()
	listeners := v.validateListeners()
	pools := v.validatePools()
	params := v.validateRoutes(listeners, pools)
	v.validateSecurity()
	v.validateTransforms(params)
	v.validateCaches()
	v.validateAggregates(pools, params)
	v.validateProxy()
	if len(c.L7.Routes) > 0 && len(c.L7.Listeners) == 0 {
		v.errorf("l7.listeners", "routes are configured but no listener would serve them")
	}
	v.validateCluster()
	v.validateBGP()
	v.validateChecks(pools)
	v.validateDiscovery(pools)
	if c.Demo != nil {
		seen := map[string]bool{}
		for i, a := range c.Demo.Backends {
			p := fmt.Sprintf("demo.backends[%d]", i)
			v.hostPort(p, a)
			if seen[a] {
				v.errorf(p, "duplicate demo backend %s", a)
			}
			seen[a] = true
		}
	}
}

func (v *validator) validateL4() {
	c := v.c
	if !oneOf(c.L4.XDPMode, "auto", "native", "generic") {
		v.errorf("l4.xdp_mode", "xdp_mode %q: use auto, native or generic", c.L4.XDPMode)
	}
	if !maglev.IsPrime(uint64(c.L4.MaglevSize)) || c.L4.MaglevSize > 1<<20 {
		v.errorf("l4.maglev_size", "maglev_size %d must be a prime no larger than 1048576 (e.g. 65537, 131071)", c.L4.MaglevSize)
	}
	if c.L4.ConntrackSize < 1024 {
		v.errorf("l4.conntrack_size", "conntrack_size %d is too small (at least 1024)", c.L4.ConntrackSize)
	}
	for _, e := range []struct {
		key, val string
		v4       bool
	}{{"l4.encap_source_v4", c.L4.EncapSourceV4, true}, {"l4.encap_source_v6", c.L4.EncapSourceV6, false}} {
		if e.val == "" {
			continue
		}
		p, err := ParseEncapSource(e.val)
		if err != nil || p.Addr().Is4() != e.v4 {
			v.errorf(e.key, "%q is not an IPv%s prefix or address", e.val, map[bool]string{true: "4", false: "6"}[e.v4])
		}
	}
	if c.L4.EncapMTU < 1280 || c.L4.EncapMTU > 65535 {
		v.errorf("l4.encap_mtu", "encap_mtu %d is out of range (1280-65535)", c.L4.EncapMTU)
	}
	if c.L4.GUEPort < 1 || c.L4.GUEPort > 65535 {
		v.errorf("l4.gue_port", "gue_port %d is out of range (1-65535)", c.L4.GUEPort)
	}
	if len(c.VIPs) > 0 && c.Node.Interface == "" {
		v.errorf("node.interface", "VIPs are configured, so node.interface must name the NIC to attach XDP to")
	}
	names := map[string]bool{}
	services := map[string]string{}
	for i, vip := range c.VIPs {
		p := fmt.Sprintf("vips[%d]", i)
		v.name(p+".name", "VIP", vip.Name, names)
		addr, err := netip.ParseAddr(vip.Address)
		if err != nil || addr.Zone() != "" {
			v.errorf(p+".address", "%q is not an IP address", vip.Address)
		}
		if vip.Port < 1 || vip.Port > 65535 {
			v.errorf(p+".port", "port %d is out of range (1-65535)", vip.Port)
		}
		if !oneOf(vip.Protocol, "tcp", "udp") {
			v.errorf(p+".protocol", "protocol %q: use tcp or udp", vip.Protocol)
		}
		if vip.QUIC && vip.Protocol != "udp" {
			v.errorf(p+".quic", "quic needs protocol: udp")
		}
		key := fmt.Sprintf("%s/%d/%s", addr.Unmap(), vip.Port, vip.Protocol)
		if other, dup := services[key]; dup && err == nil {
			v.errorf(p, "VIP %q has the same address, port and protocol as %q", vip.Name, other)
		}
		services[key] = vip.Name
		if len(vip.Backends) == 0 {
			v.errorf(p+".backends", "VIP %q has no backends", vip.Name)
		}
		bnames := map[string]bool{}
		nodeIDs := map[int]string{}
		for j, b := range vip.Backends {
			bp := fmt.Sprintf("%s.backends[%d]", p, j)
			v.name(bp+".name", "backend", b.Name, bnames)
			if _, err := netip.ParseAddr(b.Address); err != nil {
				v.errorf(bp+".address", "%q is not an IP address", b.Address)
			}
			switch b.Forwarding {
			case "dsr-l2":
				if hw, err := net.ParseMAC(b.MAC); err != nil || len(hw) != 6 {
					v.errorf(bp+".mac", "dsr-l2 needs the backend's Ethernet address (mac: 02:00:00:00:00:01), got %q", b.MAC)
				}
			case "local":
				if b.MAC != "" {
					v.errorf(bp+".mac", "a local backend is this node: it takes no mac")
				}
			case "ipip", "gue":
				if hw, err := net.ParseMAC(b.MAC); b.MAC != "" && (err != nil || len(hw) != 6) {
					v.errorf(bp+".mac", b.Forwarding+" takes the next hop's Ethernet address (mac: 02:00:00:00:00:01) or none (resolved by the daemon), got %q", b.MAC)
				}
				if ba, err := netip.ParseAddr(b.Address); err == nil && ba.Unmap().Is4() != addr.Unmap().Is4() {
					v.errorf(bp+".address", b.Forwarding+" backend %s and VIP %s are of different families: the outer and inner headers must both be IPv4 or both IPv6", b.Address, vip.Address)
				}
			default:
				v.errorf(bp+".forwarding", "forwarding %q: use local, dsr-l2, ipip or gue", b.Forwarding)
			}
			if *b.Weight < 0 || *b.Weight > 65535 {
				v.errorf(bp+".weight", "weight %d is out of range (0-65535)", *b.Weight)
			}
			if b.NodeID < 0 || b.NodeID > 255 {
				v.errorf(bp+".node_id", "node_id %d is out of range (0-255)", b.NodeID)
			} else if b.NodeID != 0 {
				if other, dup := nodeIDs[b.NodeID]; dup {
					v.errorf(bp+".node_id", "node_id %d is already backend %q's", b.NodeID, other)
				}
				nodeIDs[b.NodeID] = b.Name
			}
		}
	}
}

// resolvePaths makes file references relative to the config file's folder,
// so a config means the same thing whatever the daemon's working directory.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.Path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Admin.TokenFile)
	if c.Cluster != nil {
		abs(&c.Cluster.KeyFile)
	}
	if c.BGP != nil {
		for i := range c.BGP.Peers {
			abs(&c.BGP.Peers[i].PasswordFile)
		}
	}
	for i := range c.L7.Listeners {
		if t := c.L7.Listeners[i].TLS; t != nil {
			for j := range t.Certificates {
				abs(&t.Certificates[j].CertFile)
				abs(&t.Certificates[j].KeyFile)
			}
			abs(&t.ClientCAFile)
		}
	}
	c.resolveSecurityPaths(abs)
}
