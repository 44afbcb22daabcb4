package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// directives are the Cache-Control directives the cache acts on (RFC 9111
// §5.2, RFC 5861). Durations are -1 when the directive is absent.
type directives struct {
	noStore, noCache, private, public  bool
	mustRevalidate, proxyRevalidate    bool
	onlyIfCached, maxStaleAny          bool
	maxAge, sMaxAge, maxStale, minFres time.Duration
	swr, sie                           time.Duration
}

func absent() directives {
	return directives{maxAge: -1, sMaxAge: -1, maxStale: -1, minFres: -1, swr: -1, sie: -1}
}

// maxDelta caps delta-seconds (RFC 9111 §1.2.2: 2^31 when larger).
const maxDelta = 1 << 31

// parseDirectives reads every Cache-Control field line. Directive names are
// case-insensitive; an argument may be quoted (§5.2). A qualified private or
// no-cache (private="Set-Cookie") is taken as the unqualified one: dropping
// the named fields is allowed, refusing the whole response is safer.
func parseDirectives(vals []string) directives {
	d := absent()
	for _, v := range vals {
		for v != "" {
			var item string
			item, v = nextItem(v)
			name, arg, _ := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			arg = strings.Trim(strings.TrimSpace(arg), `"`)
			switch strings.ToLower(name) {
			case "no-store":
				d.noStore = true
			case "no-cache":
				d.noCache = true
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "only-if-cached":
				d.onlyIfCached = true
			case "max-age":
				d.maxAge = seconds(arg)
			case "s-maxage":
				d.sMaxAge = seconds(arg)
			case "max-stale":
				if arg == "" {
					d.maxStaleAny = true
				} else {
					d.maxStale = seconds(arg)
				}
			case "min-fresh":
				d.minFres = seconds(arg)
			case "stale-while-revalidate":
				d.swr = seconds(arg)
			case "stale-if-error":
				d.sie = seconds(arg)
			}
		}
	}
	return d
}

// nextItem splits off one comma-separated member, honouring quotes.
func nextItem(s string) (item, rest string) {
	q := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q = !q
		case '\\':
			if q {
				i++
			}
		case ',':
			if !q {
				return strings.TrimSpace(s[:i]), s[i+1:]
			}
		}
	}
	return strings.TrimSpace(s), ""
}

// seconds reads delta-seconds. An invalid value is 0 (RFC 9111 §4.2.1: a
// cache treats an invalid max-age as stale).
func seconds(s string) time.Duration {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return maxDelta * time.Second
		}
		return 0
	}
	return time.Duration(min(n, maxDelta)) * time.Second
}

// Request is what the cache reads from a client's request.
type Request struct {
	d directives
	// NoStore: the request must not be stored nor its response (§5.2.1.5).
	NoStore bool
	// NoCache: a stored response must be validated first (§5.2.1.4; also
	// Pragma: no-cache when there is no Cache-Control, §5.4).
	NoCache bool
	// OnlyIfCached: answer 504 rather than go upstream (§5.2.1.7).
	OnlyIfCached bool
}

// ParseRequest reads the request's Cache-Control (and Pragma).
func ParseRequest(h http.Header) Request {
	cc := h["Cache-Control"]
	if len(cc) == 0 {
		var r Request
		r.d = absent()
		for _, p := range h["Pragma"] {
			if strings.Contains(strings.ToLower(p), "no-cache") {
				r.NoCache = true
			}
		}
		return r
	}
	d := parseDirectives(cc)
	return Request{d: d, NoStore: d.noStore, NoCache: d.noCache, OnlyIfCached: d.onlyIfCached}
}
