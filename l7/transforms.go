package l7

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/compress"
	"github.com/portcullis-lb/portcullis/l7/route"
	"github.com/portcullis-lb/portcullis/l7/transform"
)

// Route-level compression and JSON body transformation (issue #8). A
// response meets them in this order on its way to the client:
//
//	upstream → [cache (l7/cache)] → body transformation → compression → client
//
// Compression is the outermost step (closest to the client, after routing
// and the security middleware), so the cache inside it stores the identity
// representation and the transformation reads plain JSON; the request's
// Accept-Encoding is therefore not sent upstream on these routes. A route
// with neither feature costs the request path one map-length check and
// a few field checks (st.cw, st.xres, st.bodyKept).

// routeXform is one route's compiled compression and transformation.
type routeXform struct {
	comp *compress.Policy
	body *transform.Spec
}

// changesRequest reports whether the route transforms request bodies.
func (x *routeXform) changesRequest() bool {
	return x.body != nil && x.body.HasRequest()
}

// compileTransforms builds the features of every route that has some and
// indexes them by the listeners' route objects (templates are compiled
// with the route's path parameters).
func compileTransforms(c *config.Config, g *Generation) error {
	g.xforms = map[*route.Route]*routeXform{}
	byName := map[string]*config.Route{}
	for i := range c.L7.Routes {
		rc := &c.L7.Routes[i]
		if rc.Compression != nil || rc.BodyTransform != nil {
			byName[rc.Name] = rc
		}
	}
	if len(byName) == 0 {
		return nil
	}
	policies := map[string]*compress.Policy{}
	for _, lc := range g.byListener {
		for _, rt := range lc.table.Routes() {
			rc := byName[rt.Name]
			if rc == nil {
				continue
			}
			x := &routeXform{}
			if rc.Compression != nil {
				if policies[rc.Name] == nil {
					policies[rc.Name] = compress.Compile(rc.Compression)
				}
				x.comp = policies[rc.Name]
			}
			if rc.BodyTransform != nil {
				s, err := transform.Compile(rc.BodyTransform, rt)
				if err != nil {
					return fmt.Errorf("route %q: body_transform: %w", rc.Name, err)
				}
				x.body = s
			}
			g.xforms[rt] = x
		}
	}
	return nil
}

// wrapResponse puts the route's response wrappers around w: compression
// outermost, the body transformation inside it. Upgrades (WebSocket) are
// left alone: their answer is a tunnel.
func (p *Proxy) wrapResponse(x *routeXform, w http.ResponseWriter, r *http.Request, st *reqState) http.ResponseWriter {
	if st.upgrade != "" {
		return w
	}
	wrapped := false
	if x.comp != nil {
		if cw := x.comp.Wrap(w, r); cw != nil {
			st.cw, w, wrapped = cw, cw, true
		}
	}
	if x.body != nil {
		if rw := x.body.WrapResponse(w, r, &st.match, st.fwd.client); rw != nil {
			st.xres, w, wrapped = rw, rw, true
		}
	}
	if wrapped {
		// The proxy chooses the coding (and the transformation reads
		// plain JSON): the upstream answers in identity.
		delete(r.Header, "Accept-Encoding")
	}
	return w
}

// closeWrappers ends the response wrappers, inner first: a held JSON body
// is transformed and written into the compressor, which then writes its
// last block. An aborted response is dropped (its stream is reset).
func (st *reqState) closeWrappers(abort bool) {
	if rw := st.xres; rw != nil {
		st.xres = nil
		if abort {
			rw.Discard()
		} else {
			rw.Close()
		}
	}
	if cw := st.cw; cw != nil {
		st.cw = nil
		if abort {
			cw.Discard()
		} else {
			cw.Close()
		}
	}
}

// transformRequest replaces a JSON request body by its transformation
// before the pool is picked. The new body is held in st.body, so that it
// is sent with its own Content-Length and can be sent again on a retry.
// It returns false when it has answered (413, or 400 for a body cut
// short).
func (p *Proxy) transformRequest(x *routeXform, w http.ResponseWriter, r *http.Request, st *reqState, rs *routeStats, prt *poolRT, bm *bodyMode, start time.Time) bool {
	body, err := x.body.Request(r, &st.match, st.fwd.client)
	switch {
	case err == nil && body == nil:
		return true
	case err == nil:
		st.body, st.bodyKept = body, true
		st.bodyRd.Reset(body)
		r.ContentLength = int64(len(body))
		*bm = bodyMode{kind: bodyLength, n: r.ContentLength}
		return true
	case errors.Is(err, transform.ErrTooLarge) || errors.Is(err, errBodyTooLarge) || st.limBody.over:
		writeTooLarge(w, r, st)
		p.finish(r, st, rs, prt.name, "", http.StatusRequestEntityTooLarge, 0, start, 0)
	default:
		writeFail(w, st, http.StatusBadRequest, "request body incomplete")
		p.finish(r, st, rs, prt.name, "", http.StatusBadRequest, 0, start, 0)
	}
	return false
}
