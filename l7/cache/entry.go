package cache

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Entry is one stored response. It is never changed once stored (a 304
// makes a new Entry sharing the body), so a request may keep serving one that
// was evicted or replaced meanwhile.
type Entry struct {
	Status int
	// Header is the stored header, without hop-by-hop fields, Age and
	// Content-Length. Its value slices have cap == len: appending copies.
	Header http.Header
	Body   []byte
	// respTime is response_time, initialAge the corrected_initial_age of
	// RFC 9111 §4.2.3.
	respTime   time.Time
	initialAge time.Duration
	lifetime   time.Duration
	swr, sie   time.Duration
	// noCache: every use needs validation (response no-cache).
	noCache bool
	// noStale: never served stale (must-revalidate, proxy-revalidate,
	// s-maxage; RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10).
	noStale bool
	ETag    string
	LastMod string

	key, vkey  string
	res        *resource
	size       int64
	prev, next *Entry
	// refreshing: a background refresh (stale-while-revalidate) runs.
	refreshing atomic.Bool
}

// Age is current_age (RFC 9111 §4.2.3).
func (e *Entry) Age(now time.Time) time.Duration {
	return e.initialAge + max(0, now.Sub(e.respTime))
}

// TTL is the remaining freshness: negative when stale.
func (e *Entry) TTL(now time.Time) time.Duration { return e.lifetime - e.Age(now) }

// HasValidators reports whether the entry can be revalidated.
func (e *Entry) HasValidators() bool { return e.ETag != "" || e.LastMod != "" }

// Key is the entry's primary key (host and request target).
func (e *Entry) Key() string { return e.key }

// Use says how a stored response may answer a request.
type Use uint8

const (
	// Unusable: go upstream (validate when the entry has validators).
	Unusable Use = iota
	// Fresh: answer from the entry.
	Fresh
	// StaleAllowed: answer stale, the client asked for it (max-stale).
	StaleAllowed
	// StaleRevalidate: answer stale and refresh in the background
	// (stale-while-revalidate).
	StaleRevalidate
)

// Usable decides how e may answer req at now (RFC 9111 §4, §5.2.1, RFC 5861).
func (e *Entry) Usable(req *Request, now time.Time) Use {
	if e.noCache || req.NoCache {
		return Unusable
	}
	d := &req.d
	age := e.Age(now)
	if d.maxAge >= 0 && age > d.maxAge {
		return Unusable
	}
	ttl := e.lifetime - age
	if d.minFres >= 0 && ttl < d.minFres {
		return Unusable
	}
	if ttl > 0 {
		return Fresh
	}
	if e.noStale {
		return Unusable
	}
	if d.maxStaleAny || (d.maxStale >= 0 && -ttl <= d.maxStale) {
		return StaleAllowed
	}
	if -ttl <= e.swr {
		return StaleRevalidate
	}
	return Unusable
}

// StaleIfError reports whether e may answer in place of an upstream failure.
func (e *Entry) StaleIfError(now time.Time) bool {
	return !e.noStale && !e.noCache && -e.TTL(now) <= e.sie
}

// hopHeaders are never stored (RFC 9110 §7.6.1; Age and Content-Length
// are the cache's to write).
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
	"Te", "Trailer", "Upgrade", "Age", "Content-Length",
}

// storedHeader copies h without the fields a cache does not keep. The copy
// gives every value slice cap == len.
func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, c := range h["Connection"] {
		for f := range strings.SplitSeq(c, ",") {
			delete(out, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	for _, k := range hopHeaders {
		delete(out, k)
	}
	return out
}

// TryRefresh claims the entry's one background refresh; EndRefresh
// releases it.
func (e *Entry) TryRefresh() bool { return e.refreshing.CompareAndSwap(false, true) }

// EndRefresh ends the refresh TryRefresh claimed.
func (e *Entry) EndRefresh() { e.refreshing.Store(false) }
