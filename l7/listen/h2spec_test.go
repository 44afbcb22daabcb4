package listen

import (
	"net/netip"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// TestH2Spec runs the HTTP/2 conformance suite against a Set, over TLS and
// over h2c, allowing only what Go's own server fails (e2etest.H2Spec).
func TestH2Spec(t *testing.T) {
	e2etest.H2SpecBin(t)
	f := newTLSFixture(t)
	tl := listener("tls", "127.0.0.1:0")
	tl.TLS = f.tls
	cl := listener("h2c", freePort(t))
	cl.H2C = true
	s := newTestSet(t, Options{}, tl, cl)
	for _, tt := range []struct {
		name, addr string
		tls        bool
	}{
		{"over TLS", s.Addrs()["tls"], true},
		{"over h2c", s.Addrs()["h2c"], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tt.addr)
			e2etest.H2Spec(t, ap.Addr().String(), int(ap.Port()), tt.tls)
		})
	}
}
