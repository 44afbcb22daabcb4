// Package compress is a route's response compression (issue #8): gzip,
// brotli and zstd negotiated from Accept-Encoding (RFC 9110 §12.5.3), a
// ResponseWriter wrapper that decides per response whether to compress, and
// pooled encoders so that a compressed response allocates little.
//
// The wrapper is the outermost step of a route (closest to the client): a
// response cache or a body transformation inside it sees the identity
// representation. See docs/transform.md.
package compress

import (
	"io"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Encoding is a content coding the proxy produces.
type Encoding uint8

const (
	Identity Encoding = iota
	Zstd
	Brotli
	Gzip
	numEncodings
)

// Token is the coding's name in Content-Encoding.
func (e Encoding) Token() string { return tokens[e] }

func (e Encoding) String() string { return e.Token() }

var tokens = [numEncodings]string{"identity", "zstd", "br", "gzip"}

// The header values set on compressed responses, shared: net/http only
// reads them, and an append elsewhere copies (len == cap).
var contentEncoding = [numEncodings][]string{nil, {"zstd"}, {"br"}, {"gzip"}}

func encodingOf(token string) Encoding {
	for e := Zstd; e < numEncodings; e++ {
		if token == tokens[e] {
			return e
		}
	}
	return Identity
}

// Levels chosen for speed: the proxy compresses on the request path, for
// every client. gzip 5 and brotli 4 are within a few percent of their
// default ratios at a fraction of the time; zstd's default (level 3) is
// faster than both.
const (
	gzipLevel   = 5
	brotliLevel = 4
	// brotliWindow and zstdWindow bound a pooled encoder's memory: 1 MiB
	// of history is plenty for HTTP bodies (and within what browsers
	// accept for zstd, RFC 8878 §3.1.1.1.2 recommends ≤ 8 MiB).
	brotliWindow = 20
	zstdWindow   = 1 << 20
)

// Policy is a route's compiled compression settings. Immutable.
type Policy struct {
	encs    []Encoding // offered, in the order preferred at equal q
	minSize int64
	exact   []string // type/subtype
	types   []string // type/ of type/*
	suffix  []string // +suffix
}

// Compile builds a policy from a route's (defaulted, validated) config.
func Compile(c *config.Compression) *Policy {
	p := &Policy{minSize: c.MinSize}
	for _, e := range c.Encodings {
		if enc := encodingOf(e); enc != Identity {
			p.encs = append(p.encs, enc)
		}
	}
	for _, ct := range c.ContentTypes {
		ct = strings.ToLower(ct)
		switch {
		case strings.HasPrefix(ct, "+"):
			p.suffix = append(p.suffix, ct)
		case strings.HasSuffix(ct, "/*"):
			p.types = append(p.types, ct[:len(ct)-1])
		default:
			p.exact = append(p.exact, ct)
		}
	}
	return p
}

// Compressible reports whether a Content-Type value names a media type
// the policy compresses (parameters such as charset are ignored).
func (p *Policy) Compressible(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for _, t := range p.exact {
		if strings.EqualFold(ct, t) {
			return true
		}
	}
	for _, t := range p.types {
		if len(ct) > len(t) && strings.EqualFold(ct[:len(t)], t) {
			return true
		}
	}
	if strings.IndexByte(ct, '/') > 0 {
		for _, s := range p.suffix {
			if len(ct) > len(s) && strings.EqualFold(ct[len(ct)-len(s):], s) {
				return true
			}
		}
	}
	return false
}

// Negotiate picks the coding for a request's Accept-Encoding values
// (RFC 9110 §12.5.3): the offered coding with the highest q-value, ties
// broken by the policy's order; a coding not listed takes the q-value of
// "*" when there is one; q=0 refuses. Identity is chosen when nothing
// offered is acceptable, or when the client lists identity with a higher
// q-value than the best coding. (When identity itself is refused too, the
// response still goes out as identity: answering 406 helps no one.)
func (p *Policy) Negotiate(ae []string) Encoding {
	if len(ae) == 0 {
		return Identity
	}
	var q [numEncodings]int // -1: not listed
	for i := range q {
		q[i] = -1
	}
	star := -1
	for _, v := range ae {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			qv := parseQ(params)
			switch {
			case name == "*":
				star = qv
			case strings.EqualFold(name, "identity"):
				q[Identity] = qv
			case strings.EqualFold(name, "gzip") || strings.EqualFold(name, "x-gzip"):
				q[Gzip] = max(q[Gzip], qv)
			case strings.EqualFold(name, "br"):
				q[Brotli] = qv
			case strings.EqualFold(name, "zstd"):
				q[Zstd] = qv
			}
		}
	}
	best, bestQ := Identity, 0
	for _, e := range p.encs {
		qv := q[e]
		if qv < 0 {
			qv = star
		}
		if qv > bestQ {
			best, bestQ = e, qv
		}
	}
	if best != Identity && q[Identity] > bestQ {
		return Identity
	}
	return best
}

// parseQ reads the q parameter of an Accept-Encoding item (";q=0.5") in
// thousandths; 1000 when there is none, 0 when it is malformed (a coding
// with an unreadable weight is not taken).
func parseQ(params string) int {
	for params != "" {
		var prm string
		prm, params, _ = strings.Cut(params, ";")
		k, val, ok := strings.Cut(strings.TrimSpace(prm), "=")
		if !ok || (k != "q" && k != "Q") {
			continue
		}
		val = strings.TrimSpace(val)
		// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
		if val == "" || len(val) > 5 || (val[0] != '0' && val[0] != '1') {
			return 0
		}
		n := int(val[0]-'0') * 1000
		if len(val) > 1 {
			if val[1] != '.' {
				return 0
			}
			scale := 100
			for i := 2; i < len(val); i++ {
				c := val[i]
				if c < '0' || c > '9' {
					return 0
				}
				n += int(c-'0') * scale
				scale /= 10
			}
		}
		return min(n, 1000)
	}
	return 1000
}

// encoder is what the three codings' streaming writers have in common.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

// pools of encoders, one per coding. An encoder comes back only after a
// Close or before a Reset, so a pooled one carries no half-written stream.
var encoders = [numEncodings]sync.Pool{
	Gzip: {New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzipLevel)
		return w
	}},
	Brotli: {New: func() any {
		return brotli.NewWriterOptions(io.Discard, brotli.WriterOptions{Quality: brotliLevel, LGWin: brotliWindow})
	}},
	Zstd: {New: func() any {
		e, err := zstd.NewWriter(io.Discard, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // constant options
		}
		return e
	}},
}

func getEncoder(e Encoding, dst io.Writer) encoder {
	enc := encoders[e].Get().(encoder)
	enc.Reset(dst)
	return enc
}

func putEncoder(e Encoding, enc encoder) {
	enc.Reset(io.Discard) // drop the reference to the response
	encoders[e].Put(enc)
}
