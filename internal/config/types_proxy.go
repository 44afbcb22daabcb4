package config

// L7 is the HTTP proxy.
type L7 struct {
	// Listeners accept client connections.
	Listeners []Listener `yaml:"listeners"`
	// Routes map requests to pools. The most specific route wins, compared
	// in this order: host (exact, then the longest wildcard, then none), path
	// (exact, then the longest prefix, then none), methods (a list, then
	// none); ties go to the route written first. A route whose host and path
	// match but whose methods do not is skipped, and the next one is tried;
	// when none is left, the answer is 405 with an Allow header.
	Routes []Route `yaml:"routes"`
	// Pools are sets of upstream endpoints.
	Pools []Pool `yaml:"pools"`
	// TrustedProxies are the addresses and CIDR prefixes (10.0.0.0/8,
	// 192.0.2.7) of proxies in front of this one. Only a request whose
	// peer is one of them keeps its incoming X-Forwarded-For and Forwarded
	// headers (this hop is appended); from anyone else they are replaced,
	// so a client cannot forge its address. Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Via adds a Via header (RFC 9110 §7.6.3) with this pseudonym to
	// requests and responses, e.g. "portcullis". Default: none (no header,
	// as HAProxy and nginx).
	Via string `yaml:"via"`
	// RequestIDHeader carries the request id: kept when a request has one,
	// generated when it does not, sent upstream and written to the access
	// log. Default: X-Request-Id.
	RequestIDHeader string `yaml:"request_id_header"`
	// EchoRequestID also returns the request id to the client in the same
	// header. Costs two small allocations per request. Default: false.
	EchoRequestID bool `yaml:"echo_request_id"`
	// AccessLog writes one JSON line per request.
	AccessLog AccessLog `yaml:"access_log"`
}

// AccessLog is the proxy's per-request log.
type AccessLog struct {
	// Enabled switches the access log on. Default: false.
	Enabled bool `yaml:"enabled"`
	// Path is the file to append to; "stdout" or "stderr" for those
	// streams. Default: stdout.
	Path string `yaml:"path"`
	// Buffer is about how many lines (counted as 512 bytes each) may wait
	// for the writer, which writes every 100 ms. A request never waits for
	// the disk: when the buffer is full the line is dropped and counted
	// (portcullis_http_access_log_dropped_total). Default: 4096 (2 MiB).
	Buffer int `yaml:"buffer"`
}
