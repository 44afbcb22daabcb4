package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withPool replaces the minimal config's pool by the given YAML lines.
func withPool(pool string) string {
	return strings.Replace(minimal, "    - name: p\n      endpoints:\n        - address: 127.0.0.1:9001\n", pool, 1)
}

func TestAMinimalPoolGetsEveryDefault(t *testing.T) {
	c, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	p := c.L7.Pools[0]
	if p.Protocol != "http1" || p.TLS != nil || p.Timeouts.Connect.D() != 5*time.Second || p.Timeouts.ResponseHeader.D() != time.Minute ||
		p.Timeouts.Idle.D() != 90*time.Second || p.Timeouts.Total != 0 || p.MaxIdlePerEndpoint != 128 || p.MaxConcurrent != 0 {
		t.Errorf("transport defaults: %+v", p)
	}
	r := p.Retries
	if *r.Attempts != 2 || strings.Join(r.On, ",") != "connect-failure,refused-stream" || *r.BudgetPercent != 20 || *r.MinRetries != 3 {
		t.Errorf("retry defaults: %+v", r)
	}
	o := p.Outlier
	if *o.Consecutive5xx != 5 || *o.ConsecutiveGatewayErrors != 5 || *o.ConsecutiveConnectErrors != 3 || o.BaseEjectionTime.D() != 30*time.Second ||
		o.MaxEjectionTime.D() != 5*time.Minute || *o.MaxEjectionPercent != 50 {
		t.Errorf("outlier defaults: %+v", o)
	}
}

func TestAnExplicitZeroTurnsACheckOff(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withPool("    - name: p\n      endpoints: [{address: 127.0.0.1:9001}]\n      retries: {attempts: 0}\n      outlier: {consecutive_5xx: 0}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.L7.Pools[0]; *p.Retries.Attempts != 0 || *p.Outlier.Consecutive5xx != 0 || *p.Outlier.ConsecutiveGatewayErrors != 5 {
		t.Errorf("%+v %+v", p.Retries, p.Outlier)
	}
}

func TestAffinityDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withPool("    - name: p\n      algorithm: sticky\n      endpoints: [{address: 127.0.0.1:9001}]\n    - name: h\n      algorithm: consistent_hash\n      endpoints: [{address: 127.0.0.1:9002}]\n")))
	if err != nil {
		t.Fatal(err)
	}
	s, h := c.L7.Pools[0].Sticky, c.L7.Pools[1].Hash
	if s.Cookie != "portcullis_p" || !*s.HTTPOnly || s.Secure || s.Fallback != "round_robin" || s.TTL != 0 || h.Key != "client_ip" {
		t.Errorf("sticky %+v, hash %+v", s, h)
	}
}

func TestPoolErrorsNameTheirKeyPath(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	const head = "    - name: p\n      endpoints: [{address: 127.0.0.1:9001}]\n"
	tests := []struct {
		name, pool, wantPath, wantMsg string
	}{
		{"an unknown algorithm is refused", head + "      algorithm: fastest\n", "l7.pools[0].algorithm", "least_request"},
		{"h2 needs tls", head + "      protocol: h2\n", "l7.pools[0].protocol", "enable tls"},
		{"h2c cannot have tls", head + "      protocol: h2c\n      tls: {enabled: true}\n", "l7.pools[0].protocol", "cleartext"},
		{"an unknown protocol is refused", head + "      protocol: http3\n", "l7.pools[0].protocol", "http1, h2 or h2c"},
		{"tls settings need enabled", head + "      tls: {server_name: api.internal}\n", "l7.pools[0].tls.enabled", "enabled is false"},
		{"insecure_skip_verify excludes ca_file", head + "      tls: {enabled: true, insecure_skip_verify: true, ca_file: " + notPEM + "}\n", "l7.pools[0].tls.insecure_skip_verify", "set one of them"},
		{"a ca_file must hold PEM", head + "      tls: {enabled: true, ca_file: ca.pem}\n", "l7.pools[0].tls.ca_file", "no PEM certificate"},
		{"a missing ca_file is refused", head + "      tls: {enabled: true, ca_file: missing.pem}\n", "l7.pools[0].tls.ca_file", "cannot read"},
		{"insecure_skip_verify must be a boolean", head + "      tls: {enabled: true, insecure_skip_verify: yes please}\n", "l7.pools[0].tls.insecure_skip_verify", "true or false"},
		{"response_header cannot outlast total", head + "      timeouts: {response_header: 2m, total: 1m}\n", "l7.pools[0].timeouts.response_header", "longer than total"},
		{"a negative max_concurrent is refused", head + "      max_concurrent: -1\n", "l7.pools[0].max_concurrent", "negative"},
		{"too many retry attempts are refused", head + "      retries: {attempts: 11}\n", "l7.pools[0].retries.attempts", "out of range"},
		{"an unknown retry condition is refused", head + "      retries: {on: [timeout]}\n", "l7.pools[0].retries.on[0]", "connect-failure"},
		{"a budget over 100% is refused", head + "      retries: {budget_percent: 150}\n", "l7.pools[0].retries.budget_percent", "out of range"},
		{"max_ejection_time below the base is refused", head + "      outlier: {base_ejection_time: 1m, max_ejection_time: 10s}\n", "l7.pools[0].outlier.max_ejection_time", "shorter than"},
		{"a max_ejection_percent over 100 is refused", head + "      outlier: {max_ejection_percent: 101}\n", "l7.pools[0].outlier.max_ejection_percent", "out of range"},
		{"hash belongs to consistent_hash", head + "      hash: {key: client_ip}\n", "l7.pools[0].hash", "consistent_hash"},
		{"a bad hash key is refused", head + "      algorithm: consistent_hash\n      hash: {key: 'header:'}\n", "l7.pools[0].hash.key", "cookie:NAME"},
		{"sticky belongs to algorithm sticky", head + "      sticky: {cookie: s}\n", "l7.pools[0].sticky", "algorithm sticky"},
		{"a sticky fallback cannot be consistent_hash", head + "      algorithm: sticky\n      sticky: {fallback: consistent_hash}\n", "l7.pools[0].sticky.fallback", "least_request"},
		{"a cookie name must be a token", head + "      algorithm: sticky\n      sticky: {cookie: 'a;b'}\n", "l7.pools[0].sticky.cookie", "not a cookie name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedAt(t, filepath.Join(dir, "c.yaml"), withPool(tt.pool), tt.wantPath, tt.wantMsg, true)
		})
	}
}

func TestARelativeCAFileIsTakenFromTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	// The file does not exist: the error must name the resolved path.
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(withPool("    - name: p\n      endpoints: [{address: 127.0.0.1:9001}]\n      tls: {enabled: true, ca_file: ca.pem}\n")))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "ca.pem")) {
		t.Fatalf("err = %v", err)
	}
}
