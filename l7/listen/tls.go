package listen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// tlsMaterial is a listener's compiled TLS: certificates indexed by name,
// the client CAs, and the tls.Config handed to each handshake. Immutable;
// a reload builds a new one and swaps the pointer.
type tlsMaterial struct {
	cfg   config.ListenerTLS
	conf  *tls.Config
	exact map[string][]*tls.Certificate // lower-case DNS SAN → certificates
	wild  map[string][]*tls.Certificate // "example.com" for a SAN *.example.com
	def   *tls.Certificate
	files map[string]fileSig // every file read, as it was when read
}

// fileSig identifies a file's content cheaply. Inode matters: tools that
// replace certificates atomically (rename, Kubernetes' symlink swap) can
// keep the size and even the mtime.
type fileSig struct {
	mtime time.Time
	size  int64
	ino   uint64
}

func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}, err
	}
	sig := fileSig{mtime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.ino = st.Ino
	}
	return sig, nil
}

// ECDHE key exchange with AEAD ciphers only, for TLS 1.2 (TLS 1.3's suites
// are fixed and all good). Go's defaults for 1.2 still include CBC suites.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// loadTLS reads every file of c and compiles the material.
func loadTLS(c *config.ListenerTLS) (*tlsMaterial, error) {
	m := &tlsMaterial{
		cfg:   *c,
		exact: map[string][]*tls.Certificate{},
		wild:  map[string][]*tls.Certificate{},
		files: map[string]fileSig{},
	}
	// Signatures are taken before reading so that a change during the read
	// is seen by the next check instead of being lost.
	sig := func(path string) {
		if s, err := statSig(path); err == nil {
			m.files[path] = s
		}
	}
	if len(c.Certificates) == 0 {
		return nil, errors.New("tls: no certificate")
	}
	for _, cf := range c.Certificates {
		sig(cf.CertFile)
		sig(cf.KeyFile)
		cert, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", cf.CertFile, err)
		}
		if cert.Leaf == nil {
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", cf.CertFile, err)
			}
		}
		if m.def == nil {
			m.def = &cert
		}
		for _, n := range cert.Leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				m.wild[rest] = append(m.wild[rest], &cert)
			} else {
				m.exact[n] = append(m.exact[n], &cert)
			}
		}
	}
	m.conf = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   tls12Suites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.getCertificate,
	}
	if c.MinVersion == "1.3" {
		m.conf.MinVersion = tls.VersionTLS13
	}
	if c.ClientCAFile != "" {
		sig(c.ClientCAFile)
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s: no PEM certificate in it", c.ClientCAFile)
		}
		m.conf.ClientCAs = pool
		m.conf.ClientAuth = tls.RequireAndVerifyClientCert
		if c.ClientAuth == "verify-if-given" {
			m.conf.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return m, nil
}

// getCertificate picks by SNI: an exact SAN, else a wildcard SAN one label
// up (RFC 6125 §6.4.3: the wildcard covers exactly one label), else the
// first certificate. Among several for one name (say ECDSA and RSA) it
// takes the first the client supports.
func (m *tlsMaterial) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name == "" {
		return m.def, nil
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	cands := m.exact[name]
	if cands == nil {
		if i := strings.IndexByte(name, '.'); i > 0 {
			cands = m.wild[name[i+1:]]
		}
	}
	switch len(cands) {
	case 0:
		return m.def, nil
	case 1:
		return cands[0], nil
	}
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return cands[0], nil
}

// changed reports whether any file the material was built from differs on
// disk now.
func (m *tlsMaterial) changed() bool {
	for path, was := range m.files {
		if now, err := statSig(path); err != nil || now != was {
			return true
		}
	}
	return false
}

// watchCerts reloads certificates whose files changed. A reload that fails
// (a half-written file, a key that does not match) keeps the material in
// use and is retried at the next tick.
func (s *Set) watchCerts() {
	defer close(s.stopped)
	t := time.NewTicker(s.opts.CertCheckInterval)
	defer t.Stop()
	failed := map[string]time.Time{} // per listener: last logged failure, one line per minute
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for _, sk := range s.socks {
			m := sk.tls.Load()
			if m == nil || !m.changed() {
				continue
			}
			name := sk.name()
			nm, err := loadTLS(&m.cfg)
			if err != nil {
				if time.Since(failed[name]) > time.Minute {
					s.log.Warn("certificate reload failed; keeping the loaded one", "listener", name, "err", err)
					failed[name] = time.Now()
				}
				continue
			}
			delete(failed, name)
			sk.tls.Store(nm)
			s.log.Info("certificates reloaded", "listener", name)
		}
		s.mu.Unlock()
	}
}
