package config

// Listener is an HTTP listener.
type Listener struct {
	// Name is unique among listeners; routes refer to it.
	Name string `yaml:"name"`
	// Address is host:port to bind.
	Address string `yaml:"address"`
	// TLS terminates TLS on this listener (HTTP/1.1 and HTTP/2 by ALPN).
	TLS *ListenerTLS `yaml:"tls"`
}

// ListenerTLS is a listener's TLS termination.
type ListenerTLS struct {
	// Certificates are PEM certificate chains and keys; the first is the
	// default, the others are chosen by SNI.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is 1.2 or 1.3. Default: 1.2.
	MinVersion string `yaml:"min_version"`
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}
