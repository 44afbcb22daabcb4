package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Checker runs one check of one target. A nil error is a pass; the string is
// a short detail for the dashboard ("200 OK", "SERVING"). The context carries
// the check's timeout.
type Checker interface {
	Check(ctx context.Context) (detail string, err error)
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) (string, error)

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) (string, error) { return f(ctx) }

// TCPChecker passes when a TCP connection to Address is accepted.
type TCPChecker struct {
	Address string // host:port
	Dialer  net.Dialer
}

// Check dials and closes at once.
func (c *TCPChecker) Check(ctx context.Context) (string, error) {
	conn, err := c.Dialer.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		return "", err
	}
	conn.Close()
	return "connected", nil
}

// bodyLimit is how much of a response body an HTTP check reads.
const bodyLimit = 64 << 10

// HTTPChecker sends one request and judges status and body.
type HTTPChecker struct {
	URL       string // http(s)://address/path
	Method    string
	Host      string // Host header; "" = from URL
	Status    []config.StatusRange
	Body      string         // substring the body must contain
	BodyRegex *regexp.Regexp // expression the body must match
	client    *http.Client
}

// NewHTTPChecker compiles an http/https check of address (host:port).
func NewHTTPChecker(hc *config.HealthCheck, address string) (*HTTPChecker, error) {
	st, err := config.ParseStatusRanges(hc.ExpectStatus)
	if err != nil {
		return nil, err
	}
	c := &HTTPChecker{URL: hc.Type + "://" + address + hc.Path, Method: hc.Method, Host: hc.Host, Status: st, Body: hc.ExpectBody}
	if hc.ExpectBodyRegex != "" {
		if c.BodyRegex, err = regexp.Compile(hc.ExpectBodyRegex); err != nil {
			return nil, err
		}
	}
	tr := &http.Transport{
		// A fresh connection every time: a check must prove the backend
		// still accepts connections, not that an old one is still open;
		// and a pool of idle check connections per backend is a cost.
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	if hc.Type == "https" {
		tc := &tls.Config{ServerName: hc.Host}
		if hc.TLS != nil {
			if hc.TLS.ServerName != "" {
				tc.ServerName = hc.TLS.ServerName
			}
			tc.InsecureSkipVerify = hc.TLS.InsecureSkipVerify
			if hc.TLS.CAFile != "" {
				pem, err := os.ReadFile(hc.TLS.CAFile)
				if err != nil {
					return nil, err
				}
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("%s holds no PEM certificate", hc.TLS.CAFile)
				}
			}
		}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(address)
		}
		tr.TLSClientConfig = tc
	}
	c.client = &http.Client{
		Transport: tr,
		// A redirect is an answer: judge its status, do not follow it to
		// somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Check sends the request.
func (c *HTTPChecker) Check(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, nil)
	if err != nil {
		return "", err
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	req.Header.Set("User-Agent", "portcullis-healthcheck")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	detail := resp.Status
	ok := false
	for _, r := range c.Status {
		if resp.StatusCode >= r.Lo && resp.StatusCode <= r.Hi {
			ok = true
			break
		}
	}
	if !ok {
		return detail, fmt.Errorf("status %s is not expected", resp.Status)
	}
	if c.Body == "" && c.BodyRegex == nil {
		return detail, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		return detail, fmt.Errorf("reading body: %w", err)
	}
	if c.Body != "" && !bytes.Contains(body, []byte(c.Body)) {
		return detail, fmt.Errorf("body does not contain %q", c.Body)
	}
	if c.BodyRegex != nil && !c.BodyRegex.Match(body) {
		return detail, fmt.Errorf("body does not match %q", c.BodyRegex.String())
	}
	return detail, nil
}

// GRPCChecker calls grpc.health.v1.Health/Check over cleartext HTTP/2
// without the gRPC library: the request and the answer are each one
// length-prefixed message of a single protobuf field, which is cheaper to
// write by hand than to import google.golang.org/grpc for.
type GRPCChecker struct {
	Address string // host:port
	Service string
	client  *http.Client
}

// NewGRPCChecker makes a gRPC health check of address.
func NewGRPCChecker(address, service string) *GRPCChecker {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, DisableKeepAlives: true}
	return &GRPCChecker{Address: address, Service: service, client: &http.Client{Transport: tr}}
}

// Health states of grpc.health.v1.HealthCheckResponse.ServingStatus.
var grpcServing = map[uint64]string{0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

// grpcRequest frames HealthCheckRequest{service: s}: a 5-byte gRPC message
// header (uncompressed flag, big-endian length), then field 1 as a
// length-delimited string (tag 0x0a). An empty service is the empty message.
func grpcRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(service)))...)
		msg = append(msg, service...)
	}
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcStatus reads HealthCheckResponse.status (field 1, varint) from a
// framed message, skipping fields it does not know as protobuf requires.
func grpcStatus(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, errors.New("short gRPC message")
	}
	if b[0] != 0 {
		return 0, errors.New("compressed gRPC message")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint32(len(b)-5) < n {
		return 0, errors.New("truncated gRPC message")
	}
	m := b[5 : 5+n]
	var status uint64
	for len(m) > 0 {
		key, k := binary.Uvarint(m)
		if k <= 0 {
			return 0, errors.New("bad protobuf key")
		}
		m = m[k:]
		switch key & 7 {
		case 0:
			v, k := binary.Uvarint(m)
			if k <= 0 {
				return 0, errors.New("bad protobuf varint")
			}
			m = m[k:]
			if key>>3 == 1 {
				status = v
			}
		case 2:
			l, k := binary.Uvarint(m)
			if k <= 0 || uint64(len(m)-k) < l {
				return 0, errors.New("bad protobuf length")
			}
			m = m[k+int(l):]
		case 1:
			if len(m) < 8 {
				return 0, errors.New("bad protobuf fixed64")
			}
			m = m[8:]
		case 5:
			if len(m) < 4 {
				return 0, errors.New("bad protobuf fixed32")
			}
			m = m[4:]
		default:
			return 0, errors.New("unsupported protobuf wire type")
		}
	}
	return status, nil
}

// Check calls the health service.
func (c *GRPCChecker) Check(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Address+"/grpc.health.v1.Health/Check", bytes.NewReader(grpcRequest(c.Service)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status, fmt.Errorf("HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, bodyLimit))
	if err != nil {
		return "", err
	}
	// A trailers-only response (an error) carries grpc-status in the headers.
	gs := resp.Trailer.Get("Grpc-Status")
	if gs == "" {
		gs = resp.Header.Get("Grpc-Status")
	}
	if gs != "0" {
		msg := resp.Trailer.Get("Grpc-Message") + resp.Header.Get("Grpc-Message")
		return "grpc-status " + gs, fmt.Errorf("grpc-status %q %s", gs, strings.TrimSpace(msg))
	}
	st, err := grpcStatus(body)
	if err != nil {
		return "", err
	}
	name := grpcServing[st]
	if name == "" {
		name = fmt.Sprint(st)
	}
	if st != 1 {
		return name, fmt.Errorf("service is %s", name)
	}
	return name, nil
}

// AllOf passes when every checker passes, in order; the DSR probe and the
// application check of a DSR backend are combined this way.
type AllOf []Checker

// Check runs the checkers until one fails.
func (a AllOf) Check(ctx context.Context) (string, error) {
	var details []string
	for _, c := range a {
		d, err := c.Check(ctx)
		if d != "" {
			details = append(details, d)
		}
		if err != nil {
			return strings.Join(details, "; "), err
		}
	}
	return strings.Join(details, "; "), nil
}
