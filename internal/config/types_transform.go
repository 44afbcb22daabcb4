package config

// Compression compresses a route's responses for clients that accept it
// (issue #8, docs/transform.md). The coding is negotiated from the request's
// Accept-Encoding: the highest q-value wins, ties go to the order of
// encodings, identity;q=0 and * are understood. A response is sent as the
// upstream sent it when it already has a Content-Encoding, when its
// Content-Type is not in content_types, when its body is smaller than
// min_size, for status 1xx, 204, 206 and 304, for HEAD, for Cache-Control:
// no-transform and for ranges (Content-Range). A compressed response loses
// Content-Length (or gets the compressed length when the whole body was
// compressed at once), gains Vary: Accept-Encoding, and a strong ETag turns
// weak. Compression is the outermost step of the route: a response cache
// stores the uncompressed representation.
type Compression struct {
	// Encodings are the content codings offered, in the order preferred
	// when the client gives them the same q-value: zstd, br, gzip.
	// Default: [zstd, br, gzip].
	Encodings []string `yaml:"encodings"`
	// MinSize is the smallest body compressed, in bytes: read from
	// Content-Length, or, without one, from the first bytes held back
	// until this many arrived (a response that flushes before then is
	// compressed: it is a stream). Default: 1024.
	MinSize int64 `yaml:"min_size"`
	// ContentTypes are the media types compressed: type/subtype exactly,
	// type/* for a whole type, +suffix for a structured syntax suffix
	// (+json matches application/problem+json). Default: [text/*,
	// application/json, application/javascript, application/xml,
	// image/svg+xml, +json, +xml].
	ContentTypes []string `yaml:"content_types"`
}

// BodyTransform changes JSON request and response bodies of a route (issue
// #8, docs/transform.md): fields are renamed, then removed, then set.
// Only bodies whose Content-Type is application/json or a +json type are
// read; others, bodies that are not valid JSON and bodies larger than
// max_bytes pass unchanged (a request larger than max_bytes is refused with
// 413 instead when refuse_oversized is set). Content-Length follows the new
// body. A transformed request body is held in memory and can be sent again
// on a retry.
type BodyTransform struct {
	// MaxBytes is the largest body transformed, in bytes. Default: 1048576.
	MaxBytes int64 `yaml:"max_bytes"`
	// RefuseOversized answers 413 to a JSON request body larger than
	// max_bytes instead of forwarding it untransformed. Default: false.
	RefuseOversized bool `yaml:"refuse_oversized"`
	// Request changes the body sent upstream.
	Request *JSONOps `yaml:"request"`
	// Response changes the body sent back to the client.
	Response *JSONOps `yaml:"response"`
}

// JSONOps are changes to a JSON document, applied rename, remove, set.
// A path is a dotted list of object keys (user.address.city); a segment
// that is a number indexes an array (items.0.id). A path that does not
// exist is left alone by rename and remove; set creates missing objects
// on its way.
type JSONOps struct {
	// Rename moves a field to another path.
	Rename []JSONRename `yaml:"rename"`
	// Remove deletes fields by path.
	Remove []string `yaml:"remove"`
	// Set puts a value at a path, replacing what was there.
	Set []JSONSet `yaml:"set"`
}

// JSONRename moves the value at from to to.
type JSONRename struct {
	// From is the path of the field to move.
	From string `yaml:"from"`
	// To is its new path.
	To string `yaml:"to"`
}

// JSONSet puts a value at a path: either value (a template, the result a
// JSON string) or json (a constant JSON value: a number, true, an object).
type JSONSet struct {
	// Path is where the value goes.
	Path string `yaml:"path"`
	// Value is a template, as header values are (see HeaderOps):
	// "{client_ip}", "{request_id}", "user-{path.id}". The result is a
	// JSON string.
	Value string `yaml:"value"`
	// JSON is a JSON value written as it is, e.g. "42", "true",
	// '{"a":[1,2]}'.
	JSON string `yaml:"json"`
}
