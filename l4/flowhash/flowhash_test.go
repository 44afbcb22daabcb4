package flowhash

import (
	"net/netip"
	"testing"
)

// The BPF agreement test lives in package l4 (it needs the program and
// root); these pin the function so an accidental change is loud.

func TestKeyLayoutMatchesTheBPFFlowKey(t *testing.T) {
	k := MakeKey(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::2"), 0x1234, 443, 6)
	want := Key{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
		0x12, 0x34, 0x01, 0xbb, 6, 0, 0, 0,
	}
	if k != want {
		t.Fatalf("key layout:\n got %x\nwant %x", k, want)
	}
}

func TestHashIsPinned(t *testing.T) {
	// Golden values: changing them moves every flow on every node
	// during a rolling upgrade. Only change them on purpose.
	cases := []struct {
		seed       uint32
		src, dst   string
		sport, dpt uint16
		proto      uint8
		want       uint32
	}{
		{0, "10.0.0.1", "192.0.2.10", 40000, 80, 6, 0x987cac6d},
		{42, "10.0.0.1", "192.0.2.10", 40000, 80, 6, 0x5a8fdfc2},
		{42, "2001:db8::1", "2001:db8::10", 40000, 443, 17, 0x50354cad},
	}
	for _, c := range cases {
		got := Hash(c.seed, netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst), c.sport, c.dpt, c.proto)
		if got != c.want {
			t.Errorf("Hash(%d, %s, %s, %d, %d, %d) = %#x, want %#x", c.seed, c.src, c.dst, c.sport, c.dpt, c.proto, got, c.want)
		}
	}
}

func TestHashDependsOnEveryField(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	base := Hash(1, a, b, 1000, 80, 6)
	for name, h := range map[string]uint32{
		"seed":  Hash(2, a, b, 1000, 80, 6),
		"src":   Hash(1, b, b, 1000, 80, 6),
		"dst":   Hash(1, a, a, 1000, 80, 6),
		"sport": Hash(1, a, b, 1001, 80, 6),
		"dport": Hash(1, a, b, 1000, 81, 6),
		"proto": Hash(1, a, b, 1000, 80, 17),
	} {
		if h == base {
			t.Errorf("changing %s did not change the hash", name)
		}
	}
}

func TestIPv4AndItsMappedFormHashTheSame(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	mapped := netip.AddrFrom16(v4.As16())
	d := netip.MustParseAddr("192.0.2.1")
	if Hash(9, v4, d, 1, 2, 17) != Hash(9, mapped, d, 1, 2, 17) {
		t.Fatal("IPv4 and ::ffff:IPv4 must hash alike: the BPF side only sees the mapped form")
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	if n := testing.AllocsPerRun(100, func() { Hash(1, a, b, 1, 2, 6) }); n != 0 {
		t.Fatalf("Hash allocates %v times per call", n)
	}
}

func BenchmarkHash(b *testing.B) {
	a, d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for i := 0; b.Loop(); i++ {
		Hash(1, a, d, uint16(i), 80, 6)
	}
}
