package listen

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func TestSNIPicksTheCertificate(t *testing.T) {
	f := newTLSFixture(t)
	l := listener("web", "127.0.0.1:0")
	l.TLS = f.tls
	s := newTestSet(t, Options{}, l)
	addr := s.Addrs()["web"]
	tests := []struct {
		name, sni string
		want      int64
	}{
		{"an exact SAN wins over a wildcard listed before it", "a.example.com", f.exactSN},
		{"names are matched without regard to case", "A.Example.COM", f.exactSN},
		{"a wildcard SAN covers one label", "b.example.com", f.wSN},
		{"a wildcard does not cover two labels", "x.b.example.com", f.defSN},
		{"an unknown name gets the default", "other.test", f.defSN},
		{"no SNI gets the default", "", f.defSN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := servedSerial(t, addr, tt.sni); got != tt.want {
				t.Errorf("served serial %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCertificatesReloadWithoutRestart(t *testing.T) {
	t.Run("a replaced file is picked up by the watcher", func(t *testing.T) {
		f := newTLSFixture(t)
		l := listener("web", "127.0.0.1:0")
		l.TLS = f.tls
		s := newTestSet(t, Options{CertCheckInterval: 20 * time.Millisecond}, l)
		addr := s.Addrs()["web"]
		c, k, sn := f.ca.issue(t, "a.example.com")
		writeCert(t, f.dir, "exact", c, k)
		deadline := time.Now().Add(3 * time.Second)
		for servedSerial(t, addr, "a.example.com") != sn {
			if time.Now().After(deadline) {
				t.Fatal("the new certificate was never served")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("every apply re-reads the files", func(t *testing.T) {
		f := newTLSFixture(t)
		l := listener("web", "127.0.0.1:0")
		l.TLS = f.tls
		s := newTestSet(t, Options{CertCheckInterval: time.Hour}, l)
		addr := s.Addrs()["web"]
		c, k, sn := f.ca.issue(t, "default.test")
		writeCert(t, f.dir, "default", c, k)
		if err := s.Apply([]config.Listener{l}, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := servedSerial(t, addr, ""); got != sn {
			t.Fatalf("served %d, want the new %d", got, sn)
		}
		if s.Addrs()["web"] != addr {
			t.Fatal("the listener was rebound")
		}
	})
}

func TestOldTLSVersionsAndWeakSuitesAreRefused(t *testing.T) {
	f := newTLSFixture(t)
	l := listener("web", "127.0.0.1:0")
	l.TLS = f.tls
	s := newTestSet(t, Options{}, l)
	addr := s.Addrs()["web"]
	tests := []struct {
		name string
		conf *tls.Config
		ok   bool
	}{
		{"TLS 1.1 is refused", &tls.Config{MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 with a CBC suite only is refused", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 with ECDHE AES-GCM is accepted", &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.3 is preferred", &tls.Config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.conf.InsecureSkipVerify = true
			c, err := tls.Dial("tcp", addr, tt.conf)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				defer c.Close()
				if tt.conf.MaxVersion == 0 && c.ConnectionState().Version != tls.VersionTLS13 {
					t.Errorf("negotiated %x, want TLS 1.3", c.ConnectionState().Version)
				}
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	f := newTLSFixture(t)
	clientCA := newCA(t)
	other := newCA(t)
	caFile := writeCert(t, t.TempDir(), "clientca", clientCA.pem, nil).CertFile
	good, bad := clientCA.clientCert(t), other.clientCert(t)

	mk := func(mode string) string {
		l := listener("mtls-"+mode, "127.0.0.1:0")
		tl := *f.tls
		tl.ClientCAFile, tl.ClientAuth = caFile, mode
		l.TLS = &tl
		return newTestSet(t, Options{}, l).Addrs()[l.Name]
	}
	requireAddr, optionalAddr := mk("require"), mk("verify-if-given")
	tests := []struct {
		name, addr string
		cert       *tls.Certificate
		ok         bool
	}{
		{"require: no client certificate fails", requireAddr, nil, false},
		{"require: a certificate from the configured CA gets 200", requireAddr, &good, true},
		{"require: a certificate from another CA fails", requireAddr, &bad, false},
		{"verify-if-given: no certificate gets 200", optionalAddr, nil, true},
		{"verify-if-given: a certificate from another CA fails", optionalAddr, &bad, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := &tls.Config{RootCAs: f.ca.pool, ServerName: "default.test"}
			if tt.cert != nil {
				conf.Certificates = []tls.Certificate{*tt.cert}
			}
			// With TLS 1.3 the client finishes its handshake before the
			// server has checked its certificate: the refusal shows on
			// the first request.
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 5 * time.Second}
			resp, err := c.Get("https://" + tt.addr + "/")
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil && resp.StatusCode == 200) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
				t.Logf("refused with: %v", err)
			}
		})
	}
}
