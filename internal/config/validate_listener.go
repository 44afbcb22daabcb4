package config

import (
	"fmt"
	"time"
)

// validateListeners checks l7.listeners and returns their names.
func (v *validator) validateListeners() map[string]bool {
	l7 := &v.c.L7
	listeners := map[string]bool{}
	addrs := map[string]string{}
	for i, l := range l7.Listeners {
		p := fmt.Sprintf("l7.listeners[%d]", i)
		v.name(p+".name", "listener", l.Name, listeners)
		v.hostPort(p+".address", l.Address)
		if other, dup := addrs[l.Address]; dup {
			v.errorf(p+".address", "address %s is already listener %q's", l.Address, other)
		}
		addrs[l.Address] = l.Name
		if l.TLS != nil {
			if len(l.TLS.Certificates) == 0 {
				v.errorf(p+".tls.certificates", "tls needs at least one certificate")
			}
			for j, c := range l.TLS.Certificates {
				cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
				if c.CertFile == "" || c.KeyFile == "" {
					v.errorf(cp, "a certificate needs cert_file and key_file")
				}
				v.readable(cp+".cert_file", c.CertFile)
				v.readable(cp+".key_file", c.KeyFile)
			}
			if !oneOf(l.TLS.MinVersion, "1.2", "1.3") {
				v.errorf(p+".tls.min_version", "min_version %q: use 1.2 or 1.3", l.TLS.MinVersion)
			}
			v.readable(p+".tls.client_ca_file", l.TLS.ClientCAFile)
			switch {
			case l.TLS.ClientCAFile == "" && l.TLS.ClientAuth != "":
				v.errorf(p+".tls.client_auth", "client_auth needs client_ca_file, the CAs that client certificates are verified against")
			case l.TLS.ClientCAFile != "" && !oneOf(l.TLS.ClientAuth, "require", "verify-if-given"):
				v.errorf(p+".tls.client_auth", "client_auth %q: use require or verify-if-given", l.TLS.ClientAuth)
			}
		}
		if l.H2C && l.TLS != nil {
			v.errorf(p+".h2c", "h2c is cleartext HTTP/2; with tls, HTTP/2 is negotiated by ALPN already")
		}
		if l.HTTP3 && l.TLS == nil {
			v.errorf(p+".http3", "http3 needs tls: QUIC always encrypts")
		}
		if l.ReadHeaderTimeout.D() < 100*time.Millisecond {
			v.errorf(p+".read_header_timeout", "read_header_timeout %s is too short (at least 100ms)", l.ReadHeaderTimeout.D())
		}
		if l.IdleTimeout.D() < time.Second {
			v.errorf(p+".idle_timeout", "idle_timeout %s is too short (at least 1s)", l.IdleTimeout.D())
		}
		if l.MaxHeaderBytes < 4096 || l.MaxHeaderBytes > 16<<20 {
			v.errorf(p+".max_header_bytes", "max_header_bytes %d is out of range (4096-16777216)", l.MaxHeaderBytes)
		}
		if l.MaxHeaderCount < 8 || l.MaxHeaderCount > 10000 {
			v.errorf(p+".max_header_count", "max_header_count %d is out of range (8-10000)", l.MaxHeaderCount)
		}
		if l.MaxURIBytes < 256 || l.MaxURIBytes > 16<<20 {
			v.errorf(p+".max_uri_bytes", "max_uri_bytes %d is out of range (256-16777216)", l.MaxURIBytes)
		}
		if l.MaxBodyBytes < 0 {
			v.errorf(p+".max_body_bytes", "max_body_bytes %d is negative (0 is no limit)", l.MaxBodyBytes)
		}
		if l.MaxConnsPerIP < 0 {
			v.errorf(p+".max_conns_per_ip", "max_conns_per_ip %d is negative (0 is no limit)", l.MaxConnsPerIP)
		}
		if l.H2MaxConcurrentStreams < 1 || l.H2MaxConcurrentStreams > 10000 {
			v.errorf(p+".h2_max_concurrent_streams", "h2_max_concurrent_streams %d is out of range (1-10000)", l.H2MaxConcurrentStreams)
		}
		if l.H3MaxStreams < 1 || l.H3MaxStreams > 10000 {
			v.errorf(p+".h3_max_streams", "h3_max_streams %d is out of range (1-10000)", l.H3MaxStreams)
		}
		if !oneOf(l.Server, "lean", "stdlib") {
			v.errorf(p+".server", "server %q: use lean or stdlib", l.Server)
		}
	}
	return listeners
}
