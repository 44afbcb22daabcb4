// Package hkey turns header field names between their wire and canonical
// forms without allocating in the common cases: the HTTP/1.1 readers (the
// lean server and the proxy's upstream reader) see names that are almost
// always canonical already, and the HTTP/2 server sees lower-case names
// that are almost always well-known fields.
package hkey

import (
	"net/http"
	"strconv"
	"strings"
)

// Canonical returns k in canonical form (http.CanonicalHeaderKey): k
// itself when it already is, a well-known field's canonical string when k
// is its lower-case wire form, otherwise a new string.
func Canonical(k string) string {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			if ck, ok := canonical[k]; ok {
				return ck
			}
			return http.CanonicalHeaderKey(k)
		}
		upper = c == '-'
	}
	return k
}

// AppendList appends to dst the canonical names that the values vv list,
// comma-separated (a Trailer field's syntax), skipping empty elements.
func AppendList(dst, vv []string) []string {
	for _, v := range vv {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				dst = append(dst, Canonical(k))
			}
		}
	}
	return dst
}

// AddVary adds a field name to h's Vary, once: not when a Vary value
// already lists it (in any case) or lists *. only is the one-element value
// to set when h has no Vary (a shared slice, so the common case does not
// allocate; never written). The upstream's slice is not appended to in
// place: it may be shared with a cached response.
func AddVary(h http.Header, only []string) {
	vary := h["Vary"]
	for _, v := range vary {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, only[0]) {
				return
			}
		}
	}
	if len(vary) == 0 {
		h["Vary"] = only
		return
	}
	h["Vary"] = append(vary[:len(vary):len(vary)], only[0])
}

// Lower is the lower-case (HTTP/2 and HTTP/3 wire) form of a canonical key.
func Lower(k string) string {
	if l, ok := lower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var (
	canonical = map[string]string{} // lower-case → canonical, well-known fields
	lower     = map[string]string{} // canonical → lower-case
)

func init() {
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Age", "Allow", "Alt-Svc",
		"Authorization", "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Etag",
		"Expect", "Expires", "Forwarded", "From", "Grpc-Encoding", "Grpc-Accept-Encoding", "Grpc-Message",
		"Grpc-Status", "Grpc-Timeout", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Last-Modified", "Link", "Location", "Max-Forwards", "Origin",
		"Proxy-Authenticate", "Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "User-Agent", "Vary",
		"Via", "Www-Authenticate", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Request-Id", "Accept-Version", "X-Api-Version", "Cache-Status", "Priority",
		"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset",
	} {
		l := strings.ToLower(k)
		canonical[l] = k
		lower[k] = l
	}
}

// ParseLength reads a Content-Length value: digits only (RFC 9110 §8.6),
// within int64. strconv.ParseInt alone would take "+5" and "-0", lengths
// another hop may read differently.
func ParseLength(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && v[0] >= '0' && v[0] <= '9'
}
