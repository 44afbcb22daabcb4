package l7

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestClusterLimitersAreTheClusterScopedRoutesLimiters(t *testing.T) {
	kf := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(kf, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `node: {name: n}
l7:
  listeners: [{name: web, address: 127.0.0.1:8080}]
  pools: [{name: p, endpoints: [{address: 127.0.0.1:9}]}]
  routes:
    - {name: shared, pool: p, match: {path_prefix: /s}, rate_limit: {requests: 1, per: 1h, scope: cluster}}
    - {name: own, pool: p, match: {path_prefix: /o}, rate_limit: {requests: 1}}
    - {name: open, pool: p}
cluster: {bind: "127.0.0.1:7946", key_file: "` + kf + `"}
`
	g := compileYAML(t, src)
	m := g.ClusterLimiters()
	if len(m) != 1 || m["shared"] == nil {
		t.Fatalf("%v", m)
	}
	// The map holds the limiters requests use: what they take is drained.
	m["shared"].Allow("10.0.0.1", time.Now())
	if us := g.secByName["shared"].limit.Drain(10); len(us) != 1 {
		t.Fatalf("drained %v", us)
	}
	// A reload with the same limit keeps the buckets and the counts.
	g.secByName["shared"].limit.Allow("10.0.0.2", time.Now())
	g2 := compileYAML(t, src)
	g2.adoptSecurity(g)
	if us := g2.ClusterLimiters()["shared"].Drain(10); len(us) != 1 || us[0].Key != "10.0.0.2" {
		t.Fatalf("after a reload: drained %v", us)
	}
}
