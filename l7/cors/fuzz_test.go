package cors

import (
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// FuzzOrigin: a wildcard pattern only ever allows origins of its scheme
// whose host ends in its domain, with no port, path or user smuggled in.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.com", "https://evil.com?.example.com", "https://a.example.com:443", "https://@.example.com"} {
		f.Add(s)
	}
	p := policy(config.CORS{AllowedOrigins: []string{"https://*.example.com", "https://exact.test"}})
	f.Fuzz(func(t *testing.T, origin string) {
		if !p.Allowed(origin) || origin == "https://exact.test" {
			return
		}
		host, ok := strings.CutPrefix(origin, "https://")
		if !ok || !strings.HasSuffix(host, ".example.com") || strings.ContainsAny(host, ":/?#@ \\") || strings.Contains(host, "..") {
			t.Fatalf("%q allowed", origin)
		}
	})
}
