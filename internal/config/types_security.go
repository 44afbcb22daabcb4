package config

// JWT requires a signed JSON Web Token (RFC 7519) in `Authorization: Bearer`
// on the route's requests. The signature is checked against the configured
// keys only, and the algorithm is the key's: a token's own "alg" header
// must equal it, so "alg: none", an HS token signed with an RSA public key
// as its secret and any other algorithm switch are refused. Tokens that
// carry a key or a key location (jwk, jku, x5u, x5c headers) or a critical
// ("crit") extension are refused. A token failing any check gets 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`; a valid token that fails
// a claim condition gets 403 (error="insufficient_scope"). See
// docs/security.md.
type JWT struct {
	// Issuer is the "iss" the token must carry, exactly. Required.
	Issuer string `yaml:"issuer"`
	// Audiences are the accepted "aud" values: the token's aud (a string
	// or a list) must contain one of them. Required.
	Audiences []string `yaml:"audiences"`
	// Algorithms narrows the accepted algorithms further (RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384,
	// HS512): a key whose algorithm is not listed is not used. Default: every
	// key's own algorithm.
	Algorithms []string `yaml:"algorithms"`
	// Keys are verification keys written in the config (or in files it
	// names).
	Keys []JWTKey `yaml:"keys"`
	// JWKSFile is a JSON Web Key Set file (RFC 7517 §5), read at load.
	JWKSFile string `yaml:"jwks_file"`
	// JWKS is a remote JSON Web Key Set fetched over HTTP(S), cached and
	// refreshed in the background.
	JWKS *RemoteJWKS `yaml:"jwks"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default: 30s.
	Leeway Duration `yaml:"leeway"`
	// RequiredClaims are claims the token must carry (any value); a token
	// without one is invalid (401). exp is always required.
	RequiredClaims []string `yaml:"required_claims"`
	// Claims are authorization conditions on the token's claims, all of
	// which must hold; a valid token that fails one gets 403.
	Claims []ClaimMatch `yaml:"claims"`
	// ForwardClaims copy claims into request headers sent upstream. A
	// client's own header of that name is always removed first, so the
	// upstream can trust it.
	ForwardClaims []ForwardClaim `yaml:"forward_claims"`
	// StripAuthorization removes the Authorization header before the
	// request goes upstream. Default: false (forwarded).
	StripAuthorization bool `yaml:"strip_authorization"`
}

// JWTKey is one verification key. Set exactly one of jwk, pem, pem_file,
// secret and secret_file.
type JWTKey struct {
	// KID is the key id. A token that names a kid is checked only against
	// the keys with that kid; a token without one against every key of its
	// algorithm. Default: the JWK's kid.
	KID string `yaml:"kid"`
	// Algorithm is the only algorithm this key verifies. Required for pem,
	// pem_file, secret and secret_file, and for an RSA JWK without "alg"
	// (EC and Ed25519 keys imply theirs: ES256 for P-256, ES384 for P-384,
	// ES512 for P-521, EdDSA for Ed25519).
	Algorithm string `yaml:"algorithm"`
	// JWK is a public JSON Web Key, written inline as JSON.
	JWK string `yaml:"jwk"`
	// PEM is a public key ("PUBLIC KEY", PKIX) or a certificate, inline.
	PEM string `yaml:"pem"`
	// PEMFile is a file holding what PEM would.
	PEMFile string `yaml:"pem_file"`
	// Secret is an HMAC secret (HS256/384/512), at least as long as the hash
	// (32, 48, 64 bytes). Prefer secret_file so the config can be shared
	// without it; the admin API redacts it.
	Secret string `yaml:"secret"`
	// SecretFile holds the HMAC secret (a trailing newline is ignored).
	SecretFile string `yaml:"secret_file"`
}

// RemoteJWKS is a JSON Web Key Set served by an identity provider. It is
// fetched when the config is applied and then every refresh_interval; a
// token naming a kid that is not in the cached set triggers a fetch at once,
// at most once per min_refresh_interval. When a fetch fails the cached set
// keeps serving (stale-if-error) for max_stale after the last success, then
// tokens are refused until a fetch succeeds again.
type RemoteJWKS struct {
	// URL is the JWKS address (http or https). Required.
	URL string `yaml:"url"`
	// RefreshInterval is how often the set is fetched again. Default: 5m.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// MinRefreshInterval is the least time between two fetches: it bounds
	// the fetches that tokens with unknown kids can cause, and is the retry
	// delay after a failed fetch. Default: 30s.
	MinRefreshInterval Duration `yaml:"min_refresh_interval"`
	// Timeout bounds one fetch. Default: 5s.
	Timeout Duration `yaml:"timeout"`
	// MaxStale is how long the last fetched set is still used while fetches
	// fail. Default: 24h.
	MaxStale Duration `yaml:"max_stale"`
}

// ClaimMatch is one condition on a claim. name may be a dotted path into
// nested objects (realm_access.roles). Set one of equals and contains.
type ClaimMatch struct {
	// Name is the claim.
	Name string `yaml:"name"`
	// Equals requires the claim (a string, number or boolean, compared as
	// written) to be this value.
	Equals string `yaml:"equals"`
	// Contains requires a list claim to have this element, or a string
	// claim to have it as one of its space-separated words (the OAuth
	// "scope" form, RFC 8693 §4.2): contains: orders:read.
	Contains string `yaml:"contains"`
}

// ForwardClaim sends a claim's value upstream in a request header. Strings
// go as they are, numbers and booleans as written, lists of strings joined
// by spaces, anything else as compact JSON. An absent claim sends no header.
type ForwardClaim struct {
	// Claim is the claim name (a dotted path for nested objects).
	Claim string `yaml:"claim"`
	// Header is the request header to set, e.g. X-User-Id.
	Header string `yaml:"header"`
}

// APIKeys requires an API key in a header or a query parameter. Keys are
// stored as SHA-256 hashes, so the config holds no usable secret; a key maps
// to a consumer name used by rate_limit (key: consumer) and in the access
// log. A missing or unknown key gets 401. When a route also has jwt, a
// request presenting an API key is authenticated by it, any other by its
// token.
type APIKeys struct {
	// Header is the request header carrying the key. Default: X-API-Key.
	Header string `yaml:"header"`
	// Query is a query parameter carrying the key, tried when the header is
	// absent. Default: none (header only).
	Query string `yaml:"query"`
	// Keys are the accepted keys.
	Keys []APIKey `yaml:"keys"`
	// Forward sends the key upstream. Default: false: the header (and the
	// query parameter) are removed before forwarding.
	Forward bool `yaml:"forward"`
}

// APIKey is one accepted key: `printf %s KEY | sha256sum` gives its hash.
type APIKey struct {
	// Consumer names who holds the key (letters, digits, '.', '_', '-').
	Consumer string `yaml:"consumer"`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `yaml:"sha256"`
}

// CORS answers cross-origin requests for the route (the Fetch standard's
// CORS protocol). Preflights (OPTIONS with Origin and
// Access-Control-Request-Method) are answered by the proxy and never reach
// the pool; every other response of the route carries the CORS headers for
// an allowed origin, and `Vary: Origin` unless allowed_origins is "*".
type CORS struct {
	// AllowedOrigins are exact origins (https://app.example.com), patterns
	// with one * standing for one or more host labels
	// (https://*.example.com), or "*" for any origin (not with
	// allow_credentials). Required.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods may be used cross-origin. Default: GET, HEAD, POST.
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders are request headers a preflight may ask for (case does
	// not matter); "*" allows any (not with allow_credentials). Default:
	// none beyond the CORS-safelisted ones.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposeHeaders are response headers the page's script may read.
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials lets the browser send cookies and Authorization and
	// read the answer. Default: false.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long a browser may cache a preflight answer. Default: 0
	// (no Access-Control-Max-Age: the browser's default, 5s).
	MaxAge Duration `yaml:"max_age"`
}

// RateLimit is a token bucket per key: requests tokens are added every per,
// up to burst; a request takes one. A request finding the bucket empty gets
// 429 with Retry-After. Every response of the route carries RateLimit-Limit
// (burst), RateLimit-Remaining and RateLimit-Reset (seconds until the bucket
// is full again). Buckets live in this node's memory (not shared with
// peers); one idle long enough to be full is dropped, and at most max_keys
// are kept.
type RateLimit struct {
	// Requests is how many tokens are added per period. Required, at least 1.
	Requests int `yaml:"requests"`
	// Per is the period. Default: 1s.
	Per Duration `yaml:"per"`
	// Burst is the bucket's size: the requests allowed at once. Default:
	// requests.
	Burst int `yaml:"burst"`
	// Key is what a bucket belongs to: client_ip (after
	// l7.trusted_proxies), header:NAME (the header's value), consumer (the
	// API key's consumer, or the JWT's sub), claim:NAME (a JWT claim) or
	// route (one bucket for the whole route). Requests that lack the key
	// share one bucket. Default: client_ip.
	Key string `yaml:"key"`
	// MaxKeys bounds the buckets kept; beyond it, some buckets are dropped
	// (a dropped bucket starts full again). Default: 100000.
	MaxKeys int `yaml:"max_keys"`
	// Scope is local (each node enforces the limit on its own: with N
	// nodes serving the route a client can get N times the limit) or
	// cluster (the nodes of the cluster share their counts over the
	// encrypted gossip every 100ms, so the limit holds across them, with
	// the error bound of docs/security.md "Cluster-wide rate limits").
	// cluster needs a cluster section, and the same route name and limit
	// on every node. Default: local.
	Scope string `yaml:"scope"`
}

// Rate limit scopes (RateLimit.Scope).
const (
	RateLimitScopeLocal   = "local"
	RateLimitScopeCluster = "cluster"
)
