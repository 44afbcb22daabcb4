//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/internal/e2etest"
	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// OpenFlows opens n long-lived connections from client to the VIP, at
// most conc at a time; each has made one exchange, so Flow.Backend names
// its backend. On error the flows opened so far are returned with it (the
// caller closes them).
func OpenFlows(ctx context.Context, client *netlab.Host, n, conc int, timeout time.Duration) ([]*e2etest.Flow, error) {
	flows := make([]*e2etest.Flow, n)
	errs := make([]error, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			flows[i], errs[i] = e2etest.DialFlow(ctx, client, VIPAddr(), timeout)
		})
	}
	wg.Wait()
	var ok []*e2etest.Flow
	var failed []string
	for i, f := range flows {
		if f != nil {
			ok = append(ok, f)
		} else if len(failed) < 5 {
			failed = append(failed, errs[i].Error())
		}
	}
	if len(ok) < n {
		return ok, fmt.Errorf("%d of %d connections to %s failed: %s", n-len(ok), n, VIPAddr(), strings.Join(failed, "; "))
	}
	return ok, nil
}

// CloseFlows closes every flow.
func CloseFlows(flows []*e2etest.Flow) {
	for _, f := range flows {
		f.Close()
	}
}

// FlowCheck is the result of one more exchange on every established flow.
type FlowCheck struct {
	Total, OK int
	// Moved flows answered from another backend than the one they started
	// on; Broken ones did not answer (reset, timeout).
	Moved, Broken []string
}

// Failures describes the flows that did not survive (at most 5 of each).
func (c FlowCheck) Failures() string {
	cut := func(s []string) string {
		if len(s) > 5 {
			return strings.Join(s[:5], "; ") + fmt.Sprintf("; ... and %d more", len(s)-5)
		}
		return strings.Join(s, "; ")
	}
	return fmt.Sprintf("%d of %d flows survived; %d moved to another backend [%s]; %d broken [%s]",
		c.OK, c.Total, len(c.Moved), cut(c.Moved), len(c.Broken), cut(c.Broken))
}

// CheckFlows makes one more exchange on every flow, at most conc at a
// time, each within timeout: a flow survives if it still answers, from
// the backend it started on.
func CheckFlows(flows []*e2etest.Flow, conc int, timeout time.Duration) FlowCheck {
	res := FlowCheck{Total: len(flows)}
	var mu sync.Mutex
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for _, f := range flows {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name, err := f.Exchange(timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.OK++
			case name != "" && name != f.Backend:
				res.Moved = append(res.Moved, fmt.Sprintf("%s: %s → %s", f.Conn.LocalAddr(), f.Backend, name))
			default:
				res.Broken = append(res.Broken, err.Error())
			}
		})
	}
	wg.Wait()
	return res
}

// PerBackend counts the flows by backend.
func PerBackend(flows []*e2etest.Flow) map[string]int {
	m := map[string]int{}
	for _, f := range flows {
		m[f.Backend]++
	}
	return m
}
