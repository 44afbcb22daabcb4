package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// --- certificates ---

var serial atomic.Int64

// testCA is a CA made in the test, ECDSA P-256.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
	pemFile string
}

func newCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "l7 e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), pemFile: filepath.Join(dir, "ca.pem")}
	ca.pool.AddCert(cert)
	writeFile(t, ca.pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// issue makes a server certificate for 127.0.0.1 and names, writes it to
// dir/base.pem and dir/base.key, and returns the paths and the pair.
func (ca *testCA) issue(t *testing.T, dir, base string, names ...string) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: base},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certFile, keyFile = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// writeFile writes atomically (rename), so the daemon never reads half a
// file.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// --- ports ---

// freePort returns a port number that was free a moment ago for TCP and
// UDP on 127.0.0.1 (an http3 listener binds both).
var freePort = e2etest.FreeTCPUDPPort

// --- the daemon ---

// daemon is `portcullis run` on loopback.
type daemon struct {
	*e2etest.LoopDaemon
}

func (d *daemon) log() string { return d.Logs() }

// header is the part of every config the tests share: node, log, admin
// (ADMIN is replaced by the port) and a short drain.
const header = `node:
  name: l7e2e
  id: 7
log:
  level: info
  format: json
admin:
  listen: 127.0.0.1:ADMIN
  token: l7-e2e-token
shutdown:
  drain: 1s
`

// startDaemon writes header+l7 and runs the daemon until the test ends.
func startDaemon(t *testing.T, dir, l7 string) *daemon {
	t.Helper()
	admin := freePort(t)
	return &daemon{e2etest.StartLoop(t, e2etest.LoopOptions{
		AdminPort:    admin,
		Config:       strings.ReplaceAll(header, "ADMIN", strconv.Itoa(admin)) + l7,
		ConfigPath:   filepath.Join(dir, "portcullis.yaml"),
		Args:         []string{"--watch=false"},
		ReadyTimeout: 20 * time.Second,
		LogTail:      8000,
	})}
}

func (d *daemon) writeConfig(t *testing.T, cfg string) {
	t.Helper()
	if !strings.HasPrefix(cfg, "node:") {
		t.Fatal("writeConfig wants a whole config")
	}
	writeFile(t, d.ConfigPath, []byte(cfg))
}

// reload rewrites the l7 part of the config and sends SIGHUP; it returns
// once the daemon counts one more successful reload.
func (d *daemon) reload(t *testing.T, l7 string) {
	t.Helper()
	before := d.metric(t, `portcullis_config_reloads_total{result="success"}`)
	_, port, _ := strings.Cut(strings.TrimPrefix(d.AdminBase, "http://"), ":")
	d.writeConfig(t, strings.ReplaceAll(header, "ADMIN", port)+l7)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, "the reload to succeed", 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		ok := d.metric(t, `portcullis_config_reloads_total{result="success"}`)
		failed := d.metric(t, `portcullis_config_reloads_total{result="failure"}`)
		if failed > 0 {
			t.Fatalf("the reload was rejected:\n%s", e2etest.Tail(d.Logs(), 4000))
		}
		return ok > before, fmt.Sprintf("successful reloads %v", ok)
	})
}

// metric reads one sample (exact name and labels as exposed) from the
// admin /metrics; absent is 0.
func (d *daemon) metric(t *testing.T, sample string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", d.AdminBase+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer l7-e2e-token")
	resp, err := d.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// tail is e2etest.Tail, for the tests in this package.
var tail = e2etest.Tail
