package config

// Compression and body transformation defaults (issue #8).
const (
	// DefaultCompressionMinSize is the smallest body compressed, in bytes.
	DefaultCompressionMinSize = 1024
	// DefaultTransformMaxBytes is the largest JSON body transformed.
	DefaultTransformMaxBytes = 1 << 20
)

// DefaultCompressionEncodings are the codings offered, in the order
// preferred at equal q-values: zstd compresses faster at a ratio near
// brotli's at the levels used.
var DefaultCompressionEncodings = []string{"zstd", "br", "gzip"}

// DefaultCompressibleTypes are the media types compressed by default:
// text and the structured syntaxes that compress well. Images, video and
// archives are compressed already.
var DefaultCompressibleTypes = []string{
	"text/*", "application/json", "application/javascript", "application/xml",
	"image/svg+xml", "+json", "+xml",
}

func (r *Route) setTransformDefaults() {
	if c := r.Compression; c != nil {
		if len(c.Encodings) == 0 {
			c.Encodings = append([]string(nil), DefaultCompressionEncodings...)
		}
		def(&c.MinSize, DefaultCompressionMinSize)
		if len(c.ContentTypes) == 0 {
			c.ContentTypes = append([]string(nil), DefaultCompressibleTypes...)
		}
	}
	if t := r.BodyTransform; t != nil {
		def(&t.MaxBytes, DefaultTransformMaxBytes)
	}
}
