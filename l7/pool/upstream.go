package pool

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Upstream is a pool's compiled transport settings, for the core to build its
// transport from. Immutable.
type Upstream struct {
	// Protocol is "http1", "h2" (over TLS) or "h2c" (cleartext, prior
	// knowledge).
	Protocol string
	// TLS is nil for cleartext. ServerName is empty when SNI should be the
	// endpoint's host (net/http's transports fill it in); NextProtos is set
	// for the protocol.
	TLS *tls.Config
	// ConnectTimeout bounds the TCP and TLS handshakes.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes unused keep-alive connections.
	IdleTimeout time.Duration
	// TotalTimeout bounds a whole attempt; 0 is none.
	TotalTimeout time.Duration
	// MaxIdlePerEndpoint is the idle keep-alive connections kept per endpoint.
	MaxIdlePerEndpoint int
	// Retry is what the core retries.
	Retry Retry
}

// Retry says how often and on what the core retries a request on another
// endpoint; Pool.RetryAllowed adds the budget.
type Retry struct {
	// Attempts is the number of retries after the first attempt.
	Attempts int
	// On is the set of retried failures.
	On RetryOn
}

// RetryOn is a set of retry conditions (config retries.on).
type RetryOn uint8

// Retry conditions.
const (
	RetryConnectFailure RetryOn = 1 << iota // no connection could be made
	RetryRefusedStream                      // HTTP/2 REFUSED_STREAM, or GOAWAY before the stream was processed
	RetryReset                              // connection or stream reset before a response
	RetryGatewayError                       // 502, 503, 504
	Retry5xx                                // any 5xx
)

var retryNames = map[string]RetryOn{
	"connect-failure": RetryConnectFailure, "refused-stream": RetryRefusedStream,
	"reset": RetryReset, "gateway-error": RetryGatewayError, "5xx": Retry5xx,
}

// Retryable reports whether an attempt's outcome is one of the retried
// failures. Whether the request may be retried at all (idempotent, body
// buffered) and whether the budget allows it is the caller's to check.
func (r Retry) Retryable(o Outcome) bool {
	switch {
	case o.ConnectError:
		return r.On&RetryConnectFailure != 0
	case o.RefusedStream:
		return r.On&RetryRefusedStream != 0
	case o.Reset:
		return r.On&RetryReset != 0
	case o.Status == 502 || o.Status == 503 || o.Status == 504:
		return r.On&(RetryGatewayError|Retry5xx) != 0
	case o.Status >= 500 && o.Status <= 599:
		return r.On&Retry5xx != 0
	}
	return false
}

func compileUpstream(c *config.Pool) (*Upstream, error) {
	u := &Upstream{
		Protocol:              c.Protocol,
		ConnectTimeout:        c.Timeouts.Connect.D(),
		ResponseHeaderTimeout: c.Timeouts.ResponseHeader.D(),
		IdleTimeout:           c.Timeouts.Idle.D(),
		TotalTimeout:          c.Timeouts.Total.D(),
		MaxIdlePerEndpoint:    c.MaxIdlePerEndpoint,
		Retry:                 Retry{Attempts: *c.Retries.Attempts},
	}
	switch c.Protocol {
	case "http1", "h2", "h2c":
	default:
		return nil, fmt.Errorf("unknown protocol %q", c.Protocol)
	}
	for _, on := range c.Retries.On {
		bit, ok := retryNames[on]
		if !ok {
			return nil, fmt.Errorf("retries.on: unknown condition %q", on)
		}
		u.Retry.On |= bit
	}
	if t := c.TLS; t != nil && t.Enabled {
		if t.InsecureSkipVerify && t.CAFile != "" {
			return nil, fmt.Errorf("tls: insecure_skip_verify and ca_file exclude each other")
		}
		tc := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         t.ServerName,
			InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // only when the operator wrote it out
		}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.ca_file: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate", t.CAFile)
			}
			tc.RootCAs = roots
		}
		if c.Protocol == "h2" {
			tc.NextProtos = []string{"h2"}
		} else {
			tc.NextProtos = []string{"http/1.1"}
		}
		u.TLS = tc
	} else if c.Protocol == "h2" {
		return nil, fmt.Errorf("protocol h2 needs tls (use h2c for cleartext)")
	}
	return u, nil
}
