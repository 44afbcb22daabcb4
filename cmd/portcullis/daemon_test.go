package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
)

// These tests run the real binary, as an operator would: real sockets on
// loopback, real signals, the real admin API.

type ports struct{ admin, web, d1, d2, d3 int }

func newPorts(t *testing.T) ports {
	p := e2etest.FreePorts(t, 5)
	return ports{p[0], p[1], p[2], p[3], p[4]}
}

// demoConfig is a quickstart-shaped config on free ports; extra is appended
// to the l7 routes list.
func demoConfig(p ports, backends []int, extra string) string {
	var demo, eps strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&demo, "    - 127.0.0.1:%d\n", b)
		fmt.Fprintf(&eps, "        - address: 127.0.0.1:%d\n", b)
	}
	return fmt.Sprintf(`node:
  name: test
admin:
  listen: 127.0.0.1:%d
  token: test-token
shutdown:
  drain: 5s
demo:
  backends:
%sl7:
  listeners:
    - name: web
      address: 127.0.0.1:%d
  pools:
    - name: demo
      endpoints:
%s  routes:
    - name: all
      pool: demo
%s`, p.admin, demo.String(), p.web, eps.String(), extra)
}

type runningDaemon struct {
	*e2etest.LoopDaemon
	p ports
}

// startDaemon writes cfg to cfgPath and runs the daemon on it until the
// test ends; the cleanup kills it.
func startDaemon(t *testing.T, cfgPath, cfg string, p ports, args ...string) *runningDaemon {
	t.Helper()
	d := e2etest.StartLoop(t, e2etest.LoopOptions{
		AdminPort:     p.admin,
		Config:        cfg,
		ConfigPath:    cfgPath,
		Args:          args,
		Client:        http.DefaultClient,
		ReadyTimeout:  10 * time.Second,
		ReadyPoll:     50 * time.Millisecond,
		KillAtCleanup: true,
	})
	return &runningDaemon{d, p}
}

func (d *runningDaemon) admin(path string) string { return d.AdminBase + path }

// metric returns the value of one sample of the admin /metrics page.
func (d *runningDaemon) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(d.admin("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	t.Fatalf("metric %s not found", sample)
	return 0
}

func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write-then-rename, as config managers do, so the daemon never reads
	// half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	e2etest.Until(t, what, 10*time.Second, cond)
}

var backendRE = regexp.MustCompile(`Hello from (demo-\d)`)

func TestRoundRobinAcrossTheThreeDemoBackends(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1, p.d2, p.d3}, ""), p)
	seen := map[string]bool{}
	for range 3 {
		code, body, err := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", p.web))
		if err != nil || code != 200 {
			t.Fatalf("GET: %d %v", code, err)
		}
		m := backendRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("unexpected body %q", body)
		}
		seen[m[1]] = true
	}
	if len(seen) != 3 {
		t.Errorf("three requests reached %v, want three different backends", seen)
	}
	if v := d.metric(t, `portcullis_build_info{commit="unknown",goversion="`+goVersion()+`",version="dev"}`); v != 1 {
		t.Errorf("build_info = %v", v)
	}
	code, body, _ := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/x", p.web))
	if code != 200 || !strings.Contains(body, "GET /x") {
		t.Errorf("path not forwarded: %d %q", code, body)
	}
}

func goVersion() string {
	out, _ := exec.Command("go", "env", "GOVERSION").Output()
	return strings.TrimSpace(string(out))
}

// The acceptance test: a bad config on SIGHUP is rejected and
// counted while the old one keeps serving; a good one is then picked up
// without a restart and without one failed request from a client that runs
// through both reloads.
func TestSIGHUPWithABadConfigKeepsServingThenAGoodOneIsPickedUp(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1, p.d2}, ""), p, "--watch=false")
	pid := d.Cmd.Process.Pid

	var ok, failed atomic.Int64
	var failures sync.Map
	seen := sync.Map{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Go(func() {
			// Bounded: stops on cancel or after 20k requests.
			for i := 0; i < 20000 && ctx.Err() == nil; i++ {
				code, body, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/", p.web))
				if err != nil || code != 200 {
					failed.Add(1)
					failures.Store(fmt.Sprintf("%d %v %s", code, err, body), true)
					continue
				}
				ok.Add(1)
				if m := backendRE.FindStringSubmatch(body); m != nil {
					seen.Store(m[1], true)
				}
			}
		})
	}

	time.Sleep(200 * time.Millisecond)
	writeFile(t, cfg, demoConfig(p, []int{p.d1, p.d2}, "")+"  bogus_key: 1\n")
	syscall.Kill(pid, syscall.SIGHUP)
	eventually(t, "the failed reload to be counted", func() bool {
		return d.metric(t, `portcullis_config_reloads_total{result="failure"}`) == 1
	})
	if !strings.Contains(d.Logs(), "config reload rejected") || !strings.Contains(d.Logs(), "c.yaml:") {
		t.Errorf("the rejection is not logged with a position:\n%s", d.Logs())
	}
	time.Sleep(200 * time.Millisecond)

	// A valid change: a third demo backend joins the pool.
	writeFile(t, cfg, demoConfig(p, []int{p.d1, p.d2, p.d3}, ""))
	syscall.Kill(pid, syscall.SIGHUP)
	eventually(t, "the third backend to answer", func() bool {
		_, found := seen.Load("demo-3")
		return found
	})
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()

	if n := failed.Load(); n != 0 {
		failures.Range(func(k, _ any) bool { t.Logf("failure: %v", k); return true })
		t.Fatalf("%d of %d requests failed during the reloads", n, n+ok.Load())
	}
	if v := d.metric(t, `portcullis_config_reloads_total{result="success"}`); v != 1 {
		t.Errorf("reloads success = %v, want 1", v)
	}
	if v := d.metric(t, `portcullis_config_reloads_total{result="failure"}`); v != 1 {
		t.Errorf("reloads failure = %v, want 1", v)
	}
	if d.Cmd.Process.Pid != pid || d.Cmd.ProcessState != nil {
		t.Error("the daemon restarted")
	}
	t.Logf("%d requests, none failed, across a rejected and an accepted reload", ok.Load())
}

func TestAChangedFileIsReloadedWithoutASignal(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1}, ""), p)
	changed := demoConfig(p, []int{p.d1}, "    - name: post-only\n      pool: demo\n      match: {path: /post-only, methods: [POST]}\n")
	writeFile(t, cfg, changed)
	want := sha256hex(changed)
	eventually(t, "the changed file to be running", func() bool {
		_, body, _ := get(http.DefaultClient, d.admin("/api/v1/status"))
		return strings.Contains(body, want)
	})
	// Writing the same bytes again is not a reload.
	writeFile(t, cfg, changed)
	time.Sleep(600 * time.Millisecond)
	if v := d.metric(t, `portcullis_config_reloads_total{result="success"}`); v != 1 {
		t.Errorf("reloads = %v, want 1", v)
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMutatingAdminEndpointsNeedTheToken(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1}, ""), p, "--watch=false")
	cases := []struct {
		name   string
		header string
		want   int
	}{
		{"no Authorization header", "", 401},
		{"a wrong token", "Bearer nope", 401},
		{"the token without the Bearer scheme", "test-token", 401},
		{"a token that is a prefix of the right one", "Bearer test", 401},
		{"the right token", "Bearer test-token", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", d.admin("/api/v1/reload"), nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if v := d.metric(t, `portcullis_config_reloads_total{result="success"}`); v != 1 {
		t.Errorf("only the authorised reload may run; reloads = %v", v)
	}
	// Reads stay open.
	for _, path := range []string{"/api/v1/status", "/api/v1/config", "/metrics", "/healthz", "/readyz", "/"} {
		code, body, err := get(http.DefaultClient, d.admin(path))
		if err != nil || code != 200 {
			t.Errorf("GET %s: %d %v", path, code, err)
		}
		if path == "/api/v1/config" && strings.Contains(body, "test-token") {
			t.Error("GET /api/v1/config leaks the admin token")
		}
	}
}

func TestAReloadThatFailsValidationAnswersWithEveryError(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1}, ""), p, "--watch=false")
	writeFile(t, cfg, demoConfig(p, []int{p.d1}, "    - name: x\n      pool: missing\n")+"bogus: 1\n")
	req, _ := http.NewRequest("POST", d.admin("/api/v1/reload"), nil)
	req.Header.Set("Authorization", "Bearer test-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{`unknown key \"bogus\"`, `no pool named \"missing\"`, "c.yaml:"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("response lacks %s:\n%s", want, body)
		}
	}
	code, _, _ := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", p.web))
	if code != 200 {
		t.Errorf("old config stopped serving: %d", code)
	}
}

// A listener whose config is unchanged keeps its socket and its open
// keep-alive connections across a reload.
func TestAnUnchangedListenerKeepsItsConnectionsAcrossAReload(t *testing.T) {
	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, demoConfig(p, []int{p.d1}, ""), p, "--watch=false")
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.web))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	roundTrip := func() int {
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("keep-alive connection broken: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if roundTrip() != 200 {
		t.Fatal("first request failed")
	}
	writeFile(t, cfg, demoConfig(p, []int{p.d1, p.d2}, ""))
	d.Cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the reload", func() bool {
		return d.metric(t, `portcullis_config_reloads_total{result="success"}`) == 1
	})
	if roundTrip() != 200 {
		t.Fatal("request on the old connection failed after the reload")
	}
}

// SIGTERM stops accepting, lets the request in flight finish, and exits 0.
func TestSIGTERMDrainsInFlightRequestsAndExitsZero(t *testing.T) {
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
		w.Write([]byte("slow done"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(ln)
	defer slow.Close()
	upstream := ln.Addr().(*net.TCPAddr).Port

	p := newPorts(t)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	d := startDaemon(t, cfg, strings.Replace(demoConfig(p, []int{p.d1}, ""), fmt.Sprintf("        - address: 127.0.0.1:%d\n", p.d1), fmt.Sprintf("        - address: 127.0.0.1:%d\n", upstream), 1), p, "--watch=false")

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, body, err := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", p.web))
		res <- result{code, body, err}
	}()
	time.Sleep(200 * time.Millisecond) // the request is now at the slow upstream
	d.Cmd.Process.Signal(syscall.SIGTERM)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "slow done" {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	select {
	case err := <-d.Done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
		d.Done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit")
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.web), time.Second); err == nil {
		t.Error("listener still accepts after shutdown")
	}
}

// TestAConfigMapStyleSymlinkSwapIsReloaded: Kubernetes mounts a ConfigMap as
// dir/c.yaml → ..data/c.yaml with ..data → ..v1, and updates it by pointing
// ..data at a new folder in one rename. The file's own name sees no event.
func TestAConfigMapStyleSymlinkSwapIsReloaded(t *testing.T) {
	p := newPorts(t)
	dir := t.TempDir()
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	first := demoConfig(p, []int{p.d1}, "")
	if err := os.WriteFile(filepath.Join(dir, "..v1", "c.yaml"), []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.Symlink(filepath.Join("..data", "c.yaml"), cfg); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, "", p) // the links stay as made
	changed := demoConfig(p, []int{p.d1}, "    - name: post-only\n      pool: demo\n      match: {path: /post-only, methods: [POST]}\n")
	if err := os.WriteFile(filepath.Join(dir, "..v2", "c.yaml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	want := sha256hex(changed)
	eventually(t, "the swapped config to be running", func() bool {
		_, body, _ := get(http.DefaultClient, d.admin("/api/v1/status"))
		return strings.Contains(body, want)
	})
}
