package compress

import (
	"net/http"
	"testing"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func defaultPolicy() *Policy {
	return Compile(&config.Compression{
		Encodings:    config.DefaultCompressionEncodings,
		MinSize:      config.DefaultCompressionMinSize,
		ContentTypes: config.DefaultCompressibleTypes,
	})
}

func TestNegotiation(t *testing.T) {
	p := defaultPolicy()
	for _, tc := range []struct {
		name string
		ae   []string
		want Encoding
	}{
		{"no Accept-Encoding gets identity", nil, Identity},
		{"gzip alone", []string{"gzip"}, Gzip},
		{"br alone", []string{"br"}, Brotli},
		{"zstd alone", []string{"zstd"}, Zstd},
		{"equal q prefers zstd, then br, then gzip", []string{"gzip, br, zstd"}, Zstd},
		{"equal q without zstd prefers br", []string{"gzip, deflate, br"}, Brotli},
		{"the highest q wins", []string{"gzip;q=1.0, br;q=0.5, zstd;q=0.2"}, Gzip},
		{"several header lines are one list", []string{"br;q=0.1", "gzip;q=0.9"}, Gzip},
		{"q=0 refuses a coding", []string{"zstd;q=0, br;q=0, gzip"}, Gzip},
		{"star accepts every coding", []string{"*"}, Zstd},
		{"star gives its q to unlisted codings", []string{"*;q=0.5, gzip;q=0.8"}, Gzip},
		{"star q=0 with nothing else is identity", []string{"*;q=0"}, Identity},
		{"identity;q=0 does not stop a coding", []string{"identity;q=0, gzip"}, Gzip},
		{"identity preferred over a weaker coding", []string{"br;q=0.8, identity"}, Identity},
		{"x-gzip is gzip", []string{"x-gzip"}, Gzip},
		{"names are case-insensitive", []string{"GZIP, Br"}, Brotli},
		{"spaces and empty items", []string{" , gzip ;  q=0.7 ,, "}, Gzip},
		{"a malformed q refuses", []string{"gzip;q=high, br;q=2"}, Identity},
		{"unknown codings only", []string{"deflate, compress"}, Identity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Negotiate(tc.ae); got != tc.want {
				t.Errorf("Negotiate(%q) = %v, want %v", tc.ae, got, tc.want)
			}
		})
	}
}

func TestNegotiationFollowsTheConfiguredOrderAndList(t *testing.T) {
	p := Compile(&config.Compression{Encodings: []string{"gzip", "br"}, MinSize: 1, ContentTypes: []string{"text/*"}})
	if got := p.Negotiate([]string{"zstd, br, gzip"}); got != Gzip {
		t.Errorf("got %v, want gzip (first configured, zstd not offered)", got)
	}
	if got := p.Negotiate([]string{"zstd"}); got != Identity {
		t.Errorf("got %v, want identity", got)
	}
}

func TestCompressibleTypes(t *testing.T) {
	p := defaultPolicy()
	for ct, want := range map[string]bool{
		"text/html; charset=utf-8":       true,
		"text/event-stream":              true,
		"application/json":               true,
		"Application/JSON; charset=utf8": true,
		"application/problem+json":       true,
		"application/atom+xml":           true,
		"image/svg+xml":                  true,
		"application/javascript":         true,
		"image/png":                      false,
		"application/octet-stream":       false,
		"application/zip":                false,
		"text":                           false,
		"+json":                          false,
		"":                               false,
	} {
		if got := p.Compressible(ct); got != want {
			t.Errorf("Compressible(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestVaryIsMergedOnce(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{[]string{"origin, accept-encoding"}, []string{"origin, accept-encoding"}},
		{[]string{"*"}, []string{"*"}},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Vary"] = tc.in
		}
		addVary(h)
		if got := h["Vary"]; len(got) != len(tc.want) || got[len(got)-1] != tc.want[len(tc.want)-1] {
			t.Errorf("Vary %q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	p := defaultPolicy()
	ae := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		p.Negotiate(ae)
	}
}
