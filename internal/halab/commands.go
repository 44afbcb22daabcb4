//go:build linux

package halab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// ErrNotUp is returned by Failover and Status when no lab runs.
var ErrNotUp = errors.New("the lab is not up (make lab)")

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, XDP): run it with sudo")
	}
	return nil
}

// Up builds and starts the lab in a supervisor process and returns once
// the pair has settled, printing how to reach everything. If the lab is
// already up it prints that and returns nil. A failed `up` removes what
// it made (Down) and returns the supervisor's error.
func Up(o Options) error {
	o.defaults()
	if err := needRoot(); err != nil {
		return err
	}
	if st, ok := running(o); ok {
		fmt.Fprintf(o.Out, "the lab is already up (supervisor pid %d)\n\n", st.Supervisor)
		printSummary(o.Out, st)
		return nil
	}
	repo, err := FindRepo(o.Repo)
	if err != nil {
		return err
	}
	if o.Bin == "" {
		o.Bin = filepath.Join(repo, "bin", "portcullis")
	}
	if o.Bin, err = filepath.Abs(o.Bin); err != nil {
		return err
	}
	if fi, err := os.Stat(o.Bin); err != nil || fi.IsDir() {
		return fmt.Errorf("no portcullis binary at %s: run `make build` first, or pass -bin", o.Bin)
	}
	// What a dead supervisor or a failed up left.
	down(o, io.Discard)
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(o.StateDir, "supervisor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	args := []string{"serve", "-state", o.StateDir, "-prefix", o.Prefix, "-bin", o.Bin, "-repo", repo, "-xdp", o.XDPMode,
		"-host-addr", hostAddrFlag(o)}
	cmd := exec.Command(self, args...)
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}                      // fd 3: "ready" or "error: ..."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this command and its terminal
	fmt.Fprintf(o.Out, "starting the lab (prefix %s, state in %s) ...\n", o.Prefix, o.StateDir)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return err
	}
	pw.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	msg := make(chan string, 1)
	go func() {
		// One line: "ready" or "error: ..." (with indented continuation
		// lines); EOF if the supervisor died.
		b, _ := io.ReadAll(pr)
		msg <- string(b)
	}()
	var got string
	select {
	case got = <-msg:
	case <-time.After(2 * time.Minute):
		got = "error: not ready after 2 minutes"
	}
	pr.Close()
	if strings.TrimSpace(got) != "ready" {
		if got == "" {
			got = "the supervisor exited without a word"
		}
		logb, _ := os.ReadFile(logPath)
		fmt.Fprintf(o.Out, "up failed: %s\nsupervisor log (%s), last lines:\n%s\n", strings.TrimSpace(got), logPath, tailLines(string(logb), 30))
		// The supervisor closes what it built before it exits; then
		// down removes anything that is left.
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		down(o, o.Out)
		return errors.New("up failed")
	}
	st, err := readState(o.StateDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "up in %.1f s\n\n", time.Since(start).Seconds())
	printSummary(o.Out, st)
	return nil
}

func hostAddrFlag(o Options) string {
	if !o.HostAddr.IsValid() {
		return "none"
	}
	return o.HostAddr.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func printSummary(w io.Writer, st State) {
	ns := func(h string) string { return st.Namespaces[h] }
	fmt.Fprintf(w, "Portcullis HA lab %s (configs/ha-pair on namespaces; docs/lab.md)\n\n", st.Lab)
	fmt.Fprintf(w, "  client %-10s ─┐\n", "10.78.0.10")
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %-6s %-10s ─┤  (%s)\n", n.Name, n.Addr, n.NS)
	}
	for _, b := range st.Backends {
		fmt.Fprintf(w, "  %-6s %-10s ─┤  DSR backend, VIP %s on lo\n", b.Name, b.Addr, VIPTCP)
	}
	fmt.Fprintf(w, "  witness %-9s ─┤  (ARP witness)\n", "10.78.0.50")
	if st.HostLink != "" {
		fmt.Fprintf(w, "  this machine %s on %s ─┘  bridge br0 in %s\n", st.HostAddr, st.HostLink, ns("bridge"))
	} else {
		fmt.Fprintf(w, "  bridge br0 in %s ─┘\n", ns("bridge"))
	}
	fmt.Fprintf(w, "\nThe VIPs, from the client:\n")
	for _, v := range st.VIPs {
		note := "L7 proxy of both nodes → be1/be2:8080"
		if v.Name == "tcp-443" {
			note = "XDP, L2 DSR straight to be1-be3 (plain HTTP on 443 here)"
		}
		fmt.Fprintf(w, "  %-8s ip netns exec %s curl %s\t# %s\n", v.Name, ns("client"), v.URL, note)
	}
	fmt.Fprintf(w, "\nDashboards:\n")
	for _, n := range st.Nodes {
		if st.HostLink != "" {
			fmt.Fprintf(w, "  %s  %s\t(open it in a browser on this machine)\n", n.Name, n.Dashboard)
		} else {
			fmt.Fprintf(w, "  %s  ip netns exec %s curl http://127.0.0.1:%d/\n", n.Name, n.NS, adminPort)
		}
	}
	fmt.Fprintf(w, "\nAdmin token: %s  (%s)\n", st.Token, st.TokenFile)
	if len(st.Nodes) > 0 {
		fmt.Fprintf(w, "  e.g. curl -X POST -H 'Authorization: Bearer %s' http://%s:%d/api/v1/reload\n", st.Token, st.Nodes[0].Addr, adminPort)
	}
	fmt.Fprintf(w, "\nConfigs and logs: %s   Status: portcullis-lab status\n", st.Dir)
	fmt.Fprintf(w, "Next: make lab-failover (crash the VIP owner), make lab-down (remove everything)\n")
}

func readState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// running returns the state if its supervisor is alive.
func running(o Options) (State, bool) {
	st, err := readState(o.StateDir)
	if err != nil || !isSupervisor(st.Supervisor, o.StateDir) {
		return st, false
	}
	return st, true
}

// isSupervisor reports whether pid is a `portcullis-lab serve` of dir.
func isSupervisor(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	hasServe, hasDir := false, false
	for i, a := range args {
		if a == "serve" {
			hasServe = true
		}
		if a == "-state" && i+1 < len(args) && args[i+1] == dir {
			hasDir = true
		}
	}
	return hasServe && hasDir
}

func control(dir string, timeout time.Duration) *http.Client {
	sock := filepath.Join(dir, socketFile)
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// Failover asks the supervisor to crash the VIP owner and copies the
// client's view to o.Out. window bounds the probing after the crash.
func Failover(o Options, window time.Duration) error {
	o.defaults()
	if err := needRoot(); err != nil {
		return err
	}
	if _, ok := running(o); !ok {
		return ErrNotUp
	}
	resp, err := control(o.StateDir, window+2*time.Minute).Post(fmt.Sprintf("http://lab/failover?for=%s", window), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("failover: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		last = sc.Text()
		fmt.Fprintln(o.Out, last)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if last != "OK" {
		return errors.New("failover did not complete")
	}
	return nil
}

// Status prints the lab's state and each node's view of the cluster.
func Status(o Options) error {
	o.defaults()
	if err := needRoot(); err != nil {
		return err
	}
	st, ok := running(o)
	if !ok {
		left := leftovers(o.Prefix)
		if len(left) > 0 {
			fmt.Fprintf(o.Out, "the lab is not up, but these are left (make lab-down removes them): %s\n", strings.Join(left, " "))
		}
		return ErrNotUp
	}
	resp, err := control(o.StateDir, 10*time.Second).Get("http://lab/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct {
		Views map[string]json.RawMessage `json:"views"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return err
	}
	printSummary(o.Out, st)
	fmt.Fprintf(o.Out, "\nprocesses: supervisor %d", st.Supervisor)
	for _, n := range st.Nodes {
		fmt.Fprintf(o.Out, ", %s %d", n.Name, n.PID)
	}
	for _, b := range st.Backends {
		fmt.Fprintf(o.Out, ", %s %d", b.Name, b.PID)
	}
	fmt.Fprintln(o.Out)
	for _, n := range st.Nodes {
		var cv struct {
			Members []struct {
				Name    string   `json:"name"`
				State   string   `json:"state"`
				Healthy bool     `json:"healthy"`
				Holds   []string `json:"holds"`
			} `json:"members"`
			Owners map[string]string `json:"owners"`
		}
		raw := v.Views[n.Name]
		if err := json.Unmarshal(raw, &cv); err != nil {
			fmt.Fprintf(o.Out, "%s: %s\n", n.Name, strings.Trim(string(raw), `"`))
			continue
		}
		var ms []string
		for _, m := range cv.Members {
			ms = append(ms, fmt.Sprintf("%s %s healthy=%v holds=%v", m.Name, m.State, m.Healthy, m.Holds))
		}
		fmt.Fprintf(o.Out, "%s sees: owners %v; %s\n", n.Name, cv.Owners, strings.Join(ms, "; "))
	}
	return nil
}

// Down stops the lab and removes everything it made; safe to run twice
// and after a failed up.
func Down(o Options) error {
	o.defaults()
	if err := needRoot(); err != nil {
		return err
	}
	return down(o, o.Out)
}

func down(o Options, w io.Writer) error {
	st, _ := readState(o.StateDir)
	if isSupervisor(st.Supervisor, o.StateDir) {
		fmt.Fprintf(w, "stopping lab %s (supervisor pid %d) ...\n", st.Lab, st.Supervisor)
		if resp, err := control(o.StateDir, 5*time.Second).Post("http://lab/down", "", nil); err == nil {
			resp.Body.Close()
		} else {
			syscall.Kill(st.Supervisor, syscall.SIGTERM)
		}
		deadline := time.Now().Add(20 * time.Second)
		for isSupervisor(st.Supervisor, o.StateDir) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if isSupervisor(st.Supervisor, o.StateDir) {
			fmt.Fprintf(w, "the supervisor did not stop: kill -9 %d\n", st.Supervisor)
			syscall.Kill(st.Supervisor, syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The supervisor's lock is gone with it: Cleanup removes whatever the
	// lab left (processes in its namespaces, namespaces, the host link).
	var errs []error
	if err := netlab.Cleanup(o.Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(o.StateDir); err != nil {
		errs = append(errs, err)
	}
	if left := leftovers(o.Prefix); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still there: %s", strings.Join(left, " ")))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if st.Lab != "" {
		fmt.Fprintf(w, "lab %s removed: no namespace, link or process of prefix %s is left\n", st.Lab, o.Prefix)
	} else {
		fmt.Fprintf(w, "no lab of prefix %s is left\n", o.Prefix)
	}
	return nil
}

// leftovers lists the namespaces, links of this namespace and netlab lock
// files of labs of prefix (a lab name is prefix + 6 hex digits).
func leftovers(prefix string) []string {
	isLab := func(name string) bool {
		if !strings.HasPrefix(name, prefix) || len(name) < len(prefix)+6 {
			return false
		}
		_, err := strconv.ParseUint(name[len(prefix):len(prefix)+6], 16, 32)
		return err == nil && strings.ToLower(name[len(prefix):len(prefix)+6]) == name[len(prefix):len(prefix)+6]
	}
	var out []string
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if isLab(e.Name()) {
				out = append(out, "netns:"+e.Name())
			}
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if isLab(l.Attrs().Name) {
				out = append(out, "link:"+l.Attrs().Name)
			}
		}
	}
	if ents, err := os.ReadDir("/run/netlab"); err == nil {
		for _, e := range ents {
			if isLab(e.Name()) {
				out = append(out, "lock:/run/netlab/"+e.Name())
			}
		}
	}
	return out
}

// Leftovers is leftovers for tests and `status`.
func Leftovers(prefix string) []string { return leftovers(prefix) }
