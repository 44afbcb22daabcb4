package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenerDefaultsFillEveryLimit(t *testing.T) {
	c, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	l := c.L7.Listeners[0]
	if l.ReadHeaderTimeout.D() != 10*time.Second || l.IdleTimeout.D() != 120*time.Second ||
		l.MaxHeaderBytes != 65536 || l.H2MaxConcurrentStreams != 250 || l.H3MaxStreams != 250 ||
		l.MaxURIBytes != 8192 || l.MaxBodyBytes != 0 || l.MaxConnsPerIP != 0 {
		t.Errorf("listener defaults: %+v", l)
	}
}

func TestListenerSettingsAreValidatedWithTheirKeyPaths(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsBlock := "      tls:\n        certificates: [{cert_file: " + pem + ", key_file: " + pem + "}]\n"
	tests := []struct {
		name, listener, wantPath, wantMsg string
	}{
		{"h2c with tls is refused", "      h2c: true\n" + tlsBlock, "l7.listeners[0].h2c", "cleartext"},
		{"http3 without tls is refused", "      http3: true\n", "l7.listeners[0].http3", "needs tls"},
		{"client_auth without a CA file is refused", tlsBlock + "        client_auth: require\n", "l7.listeners[0].tls.client_auth", "needs client_ca_file"},
		{"an unknown client_auth mode is refused", tlsBlock + "        client_ca_file: " + pem + "\n        client_auth: maybe\n", "l7.listeners[0].tls.client_auth", "verify-if-given"},
		{"a missing CA file is refused", tlsBlock + "        client_ca_file: /nonexistent/ca.pem\n", "l7.listeners[0].tls.client_ca_file", "cannot read"},
		{"a tiny header limit is refused", "      max_header_bytes: 100\n", "l7.listeners[0].max_header_bytes", "out of range"},
		{"zero h2 streams is refused", "      h2_max_concurrent_streams: -1\n", "l7.listeners[0].h2_max_concurrent_streams", "out of range"},
		{"too many h3 streams is refused", "      h3_max_streams: 20000\n", "l7.listeners[0].h3_max_streams", "out of range"},
		{"a tiny URI limit is refused", "      max_uri_bytes: 10\n", "l7.listeners[0].max_uri_bytes", "out of range"},
		{"a negative body limit is refused", "      max_body_bytes: -1\n", "l7.listeners[0].max_body_bytes", "negative"},
		{"a negative per-address connection limit is refused", "      max_conns_per_ip: -5\n", "l7.listeners[0].max_conns_per_ip", "negative"},
		{"a 1ms header timeout is refused", "      read_header_timeout: 1ms\n", "l7.listeners[0].read_header_timeout", "too short"},
		{"a misspelt key is refused", "      freebnd: true\n", "l7.listeners[0].freebnd", "did you mean \"freebind\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(minimal, "      address: 127.0.0.1:8080\n", "      address: 127.0.0.1:8080\n"+tt.listener, 1)
			refusedAt(t, filepath.Join(dir, "c.yaml"), src, tt.wantPath, tt.wantMsg, false)
		})
	}
}

func TestAFullTLSListenerIsAccepted(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.pem", "a.key", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := strings.Replace(minimal, "      address: 127.0.0.1:8080\n", `      address: 127.0.0.1:8443
      http3: true
      freebind: true
      idle_timeout: 30s
      tls:
        certificates: [{cert_file: a.pem, key_file: a.key}]
        min_version: "1.3"
        client_ca_file: ca.pem
`, 1)
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tl := c.L7.Listeners[0].TLS
	if tl.ClientAuth != "require" || tl.ClientCAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("tls: %+v", tl)
	}
}
