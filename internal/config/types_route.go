package config

// Route sends matching requests to a pool. Among the routes of a listener the
// most specific match wins, compared key by key in this order:
//
//  1. host: an exact host, then wildcards (the longest suffix first), then
//     routes without hosts; a route listing several hosts ranks by the one
//     that matched;
//  2. path kind: path (exact), then path_template (more literal characters
//     first, then more segments), then path_prefix (the longest first), then
//     path_regex (the longest expression first), then routes without a path;
//  3. the number of header and query conditions (more first);
//  4. methods: a route listing methods before one that takes any;
//  5. the order in the file.
//
// A route whose host, path, headers and query match but whose methods do not
// is skipped and the next one tried; when none is left the answer is 405 with
// an Allow header listing the methods that would have matched. A route with
// versioning that matches but names a version it does not serve ends the
// search: the answer is 404 with a JSON body listing the versions it serves.
// The path is matched decoded (%2F is /); a path with dot segments (/a/../b)
// is matched and forwarded in its cleaned form.
type Route struct {
	// Name is unique among routes; it labels metrics and access logs.
	Name string `yaml:"name"`
	// Listeners restricts the route to these listeners. Default: all.
	Listeners []string `yaml:"listeners"`
	// Match selects requests. An empty match takes everything.
	Match Match `yaml:"match"`
	// Pool receives the matched requests. Required unless every version of
	// versioning names its own pool, or the route has aggregate.
	Pool string `yaml:"pool"`
	// Versioning picks the pool by API version, read from the URL or headers.
	Versioning *Versioning `yaml:"versioning"`
	// Rewrite changes the path and host of the request sent upstream.
	Rewrite *Rewrite `yaml:"rewrite"`
	// RequestHeaders changes the headers sent upstream. Values are
	// templates, see HeaderOps.
	RequestHeaders *HeaderOps `yaml:"request_headers"`
	// ResponseHeaders changes the headers sent back to the client.
	ResponseHeaders *HeaderOps `yaml:"response_headers"`
	// CORS answers cross-origin requests; preflights never reach the pool.
	CORS *CORS `yaml:"cors"`
	// JWT requires a valid JSON Web Token (after CORS preflights).
	JWT *JWT `yaml:"jwt"`
	// APIKeys requires an API key (after CORS preflights).
	APIKeys *APIKeys `yaml:"api_keys"`
	// RateLimit limits requests per key: before authentication when keyed
	// by client_ip, header:NAME or route (so invented credentials are
	// limited before each costs a check), after it when keyed by consumer
	// or claim:NAME.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxBodyBytes limits the request body, in bytes. A request whose
	// Content-Length is larger gets 413 before any of it is read and
	// before an upstream is contacted; a body without a length (chunked,
	// or HTTP/2 and HTTP/3 without content-length) that grows past it
	// aborts the upstream exchange and gets 413 (or, when the upstream
	// has already answered, a cut response). 0 is the listener's
	// max_body_bytes (a route may set more or less than its listener).
	// See docs/security.md "Limits". Default: 0.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Compression compresses responses (gzip, br, zstd) for clients that
	// accept it; the outermost step of the route. See docs/transform.md.
	Compression *Compression `yaml:"compression"`
	// BodyTransform renames, removes and sets fields of JSON request and
	// response bodies. See docs/transform.md.
	BodyTransform *BodyTransform `yaml:"body_transform"`
	// Cache keeps responses the route's upstream allows a shared cache to
	// store and answers from them (RFC 9111). See docs/cache.md.
	Cache *Cache `yaml:"cache"`
	// Aggregate answers from several upstream calls made in parallel,
	// their JSON responses merged; such a route has no pool of its own.
	// See docs/transform.md "Response aggregation".
	Aggregate *Aggregate `yaml:"aggregate"`
}

// Match selects requests; every condition given must hold. At most one of
// path, path_prefix, path_regex and path_template is set.
type Match struct {
	// Hosts are exact host names or wildcards (*.example.com matches
	// a.example.com and a.b.example.com, not example.com); case and the port
	// are ignored.
	Hosts []string `yaml:"hosts"`
	// Path matches the path exactly.
	Path string `yaml:"path"`
	// PathPrefix matches a path prefix on segment boundaries ("/api" matches
	// /api and /api/x, not /apix).
	PathPrefix string `yaml:"path_prefix"`
	// PathRegex is an RE2 regular expression matched against the whole path
	// (it is anchored at both ends). Named groups, (?P<id>[0-9]+), become
	// {path.id} in templates and ${id} in rewrite.path_replacement.
	PathRegex string `yaml:"path_regex"`
	// PathTemplate matches the whole path segment by segment; a segment
	// written {name} matches any one non-empty segment and becomes
	// {path.name} in templates, and a last segment written {name...}
	// matches the rest of the path (one or more segments). Example:
	// /users/{id}/orders/{order}. At most 16 parameters.
	PathTemplate string `yaml:"path_template"`
	// Methods are HTTP methods, upper case. Default: any.
	Methods []string `yaml:"methods"`
	// Headers are request header conditions.
	Headers []HeaderMatch `yaml:"headers"`
	// Query are query parameter conditions.
	Query []QueryMatch `yaml:"query"`
}

// HeaderMatch is one request header condition. With neither value, regex nor
// absent, the header only has to be present. A header sent several times
// matches when any of its values does.
type HeaderMatch struct {
	// Name is the header name (case does not matter).
	Name string `yaml:"name"`
	// Value is the exact value required.
	Value string `yaml:"value"`
	// Regex is an RE2 expression the whole value must match (anchored).
	Regex string `yaml:"regex"`
	// Absent requires the header not to be sent at all.
	Absent bool `yaml:"absent"`
}

// QueryMatch is one query parameter condition. Without a value the parameter
// only has to be present (?debug and ?debug=1 both match).
type QueryMatch struct {
	// Name is the parameter name, case-sensitive.
	Name string `yaml:"name"`
	// Value is the exact (decoded) value required.
	Value string `yaml:"value"`
}

// Versioning selects an API version per request and with it the pool.
// The version is read from the sources in order; the first source that
// carries a version decides, even when that version is unknown (then the
// answer is 404 listing the supported versions). With no version in any
// source, the default is used; without a default that is a 404 too.
type Versioning struct {
	// Versions are the versions this route serves.
	Versions []APIVersion `yaml:"versions"`
	// Sources are where the version is read, in order: url (a path segment
	// "v" + version, right after match.path_prefix, or the first segment
	// when the route has no path condition, or the {version} parameter of
	// match.path_template), header:NAME (the whole header value, e.g.
	// header:Accept-Version or header:X-API-Version; a leading v is
	// ignored), media_type (the version parameter of the Accept header, as
	// in Accept: application/vnd.acme+json; version=2). Default: [url].
	Sources []string `yaml:"sources"`
	// Default is the version for requests that name none. Default: none (such
	// requests get 404).
	Default string `yaml:"default"`
	// StripPrefix removes the version segment from the path sent upstream
	// when the version was read from the URL (/api/v2/users → /api/users).
	// Default: false.
	StripPrefix bool `yaml:"strip_prefix"`
}

// APIVersion is one version a route serves.
type APIVersion struct {
	// Name is the version as clients write it, without the v: "2", "2.1",
	// "beta". In the URL it is written v2, v2.1, vbeta.
	Name string `yaml:"name"`
	// Pool receives this version's requests. Default: the route's pool.
	Pool string `yaml:"pool"`
}

// Rewrite changes the request sent upstream. The steps run in this order:
// versioning's strip_prefix, strip_prefix, path_regex/path_replacement, host.
// The result always starts with /.
type Rewrite struct {
	// StripPrefix removes this prefix from the path on a segment boundary
	// ("/api" turns /api/users into /users and /api into /); a path without
	// the prefix is left alone.
	StripPrefix string `yaml:"strip_prefix"`
	// PathRegex is an RE2 expression; every match in the path is replaced by
	// path_replacement.
	PathRegex string `yaml:"path_regex"`
	// PathReplacement replaces path_regex matches; $1 or ${1} is a numbered
	// group, ${name} a named one (write ${1}x rather than $1x).
	PathReplacement string `yaml:"path_replacement"`
	// Host replaces the Host header sent upstream. A template (see
	// HeaderOps), e.g. "{path.tenant}.internal". Default: the client's host.
	Host string `yaml:"host"`
}

// HeaderOps changes headers: remove first, then set, then add. Values are
// templates: {client_ip}, {host} (the request's host without port), {path}
// (the request's path), {path.NAME} (a path_template parameter or a
// path_regex named group), {version} (the API version), {header.NAME} (the
// first value of a request header), {query.NAME} (a query parameter),
// {request_id} (the X-Request-Id header, which the proxy sets when the
// client did not), {route} (the route's name). Write {{ for a literal {.
// A placeholder with no value becomes empty.
type HeaderOps struct {
	// Add appends values, keeping those already present.
	Add []HeaderValue `yaml:"add"`
	// Set replaces every value of the header.
	Set []HeaderValue `yaml:"set"`
	// Remove deletes headers by name.
	Remove []string `yaml:"remove"`
}

// HeaderValue is a header name and a templated value.
type HeaderValue struct {
	// Name is the header name.
	Name string `yaml:"name"`
	// Value is a template, e.g. "{client_ip}" or "user-{path.id}".
	Value string `yaml:"value"`
}
