package h2

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// Every block the static-table encoder writes decodes, with x/net's
// decoder, to the fields it was given, in order; the static indexes it
// uses are the RFC's (a wrong one would decode to another name).
func TestHpackEncoderDecodesToItsFields(t *testing.T) {
	names := []string{
		"accept-charset", "accept-encoding", "accept-language", "accept-ranges", "accept",
		"access-control-allow-origin", "age", "allow", "authorization", "cache-control",
		"content-disposition", "content-encoding", "content-language", "content-length",
		"content-location", "content-range", "content-type", "cookie", "date", "etag", "expect",
		"expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range",
		"if-unmodified-since", "last-modified", "link", "location", "max-forwards",
		"proxy-authenticate", "proxy-authorization", "range", "referer", "refresh", "retry-after",
		"server", "set-cookie", "strict-transport-security", "transfer-encoding", "user-agent",
		"vary", "via", "www-authenticate",
		"x-backend", "x-request-id", strings.Repeat("x", 200),
	}
	values := []string{"", "v", "text/plain; charset=utf-8", strings.Repeat("a", 126), strings.Repeat("b", 127), strings.Repeat("c", 128), strings.Repeat("d", 20000)}
	var e hpackEncoder
	dec := hpack.NewDecoder(4096, nil)
	dec.SetMaxStringLength(1 << 20)
	for _, code := range []int{100, 103, 200, 204, 206, 301, 304, 400, 404, 431, 500, 503, 999} {
		for i, n := range names {
			e.sizeUpdate = i%7 == 0
			e.begin()
			e.status(code)
			want := []hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(code)}}
			for j, v := range values {
				if (i+j)%3 == 0 {
					e.field(n, v)
					want = append(want, hpack.HeaderField{Name: n, Value: v})
				}
			}
			got, err := dec.DecodeFull(e.b)
			if err != nil {
				t.Fatalf("status %d, %s: %v", code, n, err)
			}
			if len(got) != len(want) {
				t.Fatalf("status %d, %s: %d fields, want %d", code, n, len(got), len(want))
			}
			for k := range want {
				if got[k].Name != want[k].Name || got[k].Value != want[k].Value || got[k].Sensitive {
					t.Fatalf("status %d, field %d: got %q: %.40q, want %q: %.40q", code, k, got[k].Name, got[k].Value, want[k].Name, want[k].Value)
				}
			}
		}
	}
}

// After a table size update to 0 the decoder's table is empty and stays
// so: nothing the encoder writes is indexed.
func TestHpackEncoderLeavesTheDynamicTableEmpty(t *testing.T) {
	var e hpackEncoder
	e.sizeUpdate = true
	dec := hpack.NewDecoder(4096, nil)
	for range 3 {
		e.begin()
		e.status(200)
		e.field("x-backend", "1")
		e.field("date", "Thu, 01 Jan 1970 00:00:00 GMT")
		if _, err := dec.DecodeFull(e.b); err != nil {
			t.Fatal(err)
		}
	}
	// Index 62 would be the first dynamic entry.
	if _, err := dec.DecodeFull([]byte{0x80 | 62}); err == nil {
		t.Fatal("the dynamic table has an entry")
	}
}
