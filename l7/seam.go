package l7

import (
	"net/http"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/pool"
	"github.com/portcullis-lb/portcullis/l7/route"
)

// The seam between the core and routing (l7/route) and balancing (l7/pool),
// per l7/SEAMS.md. Everything the request path needs from them goes through
// the few names here.

type endpointRef = *pool.Endpoint

// poolRT is one pool of a generation with the transport settings the core
// compiled from it; up is bound at Apply.
type poolRT struct {
	name string
	p    *pool.Pool
	conf upstreamConf
	up   *upstream
}

func compilePool(pc config.Pool) (*poolRT, error) {
	p, err := pool.New(pc)
	if err != nil {
		return nil, err
	}
	u := p.Upstream()
	conf := upstreamConf{
		Protocol:              u.Protocol,
		TLS:                   u.TLS,
		ConnectTimeout:        u.ConnectTimeout,
		ResponseHeaderTimeout: u.ResponseHeaderTimeout,
		IdleTimeout:           u.IdleTimeout,
		TotalTimeout:          u.TotalTimeout,
		MaxIdlePerEndpoint:    u.MaxIdlePerEndpoint,
		Retry:                 u.Retry,
	}
	if conf.Protocol == "" {
		conf.Protocol = protoH1
	}
	return &poolRT{name: pc.Name, p: p, conf: conf}, nil
}

// listenerConf is one listener's routing table and request limits.
type listenerConf struct {
	name  string
	table *route.Table
	// maxURI is max_uri_bytes (414 beyond); maxBody the body limit of
	// the routes without their own (0: none).
	maxURI int
	// maxHeaders is max_header_count (431 beyond).
	maxHeaders int
	maxBody    int64
}

func compileListener(c *config.Config, lc config.Listener, g *Generation) (*listenerConf, error) {
	t, err := route.Compile(c.L7.Routes, lc.Name)
	if err != nil {
		return nil, err
	}
	for _, rc := range c.L7.Routes {
		if rc.MaxBodyBytes <= 0 {
			continue
		}
		for _, rt := range t.Routes() {
			if rt.Name == rc.Name {
				g.bodyLimits[rt] = rc.MaxBodyBytes
			}
		}
	}
	maxURI := lc.MaxURIBytes
	if maxURI <= 0 {
		maxURI = config.DefaultMaxURIBytes
	}
	maxHdr := lc.MaxHeaderCount
	if maxHdr <= 0 {
		maxHdr = config.DefaultMaxHeaderCount
	}
	return &listenerConf{name: lc.Name, table: t, maxURI: maxURI, maxHeaders: maxHdr, maxBody: lc.MaxBodyBytes}, nil
}

// outcomeOf is what an attempt tells the pool (least-request, outlier
// ejection, circuit breaker) and the retry policy.
func outcomeOf(a *attempt) pool.Outcome {
	o := pool.Outcome{Status: a.status, ConnectError: a.connectErr, Timeout: a.timeout, Duration: a.upstreamDur}
	if a.err != nil && !a.sent {
		if a.badRequest || a.clientGone || a.tooLarge {
			// The client's fault says nothing about the endpoint.
			return pool.Outcome{Duration: a.upstreamDur}
		}
		if !a.connectErr && !a.timeout && !a.retryStatus {
			o.Status = 0
			o.Reset = true
		}
	}
	if a.err != nil && a.sent && a.abort {
		o.Reset = true
	}
	return o
}

// retryOnStatus reports whether the pool retries an answer with this status
// (gateway-error, 5xx).
func retryOnStatus(r pool.Retry, code int) bool {
	return code >= 500 && r.Retryable(pool.Outcome{Status: code})
}

var _ = http.StatusOK
var _ = time.Second
