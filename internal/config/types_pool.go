package config

// Pool is a set of upstream endpoints, how requests are spread over them and
// how the proxy talks to them.
type Pool struct {
	// Name is unique among pools.
	Name string `yaml:"name"`
	// Algorithm chooses an endpoint per request: round_robin (smooth
	// weighted: weights 5,1,1 give a a b a c a a), random (weighted),
	// least_request (two weighted random choices, the one with fewer
	// requests in flight per unit of weight wins), consistent_hash (Maglev
	// on the hash key: a key stays on its endpoint while that endpoint is
	// up, and removing one of N endpoints moves about 1/N of the keys) or
	// sticky (a cookie pins a client to an endpoint; see sticky).
	// Default: round_robin.
	Algorithm string `yaml:"algorithm"`
	// Endpoints are host:port of upstream servers.
	Endpoints []Endpoint `yaml:"endpoints"`
	// Protocol is how the proxy speaks to the endpoints: http1 (HTTP/1.1,
	// over TLS when tls is enabled), h2 (HTTP/2 over TLS; needs tls) or h2c
	// (HTTP/2 in cleartext, prior knowledge). Default: http1.
	Protocol string `yaml:"protocol"`
	// TLS encrypts the connections to the endpoints.
	TLS *UpstreamTLS `yaml:"tls"`
	// Timeouts bound each attempt.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxIdlePerEndpoint is how many idle keep-alive connections are kept
	// per endpoint. Default: 128.
	MaxIdlePerEndpoint int `yaml:"max_idle_per_endpoint"`
	// MaxConcurrent is the circuit breaker: at most this many requests in
	// flight per endpoint. A full endpoint is skipped; when every endpoint
	// is full the client gets 503 with Retry-After. Default: 0 (no limit).
	MaxConcurrent int `yaml:"max_concurrent"`
	// Retries sends a failed attempt to another endpoint.
	Retries Retries `yaml:"retries"`
	// Outlier ejects endpoints that keep failing (passive health checking).
	Outlier Outlier `yaml:"outlier"`
	// Hash is the key of algorithm consistent_hash.
	Hash *Hash `yaml:"hash"`
	// Sticky is the cookie of algorithm sticky.
	Sticky *Sticky `yaml:"sticky"`
}

// Endpoint is one upstream server.
type Endpoint struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Weight is the relative share of requests, 1-65535. Default: 1.
	Weight int `yaml:"weight"`
}

// UpstreamTLS is TLS from the proxy to the endpoints. Certificates are
// verified against the system roots unless ca_file pins others; turning
// verification off takes insecure_skip_verify: true, written out.
type UpstreamTLS struct {
	// Enabled turns TLS on. Default: false. The other keys need it.
	Enabled bool `yaml:"enabled"`
	// ServerName is sent as SNI and checked against the certificate.
	// Default: the endpoint's host.
	ServerName string `yaml:"server_name"`
	// CAFile is a PEM bundle of the only CAs trusted for the endpoints
	// (pinning); the system roots are then not used. Default: none (system
	// roots).
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any certificate. For tests only; it
	// cannot be combined with ca_file. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Timeouts bound one attempt at an endpoint. 0 disables a timeout where the
// default says so.
type Timeouts struct {
	// Connect bounds the TCP (and TLS) handshake. Default: 5s.
	Connect Duration `yaml:"connect"`
	// ResponseHeader bounds the wait for the response headers once the
	// request is sent. Default: 60s.
	ResponseHeader Duration `yaml:"response_header"`
	// Idle closes keep-alive connections unused this long. Default: 90s.
	Idle Duration `yaml:"idle"`
	// Total bounds a whole attempt, body included. Default: 0 (none, so
	// that streams and WebSockets can live long).
	Total Duration `yaml:"total"`
}

// Retries resends a failed request to another endpoint. Only idempotent
// requests, and requests whose body was small and fully buffered, are
// retried. Retries are also capped by a budget so that retries cannot
// multiply the load of an upstream that is already failing: a retry is
// allowed while the retries in flight stay within budget_percent of all
// requests in flight to the pool, or while fewer than min_retries retries
// are in flight.
type Retries struct {
	// Attempts is how many times a request is retried after its first
	// attempt, 0-10. Default: 2.
	Attempts *int `yaml:"attempts"`
	// On lists the failures that are retried: connect-failure (no
	// connection could be made), refused-stream (HTTP/2 REFUSED_STREAM or a
	// GOAWAY before the stream was processed), reset (the connection or
	// stream was reset before a response), gateway-error (502, 503, 504),
	// 5xx (any 5xx status). Default: [connect-failure, refused-stream], the
	// failures where the upstream is known not to have processed the
	// request.
	On []string `yaml:"on"`
	// BudgetPercent is the share of requests in flight that may be
	// retries, 0-100. Default: 20.
	BudgetPercent *int `yaml:"budget_percent"`
	// MinRetries are retries in flight that are always allowed, so a quiet
	// pool can still retry. Default: 3.
	MinRetries *int `yaml:"min_retries"`
}

// Outlier ejects an endpoint after consecutive failures, for base_ejection_time
// times the number of times it has been ejected (capped by
// max_ejection_time). An ejected endpoint gets no requests until its time is
// up; then it returns. Never more than max_ejection_percent of the pool's
// endpoints are ejected at once. A success resets the consecutive counts;
// an endpoint that stays clear of ejection for max_ejection_time starts
// again from base_ejection_time.
type Outlier struct {
	// Consecutive5xx ejects after this many 5xx responses, connect errors,
	// timeouts or resets in a row. 0 turns it off. Default: 5.
	Consecutive5xx *int `yaml:"consecutive_5xx"`
	// ConsecutiveGatewayErrors ejects after this many 502, 503, 504,
	// connect errors or timeouts in a row. 0 turns it off. Default: 5.
	ConsecutiveGatewayErrors *int `yaml:"consecutive_gateway_errors"`
	// ConsecutiveConnectErrors ejects after this many connect errors in a
	// row. 0 turns it off. Default: 3.
	ConsecutiveConnectErrors *int `yaml:"consecutive_connect_errors"`
	// BaseEjectionTime is the first ejection's length. Default: 30s.
	BaseEjectionTime Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps an ejection's length. Default: 300s.
	MaxEjectionTime Duration `yaml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of endpoints ejected at once,
	// 0-100, rounded down (so a pool of one endpoint never ejects it).
	// Default: 50.
	MaxEjectionPercent *int `yaml:"max_ejection_percent"`
}

// Hash is the key that algorithm consistent_hash hashes.
type Hash struct {
	// Key is client_ip, header:NAME (the first value of a request header)
	// or cookie:NAME. A request without the key gets a weighted random
	// endpoint. Default: client_ip.
	Key string `yaml:"key"`
}

// Sticky is the cookie that algorithm sticky sets. It names the endpoint by
// a short hash of its address, so it reveals nothing about the network.
// A request without the cookie, or whose endpoint is gone, ejected or full,
// goes to the fallback algorithm and gets a new cookie.
type Sticky struct {
	// Cookie is the cookie's name. Default: portcullis_ + the pool's name.
	Cookie string `yaml:"cookie"`
	// TTL is the cookie's Max-Age. Default: 0 (a session cookie).
	TTL Duration `yaml:"ttl"`
	// Secure sends the cookie over HTTPS only. Default: false.
	Secure bool `yaml:"secure"`
	// HTTPOnly hides the cookie from scripts. Default: true.
	HTTPOnly *bool `yaml:"http_only"`
	// Fallback is the algorithm for requests without a usable cookie:
	// round_robin, random or least_request. Default: round_robin.
	Fallback string `yaml:"fallback"`
}
