package h2

// The response header encoder. It uses HPACK's static table only, as
// HAProxy's does: a field whose name (or, for :status, name and value) is
// in the static table refers to it, everything else is a literal without
// indexing, with the string bytes as they are. A dynamic table would save
// some bytes on the wire, but maintaining and searching it (x/net's
// encoder: map lookups with two-string keys for every field, insertions
// and evictions) cost more CPU per response than anything else in the
// header path, and on a proxy the response fields (Date, request ids,
// backend-specific values) change from response to response anyway.
//
// The dynamic table size stays 0. RFC 7541 §4.2: after the client changes
// SETTINGS_HEADER_TABLE_SIZE, the next header block starts with a table
// size update (to 0, which is within any limit); some decoders (nghttp2)
// insist on it when the limit shrinks.

import "strconv"

// hpackEncoder appends header blocks to b.
type hpackEncoder struct {
	b          []byte
	sizeUpdate bool // a table size update is due at the start of the next block
}

// begin starts a header block.
func (e *hpackEncoder) begin() {
	e.b = e.b[:0]
	if e.sizeUpdate {
		e.sizeUpdate = false
		e.b = appendHpackInt(e.b, 0x20, 5, 0) // RFC 7541 §6.3
	}
}

// status encodes :status: one byte for the codes in the static table.
func (e *hpackEncoder) status(code int) {
	if i := staticStatus(code); i > 0 {
		e.b = appendHpackInt(e.b, 0x80, 7, uint64(i)) // §6.1
		return
	}
	// The digits go straight into the block: no string per code.
	var d [20]byte
	v := strconv.AppendInt(d[:0], int64(code), 10)
	e.b = appendHpackInt(e.b, 0x00, 4, uint64(staticName(":status")))
	e.b = appendHpackInt(e.b, 0x00, 7, uint64(len(v)))
	e.b = append(e.b, v...)
}

// field encodes a field (name in lower case) as a literal without
// indexing (RFC 7541 §6.2.2), its name from the static table when there.
func (e *hpackEncoder) field(name, value string) {
	if i := staticName(name); i > 0 {
		e.b = appendHpackInt(e.b, 0x00, 4, uint64(i))
	} else {
		e.b = append(e.b, 0x00)
		e.b = appendHpackString(e.b, name)
	}
	e.b = appendHpackString(e.b, value)
}

// appendHpackInt is RFC 7541 §5.1: i in an n-bit prefix of a byte whose
// other bits are first's.
func appendHpackInt(b []byte, first byte, n uint, i uint64) []byte {
	max := uint64(1)<<n - 1
	if i < max {
		return append(b, first|byte(i))
	}
	b = append(b, first|byte(max))
	i -= max
	for i >= 128 {
		b = append(b, byte(i&0x7f|0x80))
		i >>= 7
	}
	return append(b, byte(i))
}

// appendHpackString is RFC 7541 §5.2 without Huffman coding.
func appendHpackString(b []byte, s string) []byte {
	b = appendHpackInt(b, 0x00, 7, uint64(len(s)))
	return append(b, s...)
}

// staticStatus is the static table index of ":status: code", 0 when none.
func staticStatus(code int) int {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}

// staticName is the first static table index (RFC 7541 Appendix A) with
// this name, 0 when none. Request-only names are left out.
func staticName(name string) int {
	switch name {
	case ":status":
		return 8
	case "accept-charset":
		return 15
	case "accept-encoding":
		return 16
	case "accept-language":
		return 17
	case "accept-ranges":
		return 18
	case "accept":
		return 19
	case "access-control-allow-origin":
		return 20
	case "age":
		return 21
	case "allow":
		return 22
	case "authorization":
		return 23
	case "cache-control":
		return 24
	case "content-disposition":
		return 25
	case "content-encoding":
		return 26
	case "content-language":
		return 27
	case "content-length":
		return 28
	case "content-location":
		return 29
	case "content-range":
		return 30
	case "content-type":
		return 31
	case "cookie":
		return 32
	case "date":
		return 33
	case "etag":
		return 34
	case "expect":
		return 35
	case "expires":
		return 36
	case "from":
		return 37
	case "host":
		return 38
	case "if-match":
		return 39
	case "if-modified-since":
		return 40
	case "if-none-match":
		return 41
	case "if-range":
		return 42
	case "if-unmodified-since":
		return 43
	case "last-modified":
		return 44
	case "link":
		return 45
	case "location":
		return 46
	case "max-forwards":
		return 47
	case "proxy-authenticate":
		return 48
	case "proxy-authorization":
		return 49
	case "range":
		return 50
	case "referer":
		return 51
	case "refresh":
		return 52
	case "retry-after":
		return 53
	case "server":
		return 54
	case "set-cookie":
		return 55
	case "strict-transport-security":
		return 56
	case "transfer-encoding":
		return 57
	case "user-agent":
		return 58
	case "vary":
		return 59
	case "via":
		return 60
	case "www-authenticate":
		return 61
	}
	return 0
}
