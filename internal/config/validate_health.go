package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// ParseStatusRanges parses expect_status ("200-299,302"). The health check
// package compiles checks with it, so the validator and the checker cannot
// disagree on what a list means.
func ParseStatusRanges(s string) ([]StatusRange, error) {
	var out []StatusRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty item in %q", s)
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not a status code or a range like 200-299", part)
		}
		if a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("%q is outside 100-599 or reversed", part)
		}
		out = append(out, StatusRange{a, b})
	}
	return out, nil
}

func (v *validator) validateChecks(pools map[string]bool) {
	vips := map[string]*VIP{}
	for i := range v.c.VIPs {
		vips[v.c.VIPs[i].Name] = &v.c.VIPs[i]
	}
	names := map[string]bool{}
	checked := map[string]string{} // "pool/x" or "vip/y" → check name
	for i, h := range v.c.HealthChecks {
		p := fmt.Sprintf("healthchecks[%d]", i)
		v.name(p+".name", "health check", h.Name, names)
		switch {
		case (h.Pool == "") == (h.VIP == ""):
			v.errorf(p, "set exactly one of pool or vip")
		case h.Pool != "" && !pools[h.Pool]:
			v.errorf(p+".pool", "no pool named %q", h.Pool)
		case h.VIP != "" && vips[h.VIP] == nil:
			v.errorf(p+".vip", "no VIP named %q", h.VIP)
		default:
			// One health state per target: two checks of one pool would
			// fight over it (one says up, the other down).
			key, path := "pool/"+h.Pool, p+".pool"
			if h.VIP != "" {
				key, path = "vip/"+h.VIP, p+".vip"
			}
			if other, dup := checked[key]; dup {
				v.errorf(path, "%s is already checked by health check %q: combine them", key, other)
			}
			checked[key] = h.Name
		}
		if !oneOf(h.Type, "http", "https", "tcp", "grpc") {
			v.errorf(p+".type", "type %q: use http, https, tcp or grpc", h.Type)
		}
		if h.Port < 0 || h.Port > 65535 {
			v.errorf(p+".port", "port %d is out of range (1-65535)", h.Port)
		}
		if h.Timeout >= h.Interval {
			v.errorf(p+".timeout", "timeout %s must be shorter than interval %s", h.Timeout.D(), h.Interval.D())
		}
		if h.Interval.D() < 10*time.Millisecond {
			v.errorf(p+".interval", "interval %s is too short (at least 10ms)", h.Interval.D())
		}
		if h.Rise < 1 || h.Fall < 1 {
			v.errorf(p, "rise and fall must be at least 1")
		}
		if *h.Jitter < 0 || *h.Jitter > 50 {
			v.errorf(p+".jitter", "jitter %d%% is out of range (0-50)", *h.Jitter)
		}
		if !strings.HasPrefix(h.Path, "/") {
			v.errorf(p+".path", "path %q must start with /", h.Path)
		}
		if !regexp.MustCompile(`^[A-Z]+$`).MatchString(h.Method) {
			v.errorf(p+".method", "method %q: use an upper-case HTTP method such as GET or HEAD", h.Method)
		}
		if strings.ContainsAny(h.Host, " \t\r\n/") {
			v.errorf(p+".host", "host %q is not a host name", h.Host)
		}
		if _, err := ParseStatusRanges(h.ExpectStatus); err != nil {
			v.errorf(p+".expect_status", "expect_status: %v", err)
		}
		if h.ExpectBodyRegex != "" {
			if _, err := regexp.Compile(h.ExpectBodyRegex); err != nil {
				v.errorf(p+".expect_body_regex", "expect_body_regex: %v", err)
			}
		}
		isHTTP := h.Type == "http" || h.Type == "https"
		if !isHTTP && (h.ExpectBody != "" || h.ExpectBodyRegex != "" || h.Host != "" || h.Method != DefaultCheckMethod ||
			h.Path != DefaultCheckPath || h.ExpectStatus != DefaultCheckExpectStatus) {
			v.errorf(p+".type", "path, method, host, expect_status and expect_body(_regex) apply to http and https checks only")
		}
		if h.TLS != nil {
			tp := p + ".tls"
			if h.Type != "https" {
				v.errorf(tp, "tls applies to https checks only")
			}
			if h.TLS.InsecureSkipVerify && h.TLS.CAFile != "" {
				v.errorf(tp+".insecure_skip_verify", "insecure_skip_verify ignores ca_file: set one of them")
			}
			if f := h.TLS.CAFile; f != "" {
				if b, err := os.ReadFile(f); err != nil {
					v.errorf(tp+".ca_file", "cannot read %s: %v", f, err)
				} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
					v.errorf(tp+".ca_file", "%s holds no PEM certificate", f)
				}
			}
		}
		if h.GRPCService != "" && h.Type != "grpc" {
			v.errorf(p+".grpc_service", "grpc_service applies to grpc checks only")
		}
		if *h.DSRPath && h.Pool != "" {
			v.errorf(p+".dsr_path", "dsr_path applies to vip checks only (pool endpoints are reached directly)")
		}
		if vip := vips[h.VIP]; vip != nil && *h.DSRPath && vip.Protocol != "tcp" {
			// The probe is a TCP handshake; a UDP service has none to test.
			v.errorf(p+".dsr_path", "dsr_path needs a tcp VIP; set dsr_path: false for VIP %q", vip.Name)
		}
		if vip := vips[h.VIP]; vip != nil && vip.Protocol == "udp" && h.Type == "tcp" && h.Port == 0 {
			v.errorf(p+".port", "VIP %q is udp: a tcp check needs the backends' tcp health port", vip.Name)
		}
		if ps := h.Passive; ps != nil {
			pp := p + ".passive"
			if h.Pool == "" {
				v.errorf(pp, "passive signals come from the L7 proxy: they apply to pool checks only")
			}
			if ps.Consecutive5xx < 0 || ps.ConsecutiveConnectErrors < 0 || ps.ConsecutiveTimeouts < 0 {
				v.errorf(pp, "passive counts cannot be negative")
			}
		}
	}
}

func (v *validator) validateDiscovery(pools map[string]bool) {
	names := map[string]bool{}
	byPool := map[string]string{}
	for i, d := range v.c.Discovery {
		p := fmt.Sprintf("discovery[%d]", i)
		v.name(p+".name", "discovery source", d.Name, names)
		if !pools[d.Pool] {
			v.errorf(p+".pool", "no pool named %q", d.Pool)
		} else if other, dup := byPool[d.Pool]; dup {
			// Two sources for one pool would overwrite each other's sets.
			v.errorf(p+".pool", "pool %q is already filled by discovery source %q", d.Pool, other)
		} else {
			byPool[d.Pool] = d.Name
		}
		switch d.Provider {
		case "dns":
			if d.DNS == "" {
				v.errorf(p+".dns", "the dns provider needs a record name")
			}
			switch d.RecordType {
			case "srv":
				if d.Port != 0 {
					v.errorf(p+".port", "SRV records carry their own ports: remove port")
				}
			case "a", "aaaa", "a+aaaa":
				if d.Port < 1 || d.Port > 65535 {
					v.errorf(p+".port", "A/AAAA records carry no port: set port (1-65535)")
				}
			default:
				v.errorf(p+".record_type", "record_type %q: use srv, a, aaaa or a+aaaa", d.RecordType)
			}
			for j, r := range d.Resolvers {
				v.hostPort(fmt.Sprintf("%s.resolvers[%d]", p, j), r)
			}
			if d.MinRefresh > d.MaxRefresh {
				v.errorf(p+".min_refresh", "min_refresh %s is longer than max_refresh %s", d.MinRefresh.D(), d.MaxRefresh.D())
			}
		case "etcd", "consul":
			if len(d.Endpoints) == 0 {
				v.errorf(p+".endpoints", "the %s provider needs endpoints", d.Provider)
			}
			if d.Key == "" {
				v.errorf(p+".key", "the %s provider needs a key", d.Provider)
			}
			for j, e := range d.Endpoints {
				if err := checkRegistryURL(e); err != nil {
					v.errorf(fmt.Sprintf("%s.endpoints[%d]", p, j), "%v", err)
				}
			}
		default:
			v.errorf(p+".provider", "provider %q: use dns, etcd or consul", d.Provider)
		}
		if d.Provider != "dns" && (d.RecordType != "" || d.Port != 0 || len(d.Resolvers) > 0 || d.DNS != "") {
			v.errorf(p+".provider", "dns, record_type, port and resolvers apply to the dns provider only")
		}
		if d.Provider != "consul" && (d.Tag != "" || d.Datacenter != "" || d.TokenFile != "") {
			v.errorf(p+".provider", "tag, datacenter and token_file apply to the consul provider only")
		}
		if d.Provider == "consul" && (d.Wait.D() < time.Second || d.Wait.D() > 10*time.Minute) {
			v.errorf(p+".wait", "wait %s is out of range (1s-10m)", d.Wait.D())
		}
		v.readable(p+".token_file", d.TokenFile)
		if d.Weight < 1 || d.Weight > 65535 {
			v.errorf(p+".weight", "weight %d is out of range (1-65535)", d.Weight)
		}
	}
}

// checkRegistryURL accepts host:port or an http(s) URL with a host.
func checkRegistryURL(s string) error {
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("%q is neither host:port nor http(s)://host:port", s)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is neither host:port nor http(s)://host:port", s)
	}
	return nil
}
