package l7

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// idSource makes request ids: a random per-process prefix and a counter,
// "5f3a9c0e71d2b4a8-1a2b". Unique across restarts and nodes without a
// random read or an allocation per request.
type idSource struct {
	prefix [16]byte
	n      atomic.Uint64
}

func (s *idSource) init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	hex.Encode(s.prefix[:], b[:])
}

// next appends a new id to dst.
func (s *idSource) next(dst []byte) []byte {
	dst = append(dst, s.prefix[:]...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, s.n.Add(1), 16)
}
