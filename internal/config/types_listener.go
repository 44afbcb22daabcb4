package config

// Listener is an HTTP listener: one TCP socket (HTTP/1.1, and HTTP/2 by ALPN
// under TLS or by h2c in cleartext) and, with http3, one UDP socket on the
// same port number. A reload that keeps a listener's address keeps its
// sockets and open connections; changed settings apply to new connections.
type Listener struct {
	// Name is unique among listeners; routes refer to it.
	Name string `yaml:"name"`
	// Address is host:port to bind.
	Address string `yaml:"address"`
	// TLS terminates TLS on this listener (HTTP/1.1 and HTTP/2 by ALPN).
	TLS *ListenerTLS `yaml:"tls"`
	// H2C accepts cleartext HTTP/2 on a listener without tls: both prior
	// knowledge (the client starts with the HTTP/2 preface) and the
	// HTTP/1.1 `Upgrade: h2c` form (RFC 7540 §3.2). Only enable it where
	// clients are trusted to speak h2c, typically inside a cluster.
	// Default: false.
	H2C bool `yaml:"h2c"`
	// HTTP3 also serves HTTP/3 over QUIC on the same port number over UDP
	// and advertises it on TCP responses with `Alt-Svc: h3=":PORT"`.
	// Needs tls (QUIC always uses TLS 1.3). The QUIC connection IDs start
	// with node.id so the XDP program can route packets back to this node.
	// Default: false.
	HTTP3 bool `yaml:"http3"`
	// Freebind binds the address even when it is not (yet) configured on
	// any interface (IP_FREEBIND / IPV6_FREEBIND), so a listener on a
	// floating VIP starts before this node owns the VIP. Default: false.
	Freebind bool `yaml:"freebind"`
	// ReadHeaderTimeout is how long a client gets to send a request's
	// headers (including the TLS handshake). It bounds slow-header (Slowloris)
	// clients. Default: 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a keep-alive connection (HTTP/1.1, HTTP/2, HTTP/3)
	// with no request for this long. Each idle connection costs memory
	// (roughly 10 KiB for HTTP/1.1, more with TLS). Default: 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes limits the size of a request's header block, in bytes
	// (request line and headers for HTTP/1.1, the decoded header list for
	// HTTP/2 and HTTP/3). Larger requests get 431. 4096-16777216.
	// Default: 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxURIBytes limits the length of a request's target (the path and
	// query as sent: the request line's target in HTTP/1.1, :path in
	// HTTP/2 and HTTP/3), in bytes. Longer requests get 414 and never
	// reach a route. 256-16777216. Default: 8192 (nginx's
	// large_client_header_buffers; browsers and CDNs cap URLs near there).
	MaxURIBytes int `yaml:"max_uri_bytes"`
	// MaxHeaderCount limits how many header fields a request may carry
	// (each value of a repeated field counts). More get 431 and never
	// reach a route. 8-10000. Default: 100 (HAProxy's tune.http.maxhdr is
	// 101 with the request line).
	MaxHeaderCount int `yaml:"max_header_count"`
	// MaxBodyBytes is the default request body limit of the routes served
	// on this listener that set no max_body_bytes of their own; see the
	// route's max_body_bytes. 0 is no limit. Default: 0.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnsPerIP limits the TCP connections one client address may have
	// open on this listener at once. Connections beyond it are closed as
	// soon as they are accepted (before TLS) and counted in
	// portcullis_http_connections_refused_total{reason="per_ip_limit"}.
	// The address is the TCP peer: clients behind one NAT or one proxy
	// share it, so size it for them. HTTP/3 (QUIC) is not counted.
	// 0 is no limit. Default: 0.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// H2MaxConcurrentStreams is how many requests one HTTP/2 client
	// connection may have in flight at once (SETTINGS_MAX_CONCURRENT_STREAMS).
	// 1-10000. Default: 250.
	H2MaxConcurrentStreams int `yaml:"h2_max_concurrent_streams"`
	// H3MaxStreams is how many requests one HTTP/3 connection may have in
	// flight at once (QUIC bidirectional streams). 1-10000. Default: 250.
	H3MaxStreams int `yaml:"h3_max_streams"`
	// Server picks the HTTP implementation: lean (Portcullis's own) or
	// stdlib (Go's net/http and its HTTP/2 server). With lean, cleartext
	// HTTP/1.1 is served by the lean HTTP/1.1 server (strict parsing,
	// about a third less CPU per request) and HTTP/2 over TLS by the lean
	// HTTP/2 server (responses of many streams share TLS records and
	// writes: about half the CPU per request of Go's); HTTP/1.1 over TLS
	// and h2c stay on net/http. stdlib is an escape hatch for clients
	// that only net/http gets along with. Default: lean.
	Server string `yaml:"server"`
}

// ListenerTLS is a listener's TLS termination. Certificate, key and CA files
// are re-read when they change on disk (checked every few seconds) and on
// every config reload; the new files serve the next handshakes, without a
// restart and without touching open connections. A file that fails to load
// leaves the previous certificate in use and is logged.
type ListenerTLS struct {
	// Certificates are PEM certificate chains and keys. A client's SNI
	// picks the certificate whose SAN names it exactly, else one whose
	// wildcard SAN (*.example.com) covers it; without SNI or when none
	// matches, the first certificate is served.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is 1.2 or 1.3. TLS 1.3 is always preferred when the client
	// offers it; with 1.2, only ECDHE key exchange with AEAD ciphers
	// (AES-GCM, ChaCha20-Poly1305) is offered. Default: 1.2.
	MinVersion string `yaml:"min_version"`
	// ClientCAFile is a PEM bundle of the CAs that sign client certificates.
	// Setting it turns on client-certificate verification (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is require (a client without a valid certificate fails the
	// handshake) or verify-if-given (a client may send none, but a
	// certificate it sends must verify). Only with client_ca_file.
	// Default: require.
	ClientAuth string `yaml:"client_auth"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf certificate.
	KeyFile string `yaml:"key_file"`
}
