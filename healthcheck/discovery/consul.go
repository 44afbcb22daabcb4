package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Consul follows /v1/health/service/<Service>?passing with blocking queries
// (https://developer.hashicorp.com/consul/api-docs/features/blocking): each
// request sends the X-Consul-Index of the previous answer as index and
// returns when the result changes or Wait runs out.
//
// This is a small client of the documented HTTP API rather than
// github.com/hashicorp/consul/api: that module brings some 17 others
// (serf, two metrics libraries, hclog, golang.org/x/exp...) and a newer go
// directive, for one GET.
type Consul struct {
	Agents     []string // http(s)://host:port or host:port, tried in order
	Service    string
	Tag        string
	Datacenter string
	Token      string
	Weight     int           // when an instance has no Weights.Passing
	Wait       time.Duration // blocking query wait
	Retry      time.Duration
	// MinGap is the shortest time between two requests: Consul asks
	// clients to rate-limit themselves, since an index can change often.
	// Default: 100ms.
	MinGap time.Duration
	Client *http.Client
}

type consulEntry struct {
	Node struct {
		Address string `json:"Address"`
	} `json:"Node"`
	Service struct {
		Address string `json:"Address"`
		Port    int    `json:"Port"`
		Weights struct {
			Passing int `json:"Passing"`
		} `json:"Weights"`
	} `json:"Service"`
}

// Run implements Provider.
func (c *Consul) Run(ctx context.Context, s Sink) {
	hc := c.Client
	if hc == nil {
		// The wait plus Consul's up to wait/16 of jitter, plus slack.
		hc = &http.Client{Timeout: c.Wait + c.Wait/16 + 10*time.Second}
	}
	gap := c.MinGap
	if gap == 0 {
		gap = 100 * time.Millisecond
	}
	var index uint64
	agent := 0
	for ctx.Err() == nil {
		start := time.Now()
		eps, next, err := c.fetch(ctx, hc, c.Agents[agent%len(c.Agents)], index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.Fail(err)
			agent++
			index = 0 // another agent has other indexes
			if !sleep(ctx, c.Retry) {
				return
			}
			continue
		}
		switch {
		case next < index:
			// The docs: an index that goes backwards (a snapshot
			// restore) must reset the wait, or it would block forever.
			index = 0
		case next == 0:
			index = 1
		default:
			index = next
		}
		s.Set(eps)
		if d := gap - time.Since(start); d > 0 && !sleep(ctx, d) {
			return
		}
	}
}

func (c *Consul) fetch(ctx context.Context, hc *http.Client, agent string, index uint64) ([]Endpoint, uint64, error) {
	if !strings.Contains(agent, "://") {
		agent = "http://" + agent
	}
	q := url.Values{"passing": {"1"}}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", fmt.Sprintf("%dms", c.Wait.Milliseconds()))
	}
	if c.Tag != "" {
		q.Set("tag", c.Tag)
	}
	if c.Datacenter != "" {
		q.Set("dc", c.Datacenter)
	}
	u := strings.TrimSuffix(agent, "/") + "/v1/health/service/" + url.PathEscape(c.Service) + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if c.Token != "" {
		req.Header.Set("X-Consul-Token", c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("consul %s: %w", agent, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, 0, fmt.Errorf("consul %s: %s: %s", agent, resp.Status, strings.TrimSpace(string(b)))
	}
	next, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("consul %s: bad X-Consul-Index %q", agent, resp.Header.Get("X-Consul-Index"))
	}
	var entries []consulEntry
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&entries); err != nil {
		return nil, 0, fmt.Errorf("consul %s: %w", agent, err)
	}
	eps := make([]Endpoint, 0, len(entries))
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address // the docs: an empty service address means the node's
		}
		if addr == "" || e.Service.Port < 1 || e.Service.Port > 65535 {
			continue
		}
		w := e.Service.Weights.Passing
		if w <= 0 {
			w = max(c.Weight, 1)
		}
		eps = append(eps, Endpoint{Address: net.JoinHostPort(addr, strconv.Itoa(e.Service.Port)), Weight: min(w, 65535)})
	}
	return eps, next, nil
}
