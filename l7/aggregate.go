package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/aggregate"
	"github.com/portcullis-lb/portcullis/l7/pool"
	"github.com/portcullis-lb/portcullis/l7/route"
)

// Response aggregation (issue #8, docs/transform.md): a route whose answer
// is built from several upstream calls made in parallel, their JSON
// merged. The calls go through their pools' Pick and Endpoint.Done (so
// balancing, outlier ejection and the outcome observer see them) but not
// through the forwarding code, which relays one upstream answer to the
// client: each call is a small synthetic request sent with a net/http
// RoundTripper (HTTP/1.1: one per pool and generation; h2/h2c: the pool's
// own HTTP/2 transport), its body read whole (at most maxAggregateBody).

// maxAggregateBody is the largest response body of one call.
const maxAggregateBody = 1 << 20

// routeAggregate is one route's compiled aggregate.
type routeAggregate struct {
	object  bool // merge: object (else named)
	partial bool // on_partial_failure: partial
	calls   []aggCall
}

type aggCall struct {
	name      string
	pool      string
	method    string
	path      *route.Template
	questions int // '?' in the path template: a value may not add one
	timeout   time.Duration
	shape     *aggregate.Shape
}

// compileAggregates builds the aggregates of the routes that have one,
// indexed by the listeners' route objects (templates use the route's path
// parameters), and an HTTP/1.1 transport for every pool a call names.
func compileAggregates(c *config.Config, g *Generation) error {
	byName := map[string]*config.Route{}
	for i := range c.L7.Routes {
		if rc := &c.L7.Routes[i]; rc.Aggregate != nil {
			byName[rc.Name] = rc
		}
	}
	if len(byName) == 0 {
		return nil
	}
	g.aggs = map[*route.Route]*routeAggregate{}
	g.aggRT = map[string]http.RoundTripper{}
	for _, lc := range g.byListener {
		for _, rt := range lc.table.Routes() {
			rc := byName[rt.Name]
			if rc == nil {
				continue
			}
			a := rc.Aggregate
			ra := &routeAggregate{object: a.Merge == config.AggregateMergeObject, partial: a.OnPartialFailure == config.AggregatePartialAnswer}
			for _, cc := range a.Calls {
				prt := g.pools[cc.Pool]
				if prt == nil {
					return fmt.Errorf("route %q: aggregate call %q: no pool %q", rc.Name, cc.Name, cc.Pool)
				}
				tmpl, err := rt.Template(cc.Path)
				if err != nil {
					return fmt.Errorf("route %q: aggregate call %q: path: %w", rc.Name, cc.Name, err)
				}
				var ren [][2]string
				for _, r := range cc.Rename {
					ren = append(ren, [2]string{r.From, r.To})
				}
				ra.calls = append(ra.calls, aggCall{
					name: cc.Name, pool: cc.Pool, method: cc.Method, path: tmpl,
					questions: strings.Count(cc.Path, "?"), timeout: cc.Timeout.D(),
					shape: aggregate.NewShape(cc.Select, ren),
				})
				if g.aggRT[cc.Pool] == nil && prt.conf.Protocol == protoH1 {
					g.aggRT[cc.Pool] = aggTransport(&prt.conf)
				}
			}
			g.aggs[rt] = ra
		}
	}
	return nil
}

// aggTransport is the HTTP/1.1 client of a pool's aggregate calls.
func aggTransport(c *upstreamConf) *http.Transport {
	d := &net.Dialer{Timeout: c.ConnectTimeout, KeepAlive: 30 * time.Second}
	var tc *tls.Config
	if c.TLS != nil {
		tc = c.TLS.Clone()
	}
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = 90 * time.Second
	}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ResponseHeaderTimeout: c.ResponseHeaderTimeout,
		IdleConnTimeout:       idle,
		MaxIdleConnsPerHost:   max(c.MaxIdlePerEndpoint, 2),
		DisableCompression:    true,
	}
}

// closeAggregates drops the idle connections of g's aggregate transports
// (g was replaced or the proxy stopped).
func (g *Generation) closeAggregates() {
	for _, rt := range g.aggRT {
		if t, ok := rt.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}

// aggResult is one call's end: its shaped body, or why it failed.
type aggResult struct {
	body []byte
	err  error
}

// serveAggregate answers a request matched to a route with an aggregate.
func (p *Proxy) serveAggregate(g *Generation, ag *routeAggregate, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, start time.Time) {
	res := &st.match
	templateRequestID(g, r, st)
	// Templates are expanded here, before the calls start: st is the
	// request goroutine's.
	targets := make([]string, len(ag.calls))
	for i := range ag.calls {
		targets[i] = ag.calls[i].path.Expand(r, res, st.fwd.client)
	}
	hdr := p.aggHeaders(g, st)
	results := make([]aggResult, len(ag.calls))
	callStart := time.Now()
	var wg sync.WaitGroup
	for i := range ag.calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = p.aggCall(g, &ag.calls[i], targets[i], hdr, r)
		}(i)
	}
	wg.Wait()
	upDur := time.Since(callStart)

	var parts []aggregate.Part
	var failed []string
	for i, c := range ag.calls {
		cr := results[i]
		if cr.err == nil && ag.object && !aggregate.IsObject(cr.body) {
			cr.err = aggregate.ErrNotObject
		}
		if cr.err != nil {
			failed = append(failed, c.name)
			p.log.Debug("aggregate call failed", "call", c.name, "pool", c.pool, "err", cr.err)
			continue
		}
		parts = append(parts, aggregate.Part{Name: c.name, Body: cr.body})
	}
	var body []byte
	if len(failed) == 0 || (ag.partial && len(parts) > 0) {
		if ag.object {
			var err error
			if body, err = aggregate.Objects(parts); err != nil {
				failed, body = failedNames(ag), nil // unreachable: every part was checked
			}
		} else {
			body = aggregate.Named(parts)
		}
	}
	if body == nil {
		writeAggFailure(w, st, failed)
		p.finish(r, st, rs, "", "", http.StatusBadGateway, 0, start, upDur)
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonCT
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if len(failed) > 0 {
		h["X-Portcullis-Completed"] = []string{"false"}
		h["X-Portcullis-Failed"] = []string{strings.Join(failed, ", ")}
	}
	p.decorate(h, st)
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(body)
	st.closeWrappers(false)
	p.finish(r, st, rs, "", "", http.StatusOK, int64(n), start, upDur)
}

func failedNames(ag *routeAggregate) []string {
	names := make([]string, len(ag.calls))
	for i, c := range ag.calls {
		names[i] = c.name
	}
	return names
}

// writeAggFailure is the proxy's 502 naming the failed calls.
func writeAggFailure(w http.ResponseWriter, st *reqState, failed []string) {
	h := w.Header()
	st.sec.headers(h)
	h["Content-Type"] = jsonCT
	h["Cache-Control"] = noStore
	out := []byte(`{"status":502,"error":`)
	out = strconv.AppendQuote(out, "aggregate calls failed: "+strings.Join(failed, ", "))
	out = append(out, `,"failed":[`...)
	for i, n := range failed {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, n)
	}
	out = append(out, ']')
	if len(st.fwd.id) > 0 {
		out = append(out, `,"request_id":`...)
		out = strconv.AppendQuote(out, string(st.fwd.id))
	}
	out = append(out, "}\n"...)
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusBadGateway)
	w.Write(out)
}

// aggHeaders are the headers of every call: JSON wanted, the request id
// and this hop's X-Forwarded-For/-Proto.
func (p *Proxy) aggHeaders(g *Generation, st *reqState) http.Header {
	xff := st.fwd.clientIP
	if len(st.fwd.priorXFF) > 0 {
		xff = strings.Join(st.fwd.priorXFF, ", ") + ", " + xff
	}
	return http.Header{
		"Accept":            {"application/json"},
		g.idHeader:          {string(st.fwd.id)},
		"X-Forwarded-For":   {xff},
		"X-Forwarded-Proto": {st.fwd.xfProto()},
	}
}

var (
	errAggTarget  = errors.New("the path template gave an unsafe target")
	errAggStatus  = errors.New("status is not 2xx")
	errAggTooBig  = errors.New("response larger than 1 MiB")
	errAggNoRoute = errors.New("no transport for the pool")
)

// aggCall makes one call on an endpoint of its pool and reports the
// outcome to the endpoint. The client's request context cancels it.
func (p *Proxy) aggCall(g *Generation, c *aggCall, target string, hdr http.Header, in *http.Request) aggResult {
	prt := g.pools[c.pool]
	u, err := url.ParseRequestURI(target)
	if err != nil || strings.Count(target, "?") != c.questions || strings.Contains(target, "#") || hasDotSegment(u.Path) {
		return aggResult{err: errAggTarget}
	}
	var rt http.RoundTripper
	u.Scheme = "http"
	if prt.up != nil && prt.up.h2 != nil {
		rt, u.Scheme = prt.up.h2, prt.up.scheme
	} else {
		rt = g.aggRT[c.pool]
		if prt.conf.TLS != nil {
			u.Scheme = "https"
		}
	}
	if rt == nil {
		return aggResult{err: errAggNoRoute}
	}
	timeout := c.timeout
	if t := prt.conf.TotalTimeout; t > 0 && t < timeout {
		timeout = t // the pool's total_timeout caps every exchange with it
	}
	ctx, cancel := context.WithTimeout(in.Context(), timeout)
	defer cancel()
	ep, err := prt.p.Pick(in, nil)
	if err != nil {
		return aggResult{err: err}
	}
	u.Host = ep.Address
	req, err := http.NewRequestWithContext(ctx, c.method, u.String(), nil)
	if err != nil {
		ep.Done(pool.Outcome{})
		return aggResult{err: err}
	}
	req.Header = hdr.Clone()
	start := time.Now()
	var o pool.Outcome
	body, err := roundTripJSON(rt, req, &o)
	if err != nil && o.Status == 0 {
		switch {
		case in.Context().Err() != nil: // the client went away: neutral
		case ctx.Err() != nil:
			o.Timeout = true
		case isDialError(err):
			o.ConnectError = true
		default:
			o.Reset = true
		}
	} else if err != nil && ctx.Err() != nil && in.Context().Err() == nil {
		o.Status, o.Timeout = 0, true // the body did not arrive in time
	}
	o.Duration = time.Since(start)
	ep.Done(o)
	if f := p.observe.Load(); f != nil {
		(*f)(prt.name, ep.Address, o)
	}
	if err != nil {
		return aggResult{err: err}
	}
	body, err = c.shape.Apply(body)
	return aggResult{body: body, err: err}
}

// roundTripJSON sends req and reads a 2xx answer's body, at most
// maxAggregateBody bytes; o.Status is set once a head arrived.
func roundTripJSON(rt http.RoundTripper, req *http.Request, o *pool.Outcome) ([]byte, error) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	o.Status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection when it is cheap
		return nil, fmt.Errorf("%w: %d", errAggStatus, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAggregateBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxAggregateBody {
		return nil, errAggTooBig
	}
	return body, nil
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// hasDotSegment reports a . or .. segment (a path value that would climb
// out of the template's path).
func hasDotSegment(p string) bool {
	for s := range strings.SplitSeq(p, "/") {
		if s == "." || s == ".." {
			return true
		}
	}
	return false
}
