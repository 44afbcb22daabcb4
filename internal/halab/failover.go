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
	"sync"
	"time"
)

const (
	probeEvery   = 20 * time.Millisecond
	probeTimeout = 300 * time.Millisecond
	probeBefore  = 500 * time.Millisecond
)

// probe is one new HTTP connection from the client to the http VIP.
type probe struct {
	start, end time.Time
	who        string // "be2 via lb-b"
	err        error
}

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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{DialContext: s.lab.Client.Dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: probeTimeout}
	var mu sync.Mutex
	var probes []probe
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			wg.Go(func() {
				p := probe{start: time.Now()}
				p.who, p.err = get(hc, url, byAddr)
				p.end = time.Now()
				mu.Lock()
				probes = append(probes, p)
				mu.Unlock()
			})
		}
	})
	time.Sleep(probeBefore)
	crashAt := time.Now()
	crashErr := d.Crash()
	if crashErr == nil {
		fmt.Fprintf(w, "crash of %s: link down + kill -9 (+0 ms)\n", s.nodes[owner])
	}
	time.Sleep(window)
	cancel()
	wg.Wait()
	if crashErr != nil {
		return fmt.Errorf("crash %s: %w", s.nodes[owner], crashErr)
	}
	sort.Slice(probes, func(i, j int) bool { return probes[i].start.Before(probes[j].start) })

	fmt.Fprintf(w, "\nthe client's view (start of each new connection, relative to the crash):\n")
	printRuns(w, probes, crashAt)
	failed := 0
	var first *probe
	for i := range probes {
		p := &probes[i]
		if p.err != nil {
			failed++
		} else if !p.start.Before(crashAt) && (first == nil || p.end.Before(first.end)) {
			first = p
		}
	}
	fmt.Fprintf(w, "\n%d connections, %d failed\n", len(probes), failed)
	if first == nil {
		fmt.Fprintf(w, "gap: no connection succeeded within %s of the crash\n", window)
	} else {
		fmt.Fprintf(w, "gap: %d ms (crash → first new connection served, by %s)\n", first.end.Sub(crashAt).Milliseconds(), first.who)
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
	if first == nil {
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
func printRuns(w io.Writer, probes []probe, crashAt time.Time) {
	rel := func(t time.Time) string { return fmt.Sprintf("%+6d ms", t.Sub(crashAt).Milliseconds()) }
	for i := 0; i < len(probes); {
		ok := probes[i].err == nil
		j := i
		counts := map[string]int{}
		for j < len(probes) && (probes[j].err == nil) == ok {
			if ok {
				counts[probes[j].who]++
			} else {
				counts[errKind(probes[j].err)]++
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
		fmt.Fprintf(w, "  %s … %s  %3d × %-6s %s\n", rel(probes[i].start), rel(probes[j-1].start), j-i, what, strings.Join(parts, ", "))
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
