//go:build linux

package e2etest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// Daemon is `portcullis run` in a netlab host, with an admin client that
// dials inside that host's namespace.
type Daemon struct {
	Host      *netlab.Host
	Proc      *netlab.Process
	Admin     *http.Client
	AdminAddr string // host:port of the admin listener, inside Host
	// LogTail bounds the daemon log quoted by WaitReady's errors (0: all).
	LogTail int
}

// NewDaemon wraps a started process; the admin client times out after
// timeout.
func NewDaemon(h *netlab.Host, proc *netlab.Process, adminAddr string, timeout time.Duration) *Daemon {
	d := &Daemon{Host: h, Proc: proc, Admin: h.HTTPClient(), AdminAddr: adminAddr}
	d.Admin.Timeout = timeout
	return d
}

// StartDaemon runs `bin run --config cfgPath --watch=false` in h for the
// length of the test (netlab stops it and keeps its log) and waits up to
// 20s for GET /readyz to answer 200. The admin client times out after 5s.
func StartDaemon(t testing.TB, h *netlab.Host, bin, cfgPath, adminAddr string) *Daemon {
	t.Helper()
	d := &Daemon{Host: h, Admin: h.HTTPClient(), AdminAddr: adminAddr}
	d.Admin.Timeout = 5 * time.Second
	d.Proc = h.Start(t, bin, "run", "--config", cfgPath, "--watch=false")
	if err := d.WaitReady(20*time.Second, d.Readyz); err != nil {
		t.Fatal(err)
	}
	return d
}

// WaitReady polls ready every 20ms until it returns nil. It fails early
// if the process exits, and after within with ready's last error; both
// errors quote the daemon's log.
func (d *Daemon) WaitReady(within time.Duration, ready func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if d.Proc.Exited() {
			return fmt.Errorf("daemon %s exited before it was ready: %v\n%s", d.Host.Name, d.Proc.Wait(), d.logs())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon %s not ready after %v (last error %v)\n%s", d.Host.Name, within, err, d.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *Daemon) logs() string {
	if d.LogTail > 0 {
		return Tail(d.Proc.Logs(), d.LogTail)
	}
	return d.Proc.Logs()
}

// Readyz is nil once GET /readyz answers 200.
func (d *Daemon) Readyz() error {
	resp, err := d.Admin.Get(d.URL("/readyz"))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /readyz: %s", resp.Status)
	}
	return nil
}

// URL is the admin API's URL for path.
func (d *Daemon) URL(path string) string { return "http://" + d.AdminAddr + path }

// GetJSON decodes the 200 answer of GET path into v.
func (d *Daemon) GetJSON(path string, v any) error {
	resp, err := d.Admin.Get(d.URL(path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Post sends POST path with body (JSON, if not nil) and, if token is not
// empty, the bearer token.
func (d *Daemon) Post(path, token string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, d.URL(path), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return d.Admin.Do(req)
}

// Metrics scrapes /metrics.
func (d *Daemon) Metrics() (Metrics, error) {
	resp, err := d.Admin.Get(d.URL("/metrics"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ParseMetrics(resp.Body)
}

// LogRecords returns the daemon's JSON log records whose msg match
// accepts.
func (d *Daemon) LogRecords(match func(msg string) bool) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(d.Proc.Logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if msg, ok := rec["msg"].(string); ok && match(msg) {
				out = append(out, rec)
			}
		}
	}
	return out
}
