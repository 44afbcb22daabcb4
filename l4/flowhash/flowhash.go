// Package flowhash is the flow hash of the L4 fast path, in Go. It is
// the exact mirror of flow_hash() in bpf/xdp_lb.c: for the same seed and
// 5-tuple both return the same 32-bit value, so Go code (the maglev
// explain CLI, the L7 consistent hash, tests) can tell which Maglev slot
// the XDP program picks for a flow: Slots[Hash(...) % M].
package flowhash

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Constants shared with bpf/lb_consts.h (FH_*).
const (
	c1    = 0x87C37B91114253D5
	c2    = 0x4CF5AD432745937F
	add   = 0x52DCE729
	fmix1 = 0xFF51AFD7ED558CCD
	fmix2 = 0xC4CEB9FE1A85EC53
)

// KeyLen is the size of the hashed flow key, which is also the key of the
// BPF conntrack table.
const KeyLen = 40

// Key is the flow key in its wire layout: source address (16 bytes, IPv4
// v4-mapped as ::ffff:a.b.c.d), destination address (16), source port and
// destination port (big-endian, 2 each), protocol (1), zero padding (3).
type Key [KeyLen]byte

// MakeKey lays out a 5-tuple as the BPF program does. Zones are ignored;
// an invalid address hashes as ::.
func MakeKey(src, dst netip.Addr, sport, dport uint16, proto uint8) Key {
	var k Key
	if src.IsValid() {
		s := src.As16()
		copy(k[0:16], s[:])
	}
	if dst.IsValid() {
		d := dst.As16()
		copy(k[16:32], d[:])
	}
	binary.BigEndian.PutUint16(k[32:34], sport)
	binary.BigEndian.PutUint16(k[34:36], dport)
	k[36] = proto
	return k
}

// Hash returns the seeded 32-bit flow hash of a 5-tuple.
func Hash(seed uint32, src, dst netip.Addr, sport, dport uint16, proto uint8) uint32 {
	k := MakeKey(src, dst, sport, dport, proto)
	return k.Hash(seed)
}

// Hash returns the seeded flow hash of the key: murmur3-x64 rounds over
// five little-endian u64 words, the murmur3 finaliser, folded to 32 bits.
// Little-endian because the BPF program reads the key's u32 halves with
// native loads on the only target we build (bpfel).
func (k *Key) Hash(seed uint32) uint32 {
	h := uint64(seed)
	for i := 0; i < KeyLen; i += 8 {
		w := binary.LittleEndian.Uint64(k[i : i+8])
		w *= c1
		w = bits.RotateLeft64(w, 31)
		w *= c2
		h ^= w
		h = bits.RotateLeft64(h, 27)
		h = h*5 + add
	}
	h ^= KeyLen
	h ^= h >> 33
	h *= fmix1
	h ^= h >> 33
	h *= fmix2
	h ^= h >> 33
	return uint32(h) ^ uint32(h>>32)
}
