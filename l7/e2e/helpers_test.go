package e2e

import (
	"bytes"
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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/testbin"
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
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// --- the daemon ---

// daemon is `portcullis run` on loopback.
type daemon struct {
	cmd       *exec.Cmd
	done      chan error
	cfgPath   string
	adminBase string
	admin     *http.Client

	mu   sync.Mutex
	logs bytes.Buffer
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.Write(p)
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

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
	bin := testbin.Portcullis(t)
	admin := freePort(t)
	d := &daemon{
		done:      make(chan error, 1),
		cfgPath:   filepath.Join(dir, "portcullis.yaml"),
		adminBase: fmt.Sprintf("http://127.0.0.1:%d", admin),
		admin:     &http.Client{Timeout: 5 * time.Second},
	}
	d.writeConfig(t, strings.ReplaceAll(header, "ADMIN", strconv.Itoa(admin))+l7)
	d.cmd = exec.Command(bin, "run", "--config", d.cfgPath, "--watch=false")
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		d.admin.CloseIdleConnections()
		if t.Failed() {
			cfg, _ := os.ReadFile(d.cfgPath)
			t.Logf("config:\n%s\ndaemon log (tail):\n%s", cfg, tail(d.log(), 8000))
		}
	})
	eventually(t, "daemon ready", 20*time.Second, 20*time.Millisecond, func() (bool, string) {
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited: %v\n%s", err, d.log())
		default:
		}
		resp, err := d.admin.Get(d.adminBase + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return d
}

func (d *daemon) writeConfig(t *testing.T, cfg string) {
	t.Helper()
	if d.adminBase != "" && !strings.HasPrefix(cfg, "node:") {
		t.Fatal("writeConfig wants a whole config")
	}
	writeFile(t, d.cfgPath, []byte(cfg))
}

// reload rewrites the l7 part of the config and sends SIGHUP; it returns
// once the daemon counts one more successful reload.
func (d *daemon) reload(t *testing.T, l7 string) {
	t.Helper()
	before := d.metric(t, `portcullis_config_reloads_total{result="success"}`)
	_, port, _ := strings.Cut(strings.TrimPrefix(d.adminBase, "http://"), ":")
	d.writeConfig(t, strings.ReplaceAll(header, "ADMIN", port)+l7)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload to succeed", 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		ok := d.metric(t, `portcullis_config_reloads_total{result="success"}`)
		failed := d.metric(t, `portcullis_config_reloads_total{result="failure"}`)
		if failed > 0 {
			t.Fatalf("the reload was rejected:\n%s", tail(d.log(), 4000))
		}
		return ok > before, fmt.Sprintf("successful reloads %v", ok)
	})
}

// metric reads one sample (exact name and labels as exposed) from the
// admin /metrics; absent is 0.
func (d *daemon) metric(t *testing.T, sample string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", d.adminBase+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer l7-e2e-token")
	resp, err := d.admin.Do(req)
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

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// eventually polls cond until it holds or timeout passes, and returns how
// long it took; on timeout it fails the test with what cond last said.
func eventually(t testing.TB, what string, timeout, poll time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not true after %v; last: %s", what, timeout, last)
		}
		time.Sleep(poll)
	}
}
