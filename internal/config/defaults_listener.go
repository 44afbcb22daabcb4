package config

import (
	"path/filepath"
	"time"
)

// Listener defaults. (Each part of the L7 schema keeps its defaults beside
// its types; the constants are still the one place a default is written.)
const (
	DefaultTLSMinVersion = "1.2"
	DefaultClientAuth    = "require"
	// DefaultReadHeaderTimeout bounds Slowloris-style clients while leaving a
	// slow mobile TLS handshake enough room.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	// DefaultMaxHeaderBytes is far above what browsers send (a few KiB) and
	// far below Go's 1 MiB, which lets one client pin a lot of memory.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultH2MaxConcurrentStreams matches Go's and nginx's choice (RFC 9113
	// §6.5.2 asks for no less than 100).
	DefaultH2MaxConcurrentStreams = 250
	DefaultH3MaxStreams           = 250
	// DefaultMaxURIBytes is nginx's limit (large_client_header_buffers
	// 4 8k: a request line over 8 KiB is 414); HAProxy's is about half
	// its 16 KiB buffer. Longer URLs are a sign of abuse more often than
	// of a real client.
	DefaultMaxURIBytes = 8 << 10
	// DefaultMaxHeaderCount is HAProxy's tune.http.maxhdr less the
	// request line.
	DefaultMaxHeaderCount = 100
	// DefaultListenerServer is the lean HTTP/1.1 server (l7/internal/h1).
	DefaultListenerServer = "lean"
)

func (c *Config) applyListenerDefaults() {
	for i := range c.L7.Listeners {
		l := &c.L7.Listeners[i]
		def(&l.ReadHeaderTimeout, Duration(DefaultReadHeaderTimeout))
		def(&l.IdleTimeout, Duration(DefaultIdleTimeout))
		def(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
		def(&l.MaxURIBytes, DefaultMaxURIBytes)
		def(&l.MaxHeaderCount, DefaultMaxHeaderCount)
		def(&l.H2MaxConcurrentStreams, DefaultH2MaxConcurrentStreams)
		def(&l.H3MaxStreams, DefaultH3MaxStreams)
		def(&l.Server, DefaultListenerServer)
		if t := l.TLS; t != nil {
			def(&t.MinVersion, DefaultTLSMinVersion)
			if t.ClientCAFile != "" {
				def(&t.ClientAuth, DefaultClientAuth)
				// resolvePaths (validate.go) anchors the certificate files;
				// the CA file is anchored here the same way until it moves
				// there. filepath.IsAbs keeps this idempotent.
				if !filepath.IsAbs(t.ClientCAFile) {
					t.ClientCAFile = filepath.Join(filepath.Dir(c.Path), t.ClientCAFile)
				}
			}
		}
	}
}
