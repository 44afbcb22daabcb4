package e2etest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if fresh(port) {
			return port
		}
	}
}

// given holds every port these helpers handed out in this process: the
// kernel may return a port it just gave to a closed probe socket, and two
// listeners of one test on the same port fail in confusing ways.
var given sync.Map

func fresh(port int) bool {
	_, taken := given.LoadOrStore(port, true)
	return !taken
}

// FreePorts returns n distinct free ports (FreePort n times).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
	}
	return ports
}

// FreeTCPUDPPort returns a port that was free a moment ago for both TCP
// and UDP on 127.0.0.1 (an http3 listener binds both).
func FreeTCPUDPPort(t testing.TB) int {
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
			if fresh(port) {
				return port
			}
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// LoopOptions says how StartLoop runs the daemon on loopback.
type LoopOptions struct {
	// AdminPort is the port of the config's admin listener on 127.0.0.1.
	AdminPort int
	// Config is written to ConfigPath (by write-then-rename) before the
	// start; ConfigPath defaults to portcullis.yaml in a t.TempDir(). An
	// empty Config leaves ConfigPath as the test made it (a symlink, say).
	Config     string
	ConfigPath string
	// Args follow `run --config ConfigPath`.
	Args []string
	// Client probes /readyz and is LoopDaemon.Client; if nil, a client
	// with a 5s timeout whose idle connections are closed at cleanup.
	Client *http.Client
	// ReadyTimeout (default 15s) bounds the wait for GET /readyz to answer
	// 200, polled every ReadyPoll (default 20ms).
	ReadyTimeout, ReadyPoll time.Duration
	// KillAtCleanup kills the daemon at cleanup; otherwise it gets SIGTERM
	// and is killed if it has not exited after 5s.
	KillAtCleanup bool
	// LogTail bounds the daemon log quoted when the test failed (0: all).
	LogTail int
}

// LoopDaemon is `portcullis run` on loopback, as a child process.
type LoopDaemon struct {
	Cmd *exec.Cmd
	// Done receives the result of Cmd.Wait once. A test that reads it
	// must send it back for the cleanup.
	Done       chan error
	ConfigPath string
	AdminBase  string // http://127.0.0.1:AdminPort
	Client     *http.Client

	mu   sync.Mutex
	logs bytes.Buffer
}

// Write collects the daemon's stdout and stderr.
func (d *LoopDaemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.Write(p)
}

// Logs is what the daemon has written so far.
func (d *LoopDaemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// StartLoop writes o.Config, runs testbin.Portcullis with `run --config
// FILE` and o.Args until the test ends and waits for GET /readyz to answer
// 200, failing the test early if the daemon exits first. At cleanup it
// stops the daemon and, if the test failed, logs the config file and the
// daemon's log.
func StartLoop(t testing.TB, o LoopOptions) *LoopDaemon {
	t.Helper()
	bin := testbin.Portcullis(t)
	if o.ConfigPath == "" {
		o.ConfigPath = filepath.Join(t.TempDir(), "portcullis.yaml")
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 15 * time.Second
	}
	if o.ReadyPoll == 0 {
		o.ReadyPoll = 20 * time.Millisecond
	}
	ownClient := o.Client == nil
	if ownClient {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Config != "" {
		writeAtomic(t, o.ConfigPath, []byte(o.Config))
	}
	d := &LoopDaemon{
		Done:       make(chan error, 1),
		ConfigPath: o.ConfigPath,
		AdminBase:  fmt.Sprintf("http://127.0.0.1:%d", o.AdminPort),
		Client:     o.Client,
	}
	d.Cmd = exec.Command(bin, append([]string{"run", "--config", o.ConfigPath}, o.Args...)...)
	d.Cmd.Stdout, d.Cmd.Stderr = d, d
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.Done <- d.Cmd.Wait() }()
	t.Cleanup(func() {
		if o.KillAtCleanup {
			d.Cmd.Process.Kill()
			<-d.Done
		} else {
			d.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.Done:
			case <-time.After(5 * time.Second):
				d.Cmd.Process.Kill()
				<-d.Done
			}
		}
		if ownClient {
			d.Client.CloseIdleConnections()
		}
		if t.Failed() {
			logs := d.Logs()
			if o.LogTail > 0 {
				logs = Tail(logs, o.LogTail)
			}
			cfg, _ := os.ReadFile(d.ConfigPath)
			t.Logf("config %s:\n%s\ndaemon log:\n%s", d.ConfigPath, cfg, logs)
		}
	})
	d.waitReady(t, o.ReadyTimeout, o.ReadyPoll)
	return d
}

func (d *LoopDaemon) waitReady(t testing.TB, timeout, poll time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := "no answer yet"
		resp, err := d.Client.Get(d.AdminBase + "/readyz")
		if err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		}
		select {
		case err := <-d.Done:
			d.Done <- err // for the cleanup
			t.Fatalf("daemon exited before it was ready: %v\n%s", err, d.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready after %v; last: %s\n%s", timeout, last, d.Logs())
		}
		time.Sleep(poll)
	}
}

// writeAtomic writes b to path by write-then-rename, so the daemon never
// reads half a file.
func writeAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
