//go:build linux

package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portcullis-lb/portcullis/internal/halab"
	"github.com/portcullis-lb/portcullis/internal/testbin"
)

// The test's own prefix and state folder: a `make lab` running on the
// same machine is never touched.
const testPrefix = "pclabt"

// TestUpFailoverDown is `make lab`, `make lab-failover`, `make lab-down`
// as a user runs them: the real commands, the real daemon.
func TestUpFailoverDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and XDP")
	}
	for bin, pkg := range map[string]string{"curl": "curl", "python3": "python3", "ip": "iproute2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (Debian package %s)", bin, pkg)
		}
	}
	repo := testbin.RepoRoot()
	daemon := testbin.Portcullis(t)
	labBin := filepath.Join(t.TempDir(), "portcullis-lab")
	if out, err := exec.Command("go", "build", "-o", labBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	hostAddr := halab.DefaultHostAddr.String()
	if onLabNet() {
		hostAddr = "none" // a `make lab` already joined this machine to 10.78.0.0/24
		t.Log("this machine already has an address in 10.78.0.0/24 (a `make lab`?): testing without the host link")
	}
	common := []string{"-state", state, "-prefix", testPrefix}
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, labBin, append(args, common...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	var pids []int
	t.Cleanup(func() {
		if out, err := run(time.Minute, "down"); err != nil {
			t.Errorf("down (cleanup): %v\n%s", err, out)
		}
		if left := halab.Leftovers(testPrefix); len(left) > 0 {
			t.Errorf("left after down: %v", left)
		}
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z ") {
					t.Errorf("process %d is still running after down", pid)
				}
			}
		}
	})

	start := time.Now()
	out, err := run(2*time.Minute, "up", "-bin", daemon, "-repo", repo, "-host-addr", hostAddr)
	t.Logf("up (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	st := readState(t, state)
	pids = append(pids, statePIDs(st)...)
	client := st.Namespaces["client"]
	if !strings.Contains(out, "ip netns exec "+client+" curl http://10.78.0.80/") {
		t.Errorf("up does not print the client's curl line")
	}
	if !strings.Contains(out, st.Token) {
		t.Errorf("up does not print the admin token")
	}

	curl := func(ns, url string) string {
		args := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3", url}
		if ns != "" {
			args = append([]string{"netns", "exec", ns, "curl"}, args...)
		}
		name := "curl"
		if ns != "" {
			name = "ip"
		}
		b, _ := exec.Command(name, args...).Output()
		return string(b)
	}
	for _, v := range st.VIPs {
		if code := curl(client, v.URL); code != "200" {
			t.Errorf("client: GET %s (%s) = %q, want 200", v.URL, v.Name, code)
		}
	}
	for _, n := range st.Nodes {
		if hostAddr != "none" {
			if code := curl("", n.Dashboard); code != "200" {
				t.Errorf("this machine: GET %s (%s's dashboard) = %q, want 200", n.Dashboard, n.Name, code)
			}
		}
		if code := curl(n.NS, "http://127.0.0.1:9900/"); code != "200" {
			t.Errorf("%s: GET its dashboard = %q, want 200", n.Name, code)
		}
	}
	// The backends have the DSR settings of vagrant/provision/dsr-backend.sh
	// (packaging/sysctl/dsr-backend-sysctl.conf: rp_filter 2 is set only there).
	for _, be := range st.Backends {
		for key, want := range map[string]string{"all/arp_ignore": "1", "eth0/arp_announce": "2", "eth0/rp_filter": "2"} {
			b, err := exec.Command("ip", "netns", "exec", be.NS, "cat", "/proc/sys/net/ipv4/conf/"+key).Output()
			if got := strings.TrimSpace(string(b)); err != nil || got != want {
				t.Errorf("%s: net.ipv4.conf.%s = %q (%v), want %s", be.Name, strings.ReplaceAll(key, "/", "."), got, err, want)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	out, err = run(time.Minute, "failover", "-for", "4s")
	t.Logf("failover:\n%s", out)
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	m := regexp.MustCompile(`gap: (\d+) ms`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("failover printed no gap")
	}
	if gap, _ := strconv.Atoi(m[1]); gap > 3000 {
		t.Errorf("failover gap %d ms, want under 3 s with the fast profile", gap)
	}
	pids = append(pids, statePIDs(readState(t, state))...)
	if code := curl(client, "http://10.78.0.80/"); code != "200" {
		t.Errorf("client after the failover: GET http://10.78.0.80/ = %q, want 200", code)
	}

	out, err = run(time.Minute, "down")
	t.Logf("down:\n%s", out)
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	if left := halab.Leftovers(testPrefix); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state folder still there after down (%v)", err)
	}
	if out, err := run(time.Minute, "down"); err != nil {
		t.Errorf("second down: %v\n%s", err, out)
	}
	t.Logf("up, failover, down: %s", time.Since(start).Round(time.Millisecond))
}

func readState(t *testing.T, dir string) halab.State {
	t.Helper()
	var st halab.State
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func statePIDs(st halab.State) []int {
	pids := []int{st.Supervisor}
	for _, n := range st.Nodes {
		pids = append(pids, n.PID)
	}
	for _, b := range st.Backends {
		pids = append(pids, b.PID)
	}
	return pids
}

// onLabNet reports whether this machine has an address in the lab's
// subnet already.
func onLabNet() bool {
	addrs, _ := netlink.AddrList(nil, netlink.FAMILY_V4)
	lab := halab.DefaultHostAddr.Masked()
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && lab.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}
