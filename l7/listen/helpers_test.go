package listen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

var serial atomic.Int64

// testCA is a CA made in the test, ECDSA P-256.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	return ca
}

// issue returns a leaf certificate for names (server) or a client
// certificate (names empty), as PEM, and its serial number.
func (ca *testCA) issue(t *testing.T, names ...string) (certPEM, keyPEM []byte, sn int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn = serial.Add(1)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: "leaf"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), sn
}

func (ca *testCA) clientCert(t *testing.T) tls.Certificate {
	c, k, _ := ca.issue(t)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// writeCert writes a certificate and key as files named base.pem and
// base.key in dir, atomically (rename), as certificate tools do.
func writeCert(t *testing.T, dir, base string, certPEM, keyPEM []byte) config.Certificate {
	t.Helper()
	c := config.Certificate{CertFile: filepath.Join(dir, base+".pem"), KeyFile: filepath.Join(dir, base+".key")}
	for path, b := range map[string][]byte{c.CertFile: certPEM, c.KeyFile: keyPEM} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// listener returns a listener config with the defaults the config package
// would fill in.
func listener(name, addr string) config.Listener {
	return config.Listener{
		Name:                   name,
		Address:                addr,
		ReadHeaderTimeout:      config.Duration(config.DefaultReadHeaderTimeout),
		IdleTimeout:            config.Duration(config.DefaultIdleTimeout),
		MaxHeaderBytes:         config.DefaultMaxHeaderBytes,
		H2MaxConcurrentStreams: config.DefaultH2MaxConcurrentStreams,
		H3MaxStreams:           config.DefaultH3MaxStreams,
	}
}

// helloHandler answers "hello <listener> <proto>" so tests see where and
// how a request arrived. It reads the request body first, as the proxy
// does: a handler that answers before the body arrives never sees a
// malformed one (h2spec 8.1.2.6 sends a content-length that the DATA frames
// contradict, and the stream error comes only from reading them).
var helloHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	io.WriteString(w, "hello "+ListenerName(r.Context())+" "+r.Proto)
})

func newTestSet(t *testing.T, opts Options, ls ...config.Listener) *Set {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := NewSet(helloHandler, opts)
	if err := s.Apply(ls, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tlsFixture is a CA, certificates for a default, an exact and a wildcard
// name, written to files.
type tlsFixture struct {
	ca                  *testCA
	dir                 string
	tls                 *config.ListenerTLS
	defSN, exactSN, wSN int64
}

func newTLSFixture(t *testing.T) *tlsFixture {
	f := &tlsFixture{ca: newCA(t), dir: t.TempDir()}
	var c, k []byte
	c, k, f.defSN = f.ca.issue(t, "default.test")
	def := writeCert(t, f.dir, "default", c, k)
	c, k, f.exactSN = f.ca.issue(t, "a.example.com")
	exact := writeCert(t, f.dir, "exact", c, k)
	c, k, f.wSN = f.ca.issue(t, "*.example.com")
	wild := writeCert(t, f.dir, "wild", c, k)
	// The wildcard comes before the exact certificate on purpose: an exact
	// SAN must win whatever the order.
	f.tls = &config.ListenerTLS{Certificates: []config.Certificate{def, wild, exact}, MinVersion: "1.2"}
	return f
}

func (f *tlsFixture) client(protos ...string) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.pool, ServerName: "default.test", NextProtos: protos}}
	if len(protos) == 0 || protos[0] == "h2" {
		tr.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// servedSerial does a TLS handshake with sni and returns the serial number
// of the certificate served.
func servedSerial(t *testing.T, addr, sni string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
