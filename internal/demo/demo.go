// Package demo serves the small HTTP backends of the quickstart config from
// inside the daemon, so `make run` needs no other program. It is off unless a
// config has a demo section, and is never meant for production.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Backends runs one demo server per address and follows config changes.
type Backends struct {
	log     *slog.Logger
	mu      sync.Mutex
	servers map[string]*server
}

type server struct {
	name string
	srv  *http.Server
	hits atomic.Uint64
}

// New returns an empty set of demo backends.
func New(log *slog.Logger) *Backends {
	return &Backends{log: log, servers: map[string]*server{}}
}

// Apply starts servers for new addresses and stops the ones no longer
// listed. Binding happens before anything is stopped, and a bind failure
// closes what this call opened, so the set is either fully applied or unchanged.
func (b *Backends) Apply(addrs []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]bool{}
	type opened struct {
		idx  int
		addr string
		ln   net.Listener
	}
	var fresh []opened
	for i, a := range addrs {
		want[a] = true
		if _, ok := b.servers[a]; ok {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, o := range fresh {
				o.ln.Close()
			}
			return fmt.Errorf("demo backend %s: %w", a, err)
		}
		fresh = append(fresh, opened{i, a, ln})
	}
	for _, o := range fresh {
		s := &server{name: fmt.Sprintf("demo-%d", o.idx+1)}
		s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
		b.servers[o.addr] = s
		go func() {
			if err := s.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.log.Error("demo backend stopped", "address", o.addr, "err", err)
			}
		}()
		b.log.Info("demo backend started", "name", s.name, "address", o.addr)
	}
	for a, s := range b.servers {
		if !want[a] {
			delete(b.servers, a)
			s.srv.Close()
		}
	}
	return nil
}

// Close stops every demo backend.
func (b *Backends) Close(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for a, s := range b.servers {
		_ = s.srv.Shutdown(ctx)
		delete(b.servers, a)
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	local := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
	w.Header().Set("X-Demo-Backend", s.name)
	if r.URL.Path == "/healthz" {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
		return
	}
	n := s.hits.Add(1) // health checks are not requests
	if r.URL.Query().Has("json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"backend": s.name, "address": local, "method": r.Method, "path": r.URL.Path,
			"request": n, "x_forwarded_for": r.Header.Get("X-Forwarded-For"),
		})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello from %s (%s): %s %s, request #%d\n", s.name, local, r.Method, r.URL.Path, n)
}
