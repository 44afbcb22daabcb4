package h2

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is one decoded HEADERS (+ CONTINUATION) block. The
// connection decodes blocks itself rather than through the framer's
// MetaHeadersFrame, which allocates a frame, a closure and a growing field
// slice for every request: here the fields go into one slice the
// connection reuses, with the same checks (RFC 9113 §8.2: lower-case
// token names, valid values, pseudo-fields first; the size limit).
type headerBlock struct {
	id        uint32
	endStream bool
	hasPrio   bool
	prio      http2.PriorityParam
	fields    []hpack.HeaderField
	npseudo   int  // fields[:npseudo] are pseudo-fields
	size      int  // RFC 7541 §4.1 size of the fields kept
	truncated bool // over the decoding cap: fields dropped (answered 431)
	invalid   bool // a malformed field: stream error
	frag      int  // encoded bytes so far, against CONTINUATION floods
}

func (b *headerBlock) pseudo() []hpack.HeaderField  { return b.fields[:b.npseudo] }
func (b *headerBlock) regular() []hpack.HeaderField { return b.fields[b.npseudo:] }

// emit is the HPACK decoder's callback for the block being read.
func (cn *conn) emit(hf hpack.HeaderField) {
	b := &cn.hb
	if b.invalid || b.truncated {
		return
	}
	pseudo := strings.HasPrefix(hf.Name, ":")
	switch {
	case !httpguts.ValidHeaderFieldValue(hf.Value),
		pseudo && b.npseudo != len(b.fields),
		!pseudo && !validWireName(hf.Name):
		b.invalid = true
		return
	}
	b.size += int(hf.Size())
	if b.size > 4*int(cn.maxHeader) {
		// Far over the limit: stop keeping fields (the block is still
		// decoded to the end, to keep the HPACK state in step).
		b.truncated = true
		b.fields = b.fields[:0]
		b.npseudo = 0
		return
	}
	b.fields = append(b.fields, hf)
	if pseudo {
		b.npseudo++
	}
}

// validWireName is a lower-case token (RFC 9113 §8.2.1).
func validWireName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// onHeadersFrame starts a header block; a block that ends here is handled
// at once.
func (cn *conn) onHeadersFrame(f *http2.HeadersFrame) error {
	cn.hb = headerBlock{id: f.StreamID, endStream: f.StreamEnded(), hasPrio: f.HasPriority(), prio: f.Priority, fields: cn.hb.fields[:0]}
	return cn.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// onContinuation continues it (the framer has checked that a CONTINUATION
// follows its HEADERS on the same stream and nothing else comes between).
func (cn *conn) onContinuation(f *http2.ContinuationFrame) error {
	return cn.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (cn *conn) fragment(frag []byte, end bool) error {
	b := &cn.hb
	b.frag += len(frag)
	if b.frag > 8*int(cn.maxHeader)+maxFrame {
		// CONTINUATION flood (CVE-2024-27316 and kin): no block is that big.
		return connError{http2.ErrCodeEnhanceYourCalm, "header block too large"}
	}
	if _, err := cn.hdec.Write(frag); err != nil {
		return connError{http2.ErrCodeCompression, "HPACK: " + err.Error()}
	}
	if !end {
		return nil
	}
	if err := cn.hdec.Close(); err != nil {
		return connError{http2.ErrCodeCompression, "HPACK: " + err.Error()}
	}
	if b.invalid {
		cn.noteClient(b.id)
		cn.resetStream(b.id, http2.ErrCodeProtocol)
		return nil
	}
	return cn.onHeaders(b)
}

// noteClient records a stream id the client opened, even when its request
// is refused before it becomes a stream.
func (cn *conn) noteClient(id uint32) {
	if id%2 == 1 && id > cn.maxClientID {
		cn.maxClientID = id
	}
}
