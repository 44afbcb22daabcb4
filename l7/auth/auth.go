// Package auth authenticates a route's requests: JSON Web Tokens checked
// against configured keys (inline, a JWKS file, or a remote JWKS cached and
// refreshed in the background), and API keys stored as SHA-256 hashes and
// mapped to consumer names. One Authenticator is compiled per route and
// generation; it is immutable, except for the remote key sets, which the
// Registry starts when the generation is applied and stops when it is
// replaced.
//
// The signature algorithm always comes from the configured key, never from
// the token (RFC 8725 §3.1): see config.VerifyKey and docs/security.md.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Outcome is what a check decided.
type Outcome uint8

const (
	// Allowed: the request goes on.
	Allowed Outcome = iota
	// Unauthenticated: no credentials (401).
	Unauthenticated
	// Invalid: credentials that do not verify (401, invalid_token).
	Invalid
	// Forbidden: valid credentials not allowed on this route (403).
	Forbidden
)

// Result is a check's decision and what it learned.
type Result struct {
	Outcome Outcome
	// Consumer is the API key's consumer, or the token's sub.
	Consumer string
	// RateKey is the value of the claim rate_limit keys on (claim:NAME).
	RateKey string
	// URIChanged: the API key was removed from the query, so the request
	// target must be recomputed from r.URL.
	URIChanged bool
	// Err is why the request was refused, for debug logs only.
	Err error
}

// Authenticator checks one route's credentials.
type Authenticator struct {
	jwt  *JWT
	keys *apiKeys
	// scrub are the claim headers, removed from every request so that a
	// client cannot send its own.
	scrub []string
	// challenge is the WWW-Authenticate value of a 401 without and with
	// bad credentials, and of a 403 (RFC 6750 §3).
	challenge [4][]string
}

// Compile builds the route's authenticator, nil when it has neither jwt
// nor api_keys. Remote key sets are registered with reg, which fetches
// nothing until Start. rateClaim is the claim rate_limit keys on ("" for
// none).
func Compile(rt config.Route, reg *Registry, rateClaim string) (*Authenticator, error) {
	if rt.JWT == nil && rt.APIKeys == nil {
		return nil, nil
	}
	a := &Authenticator{}
	if rt.JWT != nil {
		j, err := compileJWT(rt.JWT, reg, rateClaim)
		if err != nil {
			return nil, err
		}
		a.jwt = j
		for _, f := range j.forward {
			a.scrub = append(a.scrub, f.header)
		}
		a.challenge[Unauthenticated] = []string{`Bearer`}
		a.challenge[Invalid] = []string{`Bearer error="invalid_token"`}
		a.challenge[Forbidden] = []string{`Bearer error="insufficient_scope"`}
	}
	if rt.APIKeys != nil {
		k, err := compileAPIKeys(rt.APIKeys)
		if err != nil {
			return nil, err
		}
		a.keys = k
		if a.jwt == nil {
			a.challenge[Unauthenticated] = []string{`APIKey header="` + k.header + `"`}
			a.challenge[Invalid] = a.challenge[Unauthenticated]
		}
	}
	return a, nil
}

// Challenge is the WWW-Authenticate value for an outcome (nil: none).
func (a *Authenticator) Challenge(o Outcome) []string { return a.challenge[o] }

// Check authenticates r and, when it is allowed, prepares its headers for
// the upstream: claim headers set, and the credentials removed when so
// configured. It may wait for a remote key set fetch (a token with an
// unknown kid), bounded by the fetch timeout and r's context.
func (a *Authenticator) Check(r *http.Request, now time.Time, res *Result) {
	h := r.Header
	for _, k := range a.scrub {
		delete(h, k)
	}
	if a.keys != nil {
		if a.keys.check(r, res) {
			return
		}
	}
	if a.jwt == nil {
		res.Outcome = Unauthenticated
		return
	}
	tok, ok := bearer(h)
	if !ok {
		res.Outcome = Unauthenticated
		return
	}
	v, err := a.jwt.verify(r.Context(), tok, now)
	switch err {
	case nil:
	case ErrClaimMismatch:
		res.Outcome, res.Err, res.Consumer = Forbidden, err, v.subject
		return
	default:
		res.Outcome, res.Err = Invalid, err
		return
	}
	res.Outcome = Allowed
	res.Consumer = v.subject
	for i, f := range a.jwt.forward {
		if s := v.fwd[i]; s != "" {
			h[f.header] = []string{s}
		}
	}
	res.RateKey = v.rateKey
	if a.jwt.strip {
		delete(h, "Authorization")
	}
}

// bearer reads the token of `Authorization: Bearer` (RFC 6750 §2.1; the
// scheme is case-insensitive, RFC 9110 §11.1). Two Authorization fields
// are no token.
func bearer(h http.Header) (string, bool) {
	v := h["Authorization"]
	if len(v) != 1 {
		return "", false
	}
	s := v[0]
	if len(s) < 7 || !strings.EqualFold(s[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimLeft(s[7:], " ")
	return tok, tok != ""
}

// apiKeys looks keys up by their SHA-256. The map lookup compares hashes,
// not keys: timing reveals at most something about a hash of the guess,
// which says nothing about any stored key (no constant-time compare of the
// secret itself is needed, and none of the secret is held).
type apiKeys struct {
	header  string // canonical
	query   string
	forward bool
	byHash  map[[sha256.Size]byte]string
}

func compileAPIKeys(c *config.APIKeys) (*apiKeys, error) {
	k := &apiKeys{header: http.CanonicalHeaderKey(c.Header), query: c.Query, forward: c.Forward, byHash: map[[sha256.Size]byte]string{}}
	for _, key := range c.Keys {
		b, err := hex.DecodeString(strings.ToLower(key.SHA256))
		if err != nil || len(b) != sha256.Size {
			return nil, errBadHash
		}
		k.byHash[[sha256.Size]byte(b)] = key.Consumer
	}
	return k, nil
}

type authError string

func (e authError) Error() string { return string(e) }

const (
	errBadHash    = authError("api_keys: a sha256 is not 64 hex digits")
	errUnknownKey = authError("unknown API key")
)

// check returns true when the request presented an API key (then res says
// whether it was good) and false when it presented none.
func (k *apiKeys) check(r *http.Request, res *Result) bool {
	h := r.Header
	var key string
	fromQuery := false
	if v := h[k.header]; len(v) > 0 {
		key = v[0]
	} else if k.query != "" {
		key, fromQuery = queryValue(r.URL.RawQuery, k.query)
	}
	if key == "" && !fromQuery {
		res.Outcome = Unauthenticated
		return false
	}
	consumer, ok := k.byHash[sha256.Sum256([]byte(key))]
	if !ok {
		res.Outcome, res.Err = Invalid, errUnknownKey
		return true
	}
	res.Outcome, res.Consumer = Allowed, consumer
	if !k.forward {
		delete(h, k.header)
		if fromQuery {
			r.URL.RawQuery = withoutQuery(r.URL.RawQuery, k.query)
			res.URIChanged = true
		}
	}
	return true
}

// queryValue finds the first value of name in a raw query.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		uv, err := url.QueryUnescape(v)
		if err != nil {
			return "", true
		}
		return uv, true
	}
	return "", false
}

// withoutQuery removes every name= parameter from a raw query, keeping the
// others as they were written.
func withoutQuery(raw, name string) string {
	var b strings.Builder
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}
