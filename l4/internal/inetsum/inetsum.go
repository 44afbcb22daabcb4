// Package inetsum is the Internet checksum (RFC 1071) the tests of l4 and
// l4/decap build packets with.
package inetsum

import "encoding/binary"

// Add adds b, as big-endian 16-bit words (an odd last byte padded with
// zero), to the unfolded sum.
func Add(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// Fold folds the carries of sum into 16 bits and complements it: the
// checksum field's value.
func Fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
