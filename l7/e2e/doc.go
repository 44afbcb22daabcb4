// Package e2e holds the L7 proxy's end-to-end tests: the real
// `portcullis run` daemon on loopback (no root), real upstream servers in
// the test process, and real clients.
//
//   - proxy_test.go: one daemon with a TLS listener (HTTP/1.1 and HTTP/2 by
//     ALPN, and HTTP/3 over UDP on the same port), an h2c listener and a
//     plain HTTP/1.1 listener, routed by path prefix to an HTTP/1.1, an h2c
//     and an h2-over-TLS upstream. Every client protocol (h1, h1 over TLS,
//     h2 over TLS, h2c prior knowledge, h3) against every upstream
//     protocol; Alt-Svc on the TCP responses of the http3 listener;
//     ngtcp2's gtlsclient as an independent HTTP/3 client (skipped when the
//     Debian package ngtcp2-client is absent); a gRPC-style call whose
//     trailers (Grpc-Status) come back through the proxy.
//   - h2spec_test.go: the HTTP/2 conformance suite (h2spec, skipped when
//     not installed) against the daemon over TLS and over h2c, allowing
//     only the failures of Go's own HTTP/2 server.
//   - ws_test.go: WebSockets (plain and over TLS) and an HTTP/2 connection
//     that live through a SIGHUP reload which changes the routes but keeps
//     the listeners.
//
// Run them with
//
//	go test ./l7/e2e/ -v
package e2e
