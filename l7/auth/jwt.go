package auth

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// JWT checks bearer tokens for one route.
type JWT struct {
	issuer    string
	audiences []string
	leeway    time.Duration
	algs      []jose.SignatureAlgorithm // what ParseSignedCompact accepts at all
	static    *keySet
	remote    *Remote
	required  [][]string // claim paths
	matchers  []claimMatcher
	forward   []forwardClaim
	strip     bool
	// needAll: a claim other than the registered ones is read, so the
	// payload is decoded a second time into a map.
	needAll   bool
	rateClaim []string
	cache     *tokenCache
}

type claimMatcher struct {
	path     []string
	equals   string
	contains string
}

type forwardClaim struct {
	path   []string
	header string // canonical
}

// Token errors. They are logged at debug level only: the client learns
// nothing beyond "invalid_token" (RFC 6750 §3.1).
var (
	ErrMalformed      = errors.New("malformed token")
	ErrForbiddenHdr   = errors.New("token header carries a key, a key location or a critical extension")
	ErrUnknownKey     = errors.New("no key for the token's kid and algorithm")
	ErrSignature      = errors.New("bad signature")
	ErrExpired        = errors.New("token expired")
	ErrNotYetValid    = errors.New("token not yet valid")
	ErrIssuedInFuture = errors.New("token issued in the future")
	ErrIssuer         = errors.New("wrong issuer")
	ErrAudience       = errors.New("wrong audience")
	ErrMissingClaim   = errors.New("a required claim is missing")
	ErrClaimMismatch  = errors.New("a claim condition failed")
)

func compileJWT(c *config.JWT, reg *Registry, rateClaim string) (*JWT, error) {
	j := &JWT{
		issuer:    c.Issuer,
		audiences: c.Audiences,
		leeway:    c.Leeway.D(),
		strip:     c.StripAuthorization,
		cache:     newTokenCache(),
	}
	var allowed []jose.SignatureAlgorithm
	for _, a := range c.Algorithms {
		allowed = append(allowed, jose.SignatureAlgorithm(a))
	}
	if len(allowed) > 0 {
		j.algs = allowed
	} else {
		for _, a := range config.JWTAlgorithms {
			j.algs = append(j.algs, jose.SignatureAlgorithm(a))
		}
	}
	fallback := config.JWKSFallbackAlgorithms(c.Algorithms)
	var vks []config.VerifyKey
	for i, k := range c.Keys {
		vk, err := config.ParseJWTKey(k)
		if err != nil {
			return nil, fmt.Errorf("jwt.keys[%d]: %w", i, err)
		}
		vks = append(vks, vk)
	}
	if c.JWKSFile != "" {
		b, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwt.jwks_file: %w", err)
		}
		fk, _, err := config.ParseJWKS(b, true, fallback)
		if err != nil {
			return nil, fmt.Errorf("jwt.jwks_file: %w", err)
		}
		vks = append(vks, fk...)
	}
	j.static = newKeySet(vks, allowed)
	if c.JWKS != nil {
		j.remote = reg.remote(*c.JWKS, fallback, allowed)
	}
	for _, name := range c.RequiredClaims {
		j.required = append(j.required, claimPath(name))
	}
	for _, m := range c.Claims {
		j.matchers = append(j.matchers, claimMatcher{path: claimPath(m.Name), equals: m.Equals, contains: m.Contains})
	}
	for _, f := range c.ForwardClaims {
		j.forward = append(j.forward, forwardClaim{path: claimPath(f.Claim), header: http.CanonicalHeaderKey(f.Header)})
	}
	if rateClaim != "" {
		j.rateClaim = claimPath(rateClaim)
	}
	j.needAll = len(j.required) > 0 || len(j.matchers) > 0 || len(j.forward) > 0 || j.rateClaim != nil
	return j, nil
}

func claimPath(name string) []string { return strings.Split(name, ".") }

// registered are the claims every check reads (RFC 7519 §4.1).
type registered struct {
	Iss string          `json:"iss"`
	Sub json.RawMessage `json:"sub"`
	Aud audience        `json:"aud"`
	Exp *json.Number    `json:"exp"`
	Nbf *json.Number    `json:"nbf"`
	Iat *json.Number    `json:"iat"`
}

// audience is a string or a list of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// verifiedToken is what a token whose signature, issuer and audience
// checked out tells the rest of the request, computed once per token (see
// tokenCache): its time claims, checked on every use, and the values the
// route reads from its claims.
type verifiedToken struct {
	exp, nbf, iat  float64
	hasNbf, hasIat bool
	subject        string
	fwd            []string // per forward_claims entry; "" when absent
	rateKey        string
	// err is nil, ErrMissingClaim (invalid) or ErrClaimMismatch (forbidden).
	err error
	// set is the remote key set in force when the token was verified: a
	// refresh (a rotated or revoked key) invalidates the cached result.
	set *remoteSet
	// size is what the entry holds in memory, roughly, for the cache.
	size int
}

// verify checks a token. A nil error means it is valid; ErrClaimMismatch
// means valid but not allowed here (403). A token verified before is
// taken from the cache, and only its time claims are checked again.
func (j *JWT) verify(ctx context.Context, token string, now time.Time) (*verifiedToken, error) {
	var set *remoteSet
	if j.remote != nil {
		set = j.remote.cur.Load()
	}
	if vt := j.cache.get(token, set); vt != nil && (set == nil || j.remote.keys(now) != nil) {
		if err := j.checkTimes(vt, now); err != nil {
			return nil, err
		}
		return vt, vt.err
	}
	vt, err := j.verifySlow(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if j.remote != nil {
		// The set the key came from; if a fetch happened meanwhile the
		// entry is merely dropped at its next use.
		vt.set = set
	}
	// Kept even when its time is up: a client retrying with an expired
	// token costs a lookup, not a signature check (expired entries are
	// the first the cache drops).
	j.cache.put(token, vt, now)
	if err := j.checkTimes(vt, now); err != nil {
		return nil, err
	}
	return vt, vt.err
}

func (j *JWT) verifySlow(ctx context.Context, token string, now time.Time) (*verifiedToken, error) {
	jws, err := jose.ParseSignedCompact(token, j.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	h := jws.Signatures[0].Header
	if err := checkHeader(h); err != nil {
		return nil, err
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	payload, err := j.verifySignature(ctx, jws, h.KeyID, alg, now)
	if err != nil {
		return nil, err
	}
	var reg registered
	if err := json.Unmarshal(payload, &reg); err != nil {
		return nil, ErrMalformed
	}
	vt := &verifiedToken{size: len(token) + 256}
	if err := j.checkRegistered(&reg, vt); err != nil {
		return nil, err
	}
	if len(reg.Sub) > 0 && reg.Sub[0] == '"' {
		json.Unmarshal(reg.Sub, &vt.subject)
		vt.subject = headerSafe(vt.subject)
	}
	if !j.needAll {
		return vt, nil
	}
	var all map[string]any
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if err := d.Decode(&all); err != nil {
		return nil, ErrMalformed
	}
	for _, p := range j.required {
		if lookupClaim(all, p) == nil {
			vt.err = ErrMissingClaim
			return vt, nil
		}
	}
	for _, m := range j.matchers {
		if !m.match(lookupClaim(all, m.path)) {
			vt.err = ErrClaimMismatch
			return vt, nil
		}
	}
	if len(j.forward) > 0 {
		vt.fwd = make([]string, len(j.forward))
		for i, f := range j.forward {
			if c := lookupClaim(all, f.path); c != nil {
				vt.fwd[i] = claimString(c)
				vt.size += len(vt.fwd[i])
			}
		}
	}
	if j.rateClaim != nil {
		if c := lookupClaim(all, j.rateClaim); c != nil {
			vt.rateKey = claimString(c)
			vt.size += len(vt.rateKey)
		}
	}
	return vt, nil
}

// checkHeader refuses what would let a token choose its own key or bind us
// to an extension we do not implement: an embedded jwk, jku/x5u (RFC 7515
// §4.1.2, §4.1.5: keys fetched from where the token says), x5c, and any
// crit (RFC 7515 §4.1.11: a recipient must refuse critical extensions it
// does not understand, and we understand none).
func checkHeader(h jose.Header) error {
	if h.JSONWebKey != nil {
		return ErrForbiddenHdr
	}
	for _, k := range []jose.HeaderKey{"jku", "x5u", "x5c", "crit", "jwk", "b64"} {
		if _, ok := h.ExtraHeaders[k]; ok {
			return ErrForbiddenHdr
		}
	}
	if _, err := h.Certificates(x509VerifyNone); !errors.Is(err, jose.ErrMissingX5cHeader) {
		return ErrForbiddenHdr
	}
	return nil
}

// verifySignature finds the keys the token may be signed with (by kid,
// with the token's algorithm among the key's own) and verifies. An unknown
// kid refreshes a remote set, rate-limited.
func (j *JWT) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, kid string, alg jose.SignatureAlgorithm, now time.Time) ([]byte, error) {
	var remote *keySet
	if j.remote != nil {
		remote = j.remote.keys(now)
	}
	cands := j.static.candidates(kid)
	more := remote.candidates(kid)
	if kid != "" && len(cands) == 0 && len(more) == 0 {
		if j.remote != nil {
			j.remote.RefreshForKID(ctx)
			remote = j.remote.keys(time.Now())
			more = remote.candidates(kid)
		}
		if len(more) == 0 {
			// Keys configured without a kid verify any kid.
			cands, more = j.static.unnamed(), remote.unnamed()
		}
	}
	tried := false
	for _, set := range [2][]*key{cands, more} {
		for _, k := range set {
			if !k.allows(alg) {
				continue
			}
			tried = true
			if payload, err := jws.Verify(k.pub); err == nil {
				return payload, nil
			}
		}
	}
	if !tried {
		return nil, ErrUnknownKey
	}
	return nil, ErrSignature
}

// checkRegistered reads exp, nbf and iat into vt and checks iss and aud,
// which do not change with time.
func (j *JWT) checkRegistered(c *registered, vt *verifiedToken) error {
	if c.Exp == nil {
		return ErrMissingClaim
	}
	var ok bool
	if vt.exp, ok = numericDate(c.Exp); !ok {
		return ErrMalformed
	}
	if c.Nbf != nil {
		if vt.nbf, ok = numericDate(c.Nbf); !ok {
			return ErrMalformed
		}
		vt.hasNbf = true
	}
	if c.Iat != nil {
		if vt.iat, ok = numericDate(c.Iat); !ok {
			return ErrMalformed
		}
		vt.hasIat = true
	}
	if c.Iss != j.issuer {
		return ErrIssuer
	}
	for _, want := range j.audiences {
		for _, got := range c.Aud {
			if got == want {
				return nil
			}
		}
	}
	return ErrAudience
}

// checkTimes checks exp, nbf and iat against now, with the leeway.
func (j *JWT) checkTimes(vt *verifiedToken, now time.Time) error {
	lw := j.leeway.Seconds()
	t := float64(now.UnixNano()) / 1e9
	switch {
	case t > vt.exp+lw:
		return ErrExpired
	case vt.hasNbf && t < vt.nbf-lw:
		return ErrNotYetValid
	case vt.hasIat && t < vt.iat-lw:
		return ErrIssuedInFuture
	}
	return nil
}

var x509VerifyNone = x509.VerifyOptions{}

func numericDate(n *json.Number) (float64, bool) {
	f, err := strconv.ParseFloat(string(*n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func lookupClaim(m map[string]any, path []string) any {
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = obj[p]; !ok {
			return nil
		}
	}
	return cur
}

func (m *claimMatcher) match(v any) bool {
	if v == nil {
		return false
	}
	if m.equals != "" {
		s, ok := scalarString(v)
		return ok && s == m.equals
	}
	switch x := v.(type) {
	case string:
		for _, w := range strings.Fields(x) {
			if w == m.contains {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if s, ok := scalarString(e); ok && s == m.contains {
				return true
			}
		}
	}
	return false
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// claimString renders a claim for a request header: strings as they are,
// numbers and booleans as written, lists of strings joined by spaces,
// anything else as compact JSON. Control characters never reach a header.
func claimString(v any) string {
	if s, ok := scalarString(v); ok {
		return headerSafe(s)
	}
	if l, ok := v.([]any); ok {
		parts := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				parts = nil
				break
			}
			parts = append(parts, s)
		}
		if parts != nil {
			return headerSafe(strings.Join(parts, " "))
		}
	}
	b, _ := json.Marshal(v)
	return headerSafe(string(b))
}

func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}
