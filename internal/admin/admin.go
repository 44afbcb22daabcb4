// Package admin is the admin listener: Prometheus metrics, liveness and
// readiness, and the JSON API under /api/v1/. Reads are open (the listener
// belongs on loopback or a management network); anything that changes state
// needs the bearer token from the config.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Daemon is what the admin API needs from the running daemon.
type Daemon interface {
	// Status is the JSON document of GET /api/v1/status.
	Status() any
	// Config is the running config.
	Config() *config.Config
	// Reload re-reads the config file; on error the running config stays.
	Reload(ctx context.Context, reason string) error
	// Ready reports whether the daemon serves traffic (config applied, not draining).
	Ready() bool
	// Token is the current admin bearer token ("" refuses every mutation).
	Token() string
}

// Server is the admin HTTP server.
type Server struct {
	d   Daemon
	log *slog.Logger
	mux *http.ServeMux
	srv *http.Server
	ln  net.Listener
}

// New builds the admin server; Listen binds it.
func New(d Daemon, reg *prometheus.Registry, log *slog.Logger) *Server {
	s := &Server{d: d, log: log, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, d.Status())
	})
	s.mux.HandleFunc("GET /api/v1/config", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, redacted(d.Config()))
	})
	s.mux.Handle("POST /api/v1/reload", s.auth(http.HandlerFunc(s.reload)))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusNotFound, apiError{Error: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s
}

// Handle adds an endpoint; mutating ones should be wrapped with Auth.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Auth wraps h so it runs only with the right bearer token.
func (s *Server) Auth(h http.Handler) http.Handler { return s.auth(h) }

// Listen binds addr and serves in the background.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "err", err)
		}
	}()
	s.log.Info("admin listener started", "address", ln.Addr().String())
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

type apiError struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

// Authorized reports whether r carries the admin bearer token. Read-only
// pages use it to offer the actions the token would allow.
func (s *Server) Authorized(r *http.Request) bool {
	want := s.d.Token()
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return want != "" && ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.d.Token()
		if !s.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
			msg := "missing or wrong bearer token"
			if want == "" {
				msg = "no admin token is configured (admin.token or admin.token_file), so changes are refused"
			}
			s.log.Warn("admin request refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			WriteJSON(w, http.StatusUnauthorized, apiError{Error: msg})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	err := s.d.Reload(r.Context(), "admin API")
	if err == nil {
		WriteJSON(w, http.StatusOK, map[string]any{"result": "success", "digest": s.d.Config().Digest})
		return
	}
	resp := apiError{Error: "reload failed; the running config keeps serving"}
	if es := config.AsErrors(err); es != nil {
		for _, e := range es {
			resp.Errors = append(resp.Errors, e.Error())
		}
		WriteJSON(w, http.StatusUnprocessableEntity, resp)
		return
	}
	resp.Errors = []string{err.Error()}
	WriteJSON(w, http.StatusInternalServerError, resp)
}

// WriteJSON answers with v as JSON, uncached: every admin endpoint's shape.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// redacted is the config without secrets, for GET /api/v1/config: the
// admin token and the gossip key (with it anyone could join the cluster,
// vote backends down and claim VIPs).
func redacted(c *config.Config) *config.Config {
	cp := *c
	if cp.Admin.Token != "" {
		cp.Admin.Token = "REDACTED"
	}
	if cp.Cluster != nil && cp.Cluster.Key != "" {
		cl := *cp.Cluster
		cl.Key = "REDACTED"
		cp.Cluster = &cl
	}
	// BGP TCP-MD5 secrets: with one a host on the path could hijack the
	// sessions.
	if cp.BGP != nil {
		b := *cp.BGP
		b.Peers = append([]config.BGPPeer(nil), b.Peers...)
		for i := range b.Peers {
			if b.Peers[i].Password != "" {
				b.Peers[i].Password = "REDACTED"
			}
		}
		cp.BGP = &b
	}
	// HMAC secrets of jwt routes: with one anyone could mint tokens.
	copied := false
	for i, r := range c.L7.Routes {
		if r.JWT == nil || !hasSecret(r.JWT.Keys) {
			continue
		}
		if !copied {
			cp.L7.Routes = append([]config.Route(nil), c.L7.Routes...)
			copied = true
		}
		j := *r.JWT
		j.Keys = append([]config.JWTKey(nil), j.Keys...)
		for k := range j.Keys {
			if j.Keys[k].Secret != "" {
				j.Keys[k].Secret = "REDACTED"
			}
		}
		cp.L7.Routes[i].JWT = &j
	}
	return &cp
}

func hasSecret(keys []config.JWTKey) bool {
	for _, k := range keys {
		if k.Secret != "" {
			return true
		}
	}
	return false
}
