// Package l7 is the HTTP proxy: listeners, the router, pools and the
// upstream transport. A request flows one way:
//
//	listener → generation (router for this listener) → route → pool → endpoint → upstream
//
// A config is compiled into an immutable Generation; the Proxy swaps the
// current generation with one atomic store. A request loads the generation
// once when it starts and uses it to the end, so in-flight requests finish on
// the config they started with, and listeners that a reload does not change
// keep their sockets and connections.
package l7

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Generation is one compiled config of the proxy. Immutable.
type Generation struct {
	listeners map[string]*listenerConf // by listener key
	pools     map[string]*Pool
}

type listenerConf struct {
	name   string
	addr   string
	tls    *tls.Config
	router *Router
}

// listenerKey identifies a socket: the same address with TLS switched on or
// off needs a new server, anything else is served by the old one.
func listenerKey(addr string, isTLS bool) string {
	if isTLS {
		return "tls:" + addr
	}
	return "tcp:" + addr
}

// Compile builds a Generation from a validated config. It touches no socket,
// so a failure leaves the running proxy as it was.
func Compile(c *config.Config) (*Generation, error) {
	g := &Generation{listeners: map[string]*listenerConf{}, pools: map[string]*Pool{}}
	for _, pc := range c.L7.Pools {
		p, err := newPool(pc)
		if err != nil {
			return nil, err
		}
		g.pools[pc.Name] = p
	}
	for _, lc := range c.L7.Listeners {
		var routes []*route
		for i, rc := range c.L7.Routes {
			if len(rc.Listeners) > 0 && !contains(rc.Listeners, lc.Name) {
				continue
			}
			routes = append(routes, compileRoute(rc, i, g.pools[rc.Pool]))
		}
		conf := &listenerConf{name: lc.Name, addr: lc.Address, router: newRouter(routes)}
		if lc.TLS != nil {
			tc, err := compileTLS(lc.TLS)
			if err != nil {
				return nil, fmt.Errorf("listener %q: %w", lc.Name, err)
			}
			conf.tls = tc
		}
		g.listeners[listenerKey(lc.Address, conf.tls != nil)] = conf
	}
	return g, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compileTLS loads the certificates; the first is the default and the rest
// are found by SNI through tls.Config's own name matching (exact and
// wildcard SANs).
func compileTLS(t *config.ListenerTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	for _, c := range t.Certificates {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = append(tc.Certificates, cert)
	}
	return tc, nil
}

// Pool returns the generation's pool by name.
func (g *Generation) Pool(name string) *Pool { return g.pools[name] }

// Proxy owns the listeners and serves requests with the current generation.
type Proxy struct {
	log       *slog.Logger
	gen       atomic.Pointer[Generation]
	transport *http.Transport
	rp        *httputil.ReverseProxy

	mu        sync.Mutex
	listeners map[string]*liveListener
}

type liveListener struct {
	key  string
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// New returns a proxy with no listeners.
func New(log *slog.Logger) *Proxy {
	p := &Proxy{log: log, listeners: map[string]*liveListener{}}
	p.transport = &http.Transport{
		Proxy:               nil, // never an environment proxy: upstreams are ours
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ep := pr.In.Context().Value(endpointKey{}).(*Endpoint)
			pr.SetURL(ep.url)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport:    p.transport,
		ErrorHandler: p.upstreamError,
	}
	return p
}

type endpointKey struct{}

// Generation returns the generation in force.
func (p *Proxy) Generation() *Generation { return p.gen.Load() }

// Apply makes g current. New listeners are bound first; if one cannot be
// bound, the ones just opened are closed and the old generation stays in
// force. Listeners that g no longer has are shut down gracefully within
// drain; the others keep their sockets and connections.
func (p *Proxy) Apply(g *Generation, drain time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var opened []*liveListener
	for key, lc := range g.listeners {
		if _, ok := p.listeners[key]; ok {
			continue
		}
		ln, err := net.Listen("tcp", lc.addr)
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			return fmt.Errorf("listener %q: %w", lc.name, err)
		}
		opened = append(opened, &liveListener{key: key, ln: ln, done: make(chan struct{})})
	}
	p.gen.Store(g)
	for _, l := range opened {
		p.serve(l, g.listeners[l.key].tls != nil)
		p.listeners[l.key] = l
	}
	for key, l := range p.listeners {
		if _, keep := g.listeners[key]; !keep {
			delete(p.listeners, key)
			go p.stop(l, drain)
		}
	}
	return nil
}

func (p *Proxy) serve(l *liveListener, isTLS bool) {
	key := l.key
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.handle(key, w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	ln := l.ln
	if isTLS {
		// The TLS config is looked up per handshake, so a reload that only
		// changes certificates keeps the socket and its connections.
		ln = tls.NewListener(ln, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if lc := p.gen.Load().listeners[key]; lc != nil && lc.tls != nil {
				return lc.tls, nil
			}
			return nil, errors.New("listener no longer has TLS")
		}})
		l.srv.TLSConfig = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("listener stopped", "listener", key, "err", err)
		}
	}()
	p.log.Info("listener started", "listener", key, "address", l.ln.Addr().String())
}

func (p *Proxy) stop(l *liveListener, drain time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		l.srv.Close()
	}
	<-l.done
	p.log.Info("listener stopped", "listener", l.key)
}

// Addrs returns the bound address of every listener by listener name.
func (p *Proxy) Addrs() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.gen.Load()
	out := map[string]string{}
	for key, l := range p.listeners {
		if lc := g.listeners[key]; lc != nil {
			out[lc.name] = l.ln.Addr().String()
		}
	}
	return out
}

// Shutdown stops accepting on every listener and waits up to ctx's deadline
// for in-flight requests.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	ls := p.listeners
	p.listeners = map[string]*liveListener{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	var errs []error
	var emu sync.Mutex
	for _, l := range ls {
		wg.Go(func() {
			if err := l.srv.Shutdown(ctx); err != nil {
				l.srv.Close()
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	p.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

func (p *Proxy) handle(key string, w http.ResponseWriter, r *http.Request) {
	g := p.gen.Load()
	lc := g.listeners[key]
	if lc == nil {
		// The listener is draining after a reload removed it.
		writeError(w, http.StatusServiceUnavailable, "listener is shutting down")
		return
	}
	rt, allow := lc.router.Match(r)
	if rt == nil {
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		writeError(w, http.StatusNotFound, "no route")
		return
	}
	ep := rt.pool.Pick()
	if ep == nil {
		writeError(w, http.StatusServiceUnavailable, "no endpoint available")
		return
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), endpointKey{}, ep)))
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ep := r.Context().Value(endpointKey{}).(*Endpoint)
	p.log.Warn("upstream error", "endpoint", ep.Address, "path", r.URL.Path, "err", err)
	if errors.Is(err, context.Canceled) {
		return // the client went away; nobody reads an answer
	}
	writeError(w, http.StatusBadGateway, "upstream unavailable")
}

// writeError answers with a small JSON body, the same shape everywhere.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}{code, msg})
}
