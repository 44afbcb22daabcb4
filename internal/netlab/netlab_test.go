//go:build linux

package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var (
	a4 = netip.MustParsePrefix("10.99.0.1/24")
	a6 = netip.MustParsePrefix("fd99::1/64")
	b4 = netip.MustParsePrefix("10.99.0.2/24")
	b6 = netip.MustParsePrefix("fd99::2/64")
)

func twoHosts(t *testing.T) (*Lab, *Host, *Host) {
	t.Helper()
	l := New(t, Options{})
	return l, l.AddHost("a", a4, a6), l.AddHost("b", b4, b6)
}

func TestDoRunsInNamespace(t *testing.T) {
	t.Parallel()
	_, a, _ := twoHosts(t)
	err := a.Do(func() error {
		lk, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if lk.Attrs().HardwareAddr.String() != a.MAC.String() {
			return fmt.Errorf("eth0 in Do has MAC %s, want %s", lk.Attrs().HardwareAddr, a.MAC)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.MAC.String() != "02:50:43:00:00:00" {
		t.Errorf("MAC of first host = %s", a.MAC)
	}
	// Panics cross back to the caller.
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want boom", p)
			}
		}()
		a.Do(func() error { panic("boom") })
	}()
	// The caller's thread pool is not left in the namespace: many Do calls
	// later, a plain netlink call still sees the root namespace (no "p0-a"
	// there, and no eth0 with the lab's MAC).
	for range 20 {
		a.Do(func() error { return nil })
	}
	if lk, err := netlink.LinkByName("eth0"); err == nil && lk.Attrs().HardwareAddr.String() == a.MAC.String() {
		t.Error("caller ended up in the host's namespace")
	}
}

func TestTCP(t *testing.T) {
	t.Parallel()
	_, a, b := twoHosts(t)
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", a.IPv4().String()},
		{"tcp6", a.IPv6().String()},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln, err := a.Listen(tc.network, net.JoinHostPort(tc.addr, "0"))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				fmt.Fprintf(c, "hello %s\n", c.RemoteAddr())
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := b.Dial(ctx, tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			src := b.IPv4()
			if tc.network == "tcp6" {
				src = b.IPv6()
			}
			if !strings.Contains(line, src.String()) {
				t.Errorf("server saw %q, want a connection from %s", line, src)
			}
		})
	}
}

func TestHTTPClient(t *testing.T) {
	t.Parallel()
	_, a, b := twoHosts(t)
	ln, err := a.Listen("tcp", "[::]:8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "from a to %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, u := range []string{"http://10.99.0.1:8080/", "http://[fd99::1]:8080/"} {
		resp, err := b.HTTPClient().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "from a") {
			t.Errorf("GET %s: %d %q", u, resp.StatusCode, body)
		}
	}
}

func TestProcesses(t *testing.T) {
	t.Parallel()
	l, a, _ := twoHosts(t)
	out, err := a.Run(context.Background(), "ip", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "10.99.0.1/24") || !strings.Contains(string(out), "fd99::1/64") {
		t.Errorf("ip addr in a: %s", out)
	}
	if strings.Contains(string(out), "tentative") {
		t.Errorf("IPv6 address still tentative (DAD not off): %s", out)
	}
	if _, err := a.Run(context.Background(), "sh", "-c", "exit 3"); err == nil {
		t.Error("Run of a failing command returned no error")
	}

	p := a.Start(t, "sh", "-c", "ip -o link show; echo ready; exec sleep 60")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Logs(), "ready") {
		if p.Exited() {
			t.Fatalf("process exited early: %v; logs: %q", p.Wait(), p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output; logs: %q", p.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	logs := p.Logs()
	if !strings.Contains(logs, "eth0@") || !strings.Contains(logs, a.MAC.String()) {
		t.Errorf("process does not see the namespace's eth0:\n%s", logs)
	}
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.PID())); err != nil || ns != nsLink(t, a) {
		t.Errorf("process netns %q (%v), want %q", ns, err, nsLink(t, a))
	}
	// Regression: Pdeathsig is tied to the forking thread, and Go destroys
	// a thread whenever a goroutine exits locked to it. Throw away many
	// threads; the process must survive.
	for range 200 {
		done := make(chan struct{})
		go func() { runtime.LockOSThread(); close(done) }()
		<-done
		a.Do(func() error { return nil })
	}
	time.Sleep(20 * time.Millisecond)
	if p.Exited() {
		t.Fatalf("sleep exited early: %v", p.Wait())
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Close did not stop the process")
	}
	var ee *exec.ExitError
	if err := p.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("Wait = %v, want killed by SIGTERM", err)
	}
	t.Logf("Close with one process took %v", time.Since(start))
}

func nsLink(t *testing.T, h *Host) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.NS), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

func TestDSRBackend(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	be := l.AddHost("be1", b4, b6)
	vip4, vip6 := netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("fd99::100")
	if err := be.MakeDSRBackend(vip4); err != nil {
		t.Fatal(err)
	}
	if err := be.MakeDSRBackend(vip6); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"net.ipv4.conf.all.arp_ignore":    "1",
		"net.ipv4.conf.eth0.arp_ignore":   "1",
		"net.ipv4.conf.all.arp_announce":  "2",
		"net.ipv4.conf.eth0.arp_announce": "2",
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.eth0.rp_filter":    "0",
		"net.ipv6.conf.eth0.accept_dad":   "0",
	} {
		got, err := be.SysctlGet(k)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	lo, err := be.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := be.Handle().AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, a := range addrs {
		have = append(have, a.IPNet.String())
	}
	for _, want := range []string{"10.99.0.100/32", "fd99::100/128"} {
		found := false
		for _, h := range have {
			found = found || h == want
		}
		if !found {
			t.Errorf("lo addresses %v: no %s", have, want)
		}
	}
	// The sysctls were written in the namespace, not in ours.
	root, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_announce")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(root)) == "2" {
		t.Log("note: arp_announce is 2 in the root namespace too (set by someone else?)")
	}
	if _, err := be.SysctlGet("net.ipv4.conf.nosuchdev.arp_ignore"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing sysctl: err = %v, want ErrNotExist", err)
	}
}

func TestXDPPass(t *testing.T) {
	t.Parallel()
	l, a, b := twoHosts(t)
	if err := a.DisableTxOffload(); err != nil {
		t.Fatal(err)
	}
	if on, err := a.TxOffload("eth0"); err != nil || on {
		t.Errorf("tx offload after DisableTxOffload = %v, %v", on, err)
	}
	if on, err := b.TxOffload("eth0"); err != nil || !on {
		t.Errorf("tx offload on b = %v, %v; want on (veth default)", on, err)
	}
	xdpState := func(h *Host) *netlink.LinkXdp {
		lk, err := l.Bridge.Handle().LinkByName(h.Peer)
		if err != nil {
			t.Fatal(err)
		}
		if lk.Attrs().Xdp == nil {
			return &netlink.LinkXdp{}
		}
		return lk.Attrs().Xdp
	}
	c, err := a.AttachXDPPass()
	if err != nil {
		t.Fatal(err)
	}
	if x := xdpState(a); !x.Attached || x.AttachMode != nl.XDP_ATTACHED_DRV {
		t.Errorf("after attach: %+v, want attached in driver mode", x)
	}
	// Traffic still flows through the peer's program.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln, err := a.Listen("tcp", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	conn, err := b.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if x := xdpState(a); x.Attached {
		t.Errorf("after Close: %+v, want detached", x)
	}

	// A second attachment is removed by Lab.Close.
	c2, err := b.AttachXDPPass()
	if err != nil {
		t.Fatal(err)
	}
	info, err := c2.(*XDPAttachment).Program.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Skip("no program IDs")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			break
		}
		p.Close()
		if time.Now().After(deadline) {
			t.Fatalf("program %d still exists after Lab.Close", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	l, a, b := twoHosts(t)
	nsNames := []string{a.NSName, b.NSName, l.Bridge.NSName}
	peers := []string{a.Peer, b.Peer}
	// Keep the bridge namespace open past Close to look inside it.
	fd, err := unix.Dup(int(l.Bridge.NS))
	if err != nil {
		t.Fatal(err)
	}
	brNS := netns.NsHandle(fd)
	defer brNS.Close()
	a.Start(t, "sleep", "60")
	aNS := nsLink(t, a)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// No thread or descriptor of ours keeps a host namespace alive.
	for _, pat := range []string{"/proc/self/task/*/ns/net", "/proc/self/fd/*"} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			if l, _ := os.Readlink(p); l == aNS {
				t.Errorf("%s still refers to host a's namespace", p)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, n := range nsNames {
		if h, err := netns.GetFromName(n); err == nil {
			h.Close()
			t.Errorf("namespace %s still exists", n)
		}
	}
	for _, n := range append(peers, BridgeName) {
		if _, err := netlink.LinkByName(n); err == nil && n != BridgeName {
			t.Errorf("link %s in the root namespace", n)
		}
	}
	h, err := netlink.NewHandleAt(brNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range links {
		if lk.Attrs().Name != "lo" {
			t.Errorf("link %s left in the bridge namespace", lk.Attrs().Name)
		}
	}
	if _, err := os.Stat(filepath.Join(lockDir, l.Name+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file: %v", err)
	}
	if _, err := a.Listen("tcp", ":0"); err == nil {
		t.Error("Listen works after Close")
	}
}

const crashPrefix = "nlcrash"

// TestCrashHelper is run by TestCleanupAfterCrash in a child process: it
// builds a lab, starts a process that would survive it, and dies without
// cleaning up.
func TestCrashHelper(t *testing.T) {
	if os.Getenv("NETLAB_CRASH_HELPER") != "1" {
		t.Skip("helper for TestCleanupAfterCrash")
	}
	l := New(t, Options{Prefix: crashPrefix})
	a := l.AddHost("a", a4)
	l.AddHost("b", b4)
	// Not Start: a process without Pdeathsig, like one started by a tool
	// inside the namespace, which outlives the test binary.
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LAB %s %d\n", l.Name, cmd.Process.Pid)
	os.Exit(3)
}

func TestCleanupAfterCrash(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root")
	}
	t.Parallel()
	// A live lab of the same prefix must survive Cleanup.
	live := New(t, Options{Prefix: crashPrefix})
	liveHost := live.AddHost("x", a4)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NETLAB_CRASH_HELPER=1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var name string
	var pid int
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "LAB" {
			name = f[1]
			pid, _ = strconv.Atoi(f[2])
		}
	}
	if name == "" {
		t.Fatalf("no LAB line in helper output:\n%s", out)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	leftovers := []string{name + "-a", name + "-b", name + "-bridge"}
	for _, n := range leftovers {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err != nil {
			t.Fatalf("crashed run left no namespace %s: %v", n, err)
		}
	}
	if !processAlive(pid) {
		t.Fatalf("helper's sleep %d is not running", pid)
	}

	if err := Cleanup(crashPrefix); err != nil {
		t.Fatal(err)
	}
	for _, n := range leftovers {
		if _, err := os.Stat(filepath.Join(netnsDir, n)); err == nil {
			t.Errorf("namespace %s survived Cleanup", n)
		}
	}
	if _, err := os.Stat(filepath.Join(lockDir, name+".lock")); err == nil {
		t.Error("lock file survived Cleanup")
	}
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d in the crashed lab survived Cleanup", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The live lab is untouched.
	if _, err := os.Stat(filepath.Join(netnsDir, liveHost.NSName)); err != nil {
		t.Errorf("Cleanup removed a live lab: %v", err)
	}
	if _, err := liveHost.Run(context.Background(), "true"); err != nil {
		t.Errorf("live lab broken: %v", err)
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	for _, n := range []string{"", "bridge", "Bad", "a-b", "a/b"} {
		if _, err := l.NewHost(n); err == nil {
			t.Errorf("NewHost(%q) succeeded", n)
		}
	}
	if _, err := l.NewHost("dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.NewHost("dup"); err == nil {
		t.Error("duplicate host accepted")
	}
	if _, err := Create(Options{Prefix: "TooLongPrefix"}); err == nil {
		t.Error("bad prefix accepted")
	}
	h, err := l.NewHost("a_very_long_host_name_here")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Peer) > 15 {
		t.Errorf("peer name %q longer than 15", h.Peer)
	}
}
