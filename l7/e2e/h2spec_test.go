package e2e

import (
	"strings"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// TestH2SpecThroughTheDaemon runs the HTTP/2 conformance suite against the
// daemon's TLS listener and its h2c listener; the requests h2spec sends
// are proxied (default route → the HTTP/1.1 upstream). Known failures of
// Go's own server are allowed; any other failure is run once more on its
// own with a longer timeout and fails the test if it fails again (except
// the known flake 6.9.1/3, logged).
func TestH2SpecThroughTheDaemon(t *testing.T) {
	f := newFixture(t)
	e2etest.H2SpecBin(t)
	t.Run("over TLS", func(t *testing.T) { e2etest.H2Spec(t, "127.0.0.1", f.tlsPort, true) })
	t.Run("over h2c", func(t *testing.T) { e2etest.H2Spec(t, "127.0.0.1", f.h2cPort, false) })
	t.Run("the daemon still serves", func(t *testing.T) {
		for _, c := range f.clients(t) {
			resp, err := c.c.Get(c.base + "/h2c/after-h2spec")
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: %s", c.name, resp.Status)
			}
		}
		if log := f.d.log(); strings.Contains(log, "panic") {
			t.Errorf("the daemon logged a panic:\n%s", tail(log, 4000))
		}
	})
}
