package cluster

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"slices"
)

// meta is what a node gossips about itself (memberlist node metadata,
// which every member holds for every other member and which a push/pull
// at join delivers at once). It is what the election runs on.
//
// Wire form, version 1 (memberlist allows 512 bytes):
//
//	[0]     version (1)
//	[1]     priority
//	[2]     flags (flagXDP, flagL7, flagWitness, flagLeaving)
//	[3:11]  first 8 bytes of the config digest
//	uvarint n, then n × uint32: VIPs the node can serve (FNV-1a of the name)
//	uvarint n, then n × uint32: VIPs the node holds (address on its NIC)
//
// VIPs travel as 32-bit hashes of their names, not names, so that a node
// with many VIPs still fits in 512 bytes; Start refuses a config whose
// names collide.
type meta struct {
	Priority int
	XDP      bool
	L7       bool
	Witness  bool // witness reachable (or none configured)
	Leaving  bool // shutting down: hold nothing, claim nothing
	Digest   [8]byte
	Serves   []uint32 // sorted
	Holds    []uint32 // sorted
}

const (
	metaVersion = 1
	flagXDP     = 1 << 0
	flagL7      = 1 << 1
	flagWitness = 1 << 2
	flagLeaving = 1 << 3

	metaMax = 512
	// 11 header bytes, two uvarint counts (≤ 2 bytes each), 4 bytes per VIP
	// in each of two lists.
	maxMetaVIPs = (metaMax - 11 - 4) / 8
)

// healthy is the eligibility rule's health part.
func (m *meta) healthy() bool { return m.XDP && m.L7 && m.Witness && !m.Leaving }

func (m *meta) encode() []byte {
	b := make([]byte, 11, 11+8*(len(m.Serves)+len(m.Holds))+4)
	b[0] = metaVersion
	b[1] = byte(m.Priority)
	var f byte
	for _, x := range []struct {
		on  bool
		bit byte
	}{{m.XDP, flagXDP}, {m.L7, flagL7}, {m.Witness, flagWitness}, {m.Leaving, flagLeaving}} {
		if x.on {
			f |= x.bit
		}
	}
	b[2] = f
	copy(b[3:11], m.Digest[:])
	for _, list := range [][]uint32{m.Serves, m.Holds} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, h := range list {
			b = binary.BigEndian.AppendUint32(b, h)
		}
	}
	return b
}

var errBadMeta = errors.New("cluster: malformed node metadata")

func decodeMeta(b []byte) (meta, error) {
	var m meta
	if len(b) < 11 || b[0] != metaVersion {
		return m, errBadMeta
	}
	m.Priority = int(b[1])
	f := b[2]
	m.XDP, m.L7, m.Witness, m.Leaving = f&flagXDP != 0, f&flagL7 != 0, f&flagWitness != 0, f&flagLeaving != 0
	copy(m.Digest[:], b[3:11])
	rest := b[11:]
	for _, list := range []*[]uint32{&m.Serves, &m.Holds} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k)/4 {
			return m, errBadMeta
		}
		rest = rest[k:]
		*list = make([]uint32, n)
		for i := range *list {
			(*list)[i] = binary.BigEndian.Uint32(rest)
			rest = rest[4:]
		}
	}
	return m, nil
}

// vipHash is the VIP's identity in gossip: FNV-1a of its name.
func vipHash(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// digestPrefix keeps the first 8 bytes of a hex SHA-256 digest; a digest
// that is not hex is hashed so that equal strings still compare equal.
func digestPrefix(d string) [8]byte {
	var out [8]byte
	if len(d) >= 16 {
		if b, err := hex.DecodeString(d[:16]); err == nil {
			copy(out[:], b)
			return out
		}
	}
	h := fnv.New64a()
	h.Write([]byte(d))
	binary.BigEndian.PutUint64(out[:], h.Sum64())
	return out
}

func sortedHashes(names []string) []uint32 {
	out := make([]uint32, 0, len(names))
	for _, n := range names {
		out = append(out, vipHash(n))
	}
	slices.Sort(out)
	return out
}

func hasHash(list []uint32, h uint32) bool {
	_, ok := slices.BinarySearch(list, h)
	return ok
}
