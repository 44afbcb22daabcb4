package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
)

// eventually polls cond every poll until it holds or timeout passes, and
// returns how long it took. On timeout it fails the test with what cond
// last said.
func eventually(t testing.TB, what string, timeout, poll time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last: %s", what, timeout, last)
		}
		time.Sleep(poll)
	}
}

// getJSON decodes a 200 answer of url into v.
func getJSON(c *http.Client, url string, v any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics is one scrape of /metrics: sample name plus its labels in
// sorted "k=v,k=v" form → value.
type metrics map[string]float64

func scrape(c *http.Client, url string) (metrics, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[sampleKey(line[:i])] = v
	}
	return m, sc.Err()
}

// sampleKey normalises `name{b="2",a="1"}` to `name{a=1,b=2}`. Label
// values here never hold commas or escaped quotes.
func sampleKey(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	parts := strings.Split(strings.TrimSuffix(labels, "}"), ",")
	kv := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		kv = append(kv, k+"="+strings.Trim(v, `"`))
	}
	slices.Sort(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// get returns a sample; labels are "k=v" pairs. ok is false if absent.
func (m metrics) get(name string, labels ...string) (float64, bool) {
	labels = slices.Clone(labels)
	slices.Sort(labels)
	key := name
	if len(labels) > 0 {
		key += "{" + strings.Join(labels, ",") + "}"
	}
	v, ok := m[key]
	return v, ok
}

// vipBackend finds a backend of a VIP in a dashboard document.
func vipBackend(d *dashboard.Data, vip, name string) *dashboard.VIPBackend {
	for i := range d.VIPs {
		if d.VIPs[i].Name != vip {
			continue
		}
		for j := range d.VIPs[i].Backends {
			if d.VIPs[i].Backends[j].Name == name {
				return &d.VIPs[i].Backends[j]
			}
		}
	}
	return nil
}

// poolEndpoint finds an endpoint of a pool in a dashboard document.
func poolEndpoint(d *dashboard.Data, pool, addr string) *dashboard.Endpoint {
	for i := range d.Pools {
		if d.Pools[i].Name != pool {
			continue
		}
		for j := range d.Pools[i].Endpoints {
			if d.Pools[i].Endpoints[j].Address == addr {
				return &d.Pools[i].Endpoints[j]
			}
		}
	}
	return nil
}

// historyString is a transition history in one line, for messages.
func historyString(h []dashboard.Transition) string {
	var b strings.Builder
	for i, tr := range h {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s→%s (%s)", tr.From, tr.To, tr.Reason)
		if tr.Drained {
			b.WriteString(" [drained]")
		}
	}
	return b.String()
}

// hasTransition reports whether h holds from → to at or after since.
func hasTransition(h []dashboard.Transition, from, to string, since time.Time) bool {
	for _, tr := range h {
		if tr.From == from && tr.To == to && !tr.At.Before(since) {
			return true
		}
	}
	return false
}

// healthSnapshot is the part of GET /api/v1/health the tests read.
type healthSnapshot struct {
	Targets   []healthTarget `json:"targets"`
	Discovery []struct {
		Name  string `json:"name"`
		Pool  string `json:"pool"`
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"discovery"`
}

type healthTarget struct {
	Kind    string `json:"kind"`
	Group   string `json:"group"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Drained bool   `json:"drained"`
	History []struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Drained bool   `json:"drained"`
		Reason  string `json:"reason"`
	} `json:"history"`
}

func (h *healthSnapshot) target(kind, group, name string) *healthTarget {
	for i := range h.Targets {
		if t := &h.Targets[i]; t.Kind == kind && t.Group == group && t.Name == name {
			return t
		}
	}
	return nil
}
