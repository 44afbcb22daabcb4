package l4

import (
	"bytes"
	"testing"
)

// FuzzXDP feeds arbitrary frames (seeded with every fixture) to the
// program. Whatever the bytes, the verdict is PASS, TX or DROP, and the
// frame comes back unchanged except for the two MACs on TX.
//
//	go test ./l4/ -run '^$' -fuzz FuzzXDP -fuzztime 60s
func FuzzXDP(f *testing.F) {
	for _, fx := range fixtures() {
		in := fx.raw
		if in == nil {
			in = fx.pkt.build()
		}
		f.Add(in)
	}
	requireBPF(f)
	e := newEnv(f, fixtureConfig(), fixtureServices())
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 {
			return // the kernel refuses these; see TestFramesShorterThanEthernet...
		}
		e.t = t
		act, out := e.run(in)
		switch act {
		case xdpPass, xdpDrop:
			if !bytes.Equal(out, in) {
				t.Fatalf("%s changed the frame", actionNames[act])
			}
		case xdpTX:
			if len(out) != len(in) || !bytes.Equal(out[12:], in[12:]) || !bytes.Equal(out[6:12], lbMAC) {
				t.Fatalf("TX changed more than the MACs")
			}
		default:
			t.Fatalf("verdict %d", act)
		}
	})
}
