package e2e

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/internal/admin/dashboard"
)

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
