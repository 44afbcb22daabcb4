package hkey

import (
	"net/http"
	"slices"
	"testing"
)

func TestCanonicalAgreesWithNetHTTP(t *testing.T) {
	for _, k := range []string{"Content-Type", "content-type", "CONTENT-TYPE", "x-custom-field", "X-Custom-Field", "a", "", "x_y", "grpc-status", "Www-authenticate"} {
		if got, want := Canonical(k), http.CanonicalHeaderKey(k); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", k, got, want)
		}
	}
	if Lower("Content-Type") != "content-type" || Lower("X-Odd-One") != "x-odd-one" {
		t.Error("Lower")
	}
	if n := testing.AllocsPerRun(100, func() { _ = Canonical("Content-Type"); _ = Canonical("content-type"); _ = Lower("Content-Type") }); n != 0 {
		t.Errorf("%v allocations for well-known fields", n)
	}
}

func TestAppendListCanonicalizesEachName(t *testing.T) {
	got := AppendList([]string{"A"}, []string{"grpc-status, x-a ,", " Grpc-Message"})
	if want := []string{"A", "Grpc-Status", "X-A", "Grpc-Message"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestAddVary(t *testing.T) {
	only := []string{"Origin"}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, []string{"Origin"}},
		{"another field", []string{"Accept-Encoding"}, []string{"Accept-Encoding", "Origin"}},
		{"listed, other case", []string{"accept-encoding, origin"}, []string{"accept-encoding, origin"}},
		{"star", []string{"*"}, []string{"*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.in != nil {
				// Spare capacity: an in-place append would write here.
				in := make([]string, len(tc.in), len(tc.in)+1)
				copy(in, tc.in)
				h["Vary"] = in
			}
			orig := h["Vary"]
			AddVary(h, only)
			if !slices.Equal(h["Vary"], tc.want) {
				t.Errorf("Vary = %q, want %q", h["Vary"], tc.want)
			}
			if orig != nil && cap(orig) > len(orig) && orig[:cap(orig)][len(orig)] != "" {
				t.Errorf("the upstream's slice was appended to in place")
			}
		})
	}
}

func TestParseLength(t *testing.T) {
	for _, tc := range []struct {
		v  string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"5", 5, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false}, {"+5", 0, false}, {"-0", 0, false}, {"-1", 0, false},
		{"0x5", 0, false}, {"5 ", 0, false}, {"9223372036854775808", 0, false},
	} {
		n, ok := ParseLength(tc.v)
		if ok != tc.ok || ok && n != tc.n {
			t.Errorf("ParseLength(%q) = %d, %v; want %d, %v", tc.v, n, ok, tc.n, tc.ok)
		}
	}
}
