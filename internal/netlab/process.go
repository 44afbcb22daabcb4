//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Commands run by Run and Start are forked from a thread that is inside
// the namespace (setns, then fork+exec), so they need no helper binary, no
// /run/netns name and no mount namespace. Unlike `ip netns exec`, /sys is
// not remounted: /sys/class/net shows the caller's interfaces. Tools that
// use netlink or ioctls (ip, ethtool, ss, tcpdump, the daemon) see the
// namespace; those that read /sys/class/net do not (use
// `ip netns exec <Host.NSName> ...` for those).
//
// Children get SIGKILL when their parent *thread* dies (Pdeathsig), so that
// nothing outlives a crashed test binary. Linux ties Pdeathsig to the
// thread that forked, not to the process, and Go destroys a thread whenever
// a goroutine exits while locked to it (netns.NewNamed's callers, netlink
// handles, Do's error path all do that). Forking from Do's borrowed thread
// therefore killed processes at random moments, when a later goroutine
// reused and threw away that thread. All forks are thus done by one
// goroutine locked forever to its own thread (the forker), which never
// exits while the process lives.

type forkReq struct {
	ns   netns.NsHandle
	cmd  *exec.Cmd
	done chan error
}

var (
	forkOnce sync.Once
	forkCh   chan forkReq
)

func forker() {
	runtime.LockOSThread() // never unlocked: this thread only forks
	orig, origErr := netns.Get()
	for r := range forkCh {
		if err := netns.Set(r.ns); err != nil {
			r.done <- fmt.Errorf("enter netns: %w", err)
			continue
		}
		err := r.cmd.Start()
		// Go back, or this thread would keep the lab's namespace alive
		// after Lab.Close. (If that fails the next fork still enters its
		// own namespace first, so nothing runs in the wrong one.)
		if origErr == nil {
			netns.Set(orig)
		}
		r.done <- err
	}
}

// command builds a command for the namespace. Run passes its context
// (the command dies with it); a long-running process (StartProcess) passes
// context.Background() and is stopped by the lab instead.
func (h *Host) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// startIn starts cmd with the forking thread inside the namespace.
func (h *Host) startIn(cmd *exec.Cmd) error {
	if h.NS < 0 {
		return fmt.Errorf("host %s is closed", h.Name)
	}
	forkOnce.Do(func() {
		forkCh = make(chan forkReq)
		go forker()
	})
	done := make(chan error, 1)
	forkCh <- forkReq{ns: h.NS, cmd: cmd, done: done}
	return <-done
}

// Run runs a command inside the namespace and returns its combined stdout
// and stderr. On failure the error includes the command and the output's
// last lines. ctx cancellation kills the command's process group.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	cmd := h.command(ctx, name, args...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := h.startIn(cmd); err != nil {
		return nil, fmt.Errorf("netlab: %s: %s: %w", h.Name, name, err)
	}
	err := cmd.Wait()
	if err != nil {
		return out.Bytes(), fmt.Errorf("netlab: %s: %s %q: %w: %s", h.Name, name, args, err, tail(out.Bytes(), 512))
	}
	return out.Bytes(), nil
}

// Process is a long-running command started in a namespace by Start or
// StartProcess. It is its own process group leader; Kill and Stop signal
// the whole group.
type Process struct {
	Name    string // command name
	Host    *Host
	Cmd     *exec.Cmd
	LogPath string // stdout and stderr, interleaved

	log     *os.File
	done    chan struct{}
	waitErr error
	stopped atomic.Bool
	stopMu  sync.Mutex
}

// PID returns the process id (also its process group id).
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Kill sends sig to the process group. After the process has exited it
// returns os.ErrProcessDone.
func (p *Process) Kill(sig syscall.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return syscall.Kill(-p.PID(), sig)
}

// Wait waits for the process to exit and returns its exit error (as
// exec.Cmd.Wait). It may be called any number of times.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Logs returns what the process wrote to stdout and stderr so far.
func (p *Process) Logs() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL to the group and waits. It returns
// the exit error of the process. Safe to call more than once.
func (p *Process) Stop(grace time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	p.stopped.Store(true)
	pgid := p.PID()
	if !p.Exited() {
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Also reaches children that outlived the leader.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	if p.log != nil {
		p.log.Close()
	}
	return p.waitErr
}

func stopAll(procs []*Process, grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Stop(grace) })
	}
	wg.Wait()
}

var procSeq atomic.Int64

// Start starts a long-running command in the namespace for a test: its
// own process group, stdout+stderr to a file in t.TempDir() (Logs), and a
// t.Cleanup that stops it (SIGTERM, SIGKILL after Options.StopGrace) and,
// if the test failed, logs the end of its output. Lab.Close also stops it.
// Errors fail the test.
func (h *Host) Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s-%d.log", h.Name, filepath.Base(name), procSeq.Add(1)))
	p, err := h.StartProcess(logPath, name, args...)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		p.Stop(h.lab.opts.StopGrace)
		if t.Failed() {
			t.Logf("netlab: %s %s (pid %d) output, last 4 KiB:\n%s", h.Name, name, p.PID(), tail([]byte(p.Logs()), 4096))
		}
	})
	return p
}

// StartProcess is Start without a testing.TB: output goes to logPath
// (created or truncated) and Lab.Close stops the process.
func (h *Host) StartProcess(logPath, name string, args ...string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := h.command(context.Background(), name, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	if err := h.startIn(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", h.Name, name, err)
	}
	p := &Process{Name: name, Host: h, Cmd: cmd, LogPath: logPath, log: f, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := h.lab.track("proc", p); err != nil {
		p.Stop(0)
		return nil, err
	}
	return p, nil
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
