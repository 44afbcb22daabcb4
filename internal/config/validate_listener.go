package config

import (
	"fmt"
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
		}
	}
	return listeners
}
