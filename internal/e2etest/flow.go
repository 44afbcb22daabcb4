//go:build linux

package e2etest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/internal/netlab"
)

// The client side of an EchoServer test: connections from a netlab host
// to a VIP, each of which learns from every reply which backend holds it.

// exchangeTimeout bounds the first exchange of a new Flow and every
// exchange of OneConn.
const exchangeTimeout = 3 * time.Second

// Flow is one client connection to a VIP and the host that answers it.
type Flow struct {
	Conn    net.Conn
	r       *bufio.Reader
	Backend string // from the first reply
	sent    int
}

// DialFlow connects from client to addr, giving the dial dialTimeout, and
// makes the first exchange, which names the backend.
func DialFlow(ctx context.Context, client *netlab.Host, addr string, dialTimeout time.Duration) (*Flow, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := client.Dial(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	f := &Flow{Conn: c, r: bufio.NewReader(c)}
	name, err := f.Exchange(exchangeTimeout)
	if err != nil {
		c.Close()
		return nil, err
	}
	f.Backend = name
	return f, nil
}

// Exchange sends one line and returns the name of the host that echoed
// it. A reply that is not the echo of what was sent, or that comes from
// another host than the first, is an error.
func (f *Flow) Exchange(timeout time.Duration) (string, error) {
	f.sent++
	msg := fmt.Sprintf("msg %d from %s", f.sent, f.Conn.LocalAddr())
	f.Conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(f.Conn, msg+"\n"); err != nil {
		return "", fmt.Errorf("%s: send %d: %w", f.Conn.LocalAddr(), f.sent, err)
	}
	line, err := f.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: reply %d: %w", f.Conn.LocalAddr(), f.sent, err)
	}
	name, echo, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if !ok || echo != msg {
		return "", fmt.Errorf("%s: reply %d is %q, want \"NAME %s\"", f.Conn.LocalAddr(), f.sent, line, msg)
	}
	if f.Backend != "" && name != f.Backend {
		return name, fmt.Errorf("%s: reply %d came from %s, the connection started on %s", f.Conn.LocalAddr(), f.sent, name, f.Backend)
	}
	return name, nil
}

// Close closes the connection.
func (f *Flow) Close() error { return f.Conn.Close() }

// OneConn dials a Flow to addr (see DialFlow), makes msgs exchanges in
// all, closes it and returns the backend that answered.
func OneConn(ctx context.Context, client *netlab.Host, addr string, msgs int, dialTimeout time.Duration) (string, error) {
	f, err := DialFlow(ctx, client, addr, dialTimeout)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for i := 1; i < msgs; i++ {
		if _, err := f.Exchange(exchangeTimeout); err != nil {
			return "", err
		}
	}
	return f.Backend, nil
}

// LoadResult is what a batch of connections saw.
type LoadResult struct {
	PerBackend map[string]int
	Errs       []error
	// Skipped connections were never tried: the batch gave up after
	// MaxConnErrs failures, so a broken dataplane fails fast instead of
	// waiting out hundreds of dial timeouts.
	Skipped int
}

// MaxConnErrs is how many failed connections stop a RunConns batch.
const MaxConnErrs = 10

// RunConns makes n connections to addr with OneConn, at most conc at a
// time; each one exchanges msgs lines (every reply must come from the
// host that answered the first) and is closed by the client.
func RunConns(ctx context.Context, client *netlab.Host, addr string, n, conc, msgs int, dialTimeout time.Duration) LoadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := LoadResult{PerBackend: map[string]int{}}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range jobs {
				if ctx.Err() != nil {
					mu.Lock()
					res.Skipped++
					mu.Unlock()
					continue
				}
				name, err := OneConn(ctx, client, addr, msgs, dialTimeout)
				mu.Lock()
				if err != nil {
					res.Errs = append(res.Errs, err)
					if len(res.Errs) >= MaxConnErrs {
						cancel()
					}
				} else {
					res.PerBackend[name]++
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return res
}

// Failures describes the failed and skipped connections of a batch of n,
// listing up to 5 of the errors.
func (r LoadResult) Failures(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d connections failed, %d not tried after that:", len(r.Errs), n, r.Skipped)
	for i, err := range r.Errs {
		if i == 5 {
			fmt.Fprintf(&b, "\n\t... and %d more", len(r.Errs)-5)
			break
		}
		fmt.Fprintf(&b, "\n\t%v", err)
	}
	return b.String()
}
