//go:build linux

package halab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/cluster/e2e"
)

const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = 300 * time.Millisecond
	probeBefore  = 500 * time.Millisecond
)

// failover is LAB.md's crash of the VIP owner (link down, kill -9) while
// the client opens a new connection to the http VIP every 20 ms; it
// prints what the client saw, then brings the node back.
func (s *supervisor) failover(w io.Writer, window time.Duration) error {
	owner, err := s.settled(20 * time.Second)
	if err != nil {
		return fmt.Errorf("before the crash: %w", err)
	}
	d := s.daemon(owner)
	h := d.Host
	url := fmt.Sprintf("http://%s/", VIPHTTP)
	fmt.Fprintf(w, "VIP owner: %s (%s, namespace %s, pid %d)\n", s.nodes[owner], h.IPv4(), h.NSName, d.Proc.PID())
	fmt.Fprintf(w, "client %s: a new connection to %s every %s (timeout %s) for %s\n",
		s.lab.Client.NSName, url, probeEvery, probeTimeout, probeBefore+window)

	byAddr := map[string]string{}
	for host, n := range s.nodes {
		if hh := s.nl.Host(host); hh != nil {
			byAddr[hh.IPv4().String()] = n
		}
	}
	tr := &http.Transport{DialContext: s.lab.Client.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: probeTimeout}
	// Each probe is a new HTTP connection; Who is "be2 via lb-b".
	prober := e2e.StartProbing(probeEvery, func(context.Context) (string, error) { return get(hc, url, byAddr) })
	time.Sleep(probeBefore)
	crashAt := time.Now()
	crashErr := d.Crash()
	if crashErr == nil {
		fmt.Fprintf(w, "crash of %s: link down + kill -9 (+0 ms)\n", s.nodes[owner])
	}
	time.Sleep(window)
	probes := prober.Stop()
	if crashErr != nil {
		return fmt.Errorf("crash %s: %w", s.nodes[owner], crashErr)
	}
	fmt.Fprintf(w, "\nthe client's view (start of each new connection, relative to the crash):\n")
	printRuns(w, probes, crashAt)
	failed := 0
	for _, p := range probes {
		if p.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(w, "\n%d connections, %d failed\n", len(probes), failed)
	first, gap, served := e2e.FirstOKAfter(probes, crashAt)
	if !served {
		fmt.Fprintf(w, "gap: no connection succeeded within %s of the crash\n", window)
	} else {
		fmt.Fprintf(w, "gap: %d ms (crash → first new connection served, by %s)\n", gap.Milliseconds(), first.Who)
	}

	// Bring the node back: link up, a fresh daemon. preempt is false in
	// the ha-pair files, so the VIPs stay where they are.
	fmt.Fprintf(w, "\nbringing %s back: link up, restart\n", s.nodes[owner])
	if err := h.SetLinkUp(); err != nil {
		return err
	}
	back := time.Now()
	if err := s.startDaemon(h); err != nil {
		return err
	}
	s.writeState()
	now, err := s.settled(30 * time.Second)
	if err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	fmt.Fprintf(w, "%s is back (pid %d) after %d ms; both nodes alive and healthy; VIP owner: %s\n",
		s.nodes[owner], s.daemon(owner).Proc.PID(), time.Since(back).Milliseconds(), s.nodes[now])
	who, err := get(hc, url, byAddr)
	if err != nil {
		return fmt.Errorf("GET %s after the failover: %w", url, err)
	}
	fmt.Fprintf(w, "GET %s → 200 from %s\n", url, who)
	if !served {
		return errors.New("no connection succeeded after the crash")
	}
	return nil
}

// get fetches url and returns "BACKEND via NODE" from the backend's answer
// ("be2 from 10.78.0.3": the proxy that connected to it).
func get(hc *http.Client, url string, byAddr map[string]string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	be, from, ok := strings.Cut(strings.TrimSpace(string(b)), " from ")
	if !ok {
		return strings.TrimSpace(string(b)), nil
	}
	if n, ok := byAddr[from]; ok {
		from = n
	}
	return be + " via " + from, nil
}

// printRuns prints the probes as runs of successes and failures.
func printRuns(w io.Writer, probes []e2e.Probe, crashAt time.Time) {
	rel := func(t time.Time) string { return fmt.Sprintf("%+6d ms", t.Sub(crashAt).Milliseconds()) }
	for i := 0; i < len(probes); {
		ok := probes[i].Err == nil
		j := i
		counts := map[string]int{}
		for j < len(probes) && (probes[j].Err == nil) == ok {
			if ok {
				counts[probes[j].Who]++
			} else {
				counts[errKind(probes[j].Err)]++
			}
			j++
		}
		var parts []string
		for k, n := range counts {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(parts)
		what := "200"
		if !ok {
			what = "FAILED"
		}
		fmt.Fprintf(w, "  %s … %s  %3d × %-6s %s\n", rel(probes[i].Start), rel(probes[j-1].Start), j-i, what, strings.Join(parts, ", "))
		i = j
	}
}

func errKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "Timeout") || strings.Contains(s, "timeout") || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(s, "refused"):
		return "refused"
	case strings.Contains(s, "reset"):
		return "reset"
	case strings.Contains(s, "no route") || strings.Contains(s, "unreachable"):
		return "unreachable"
	}
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}
