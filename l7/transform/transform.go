// Package transform changes JSON request and response bodies of a route
// (issue #8): fields addressed by dotted paths are renamed, removed and
// set, to constants or to the route's header templates ({client_ip},
// {path.id}, {request_id}, ...; compiled by l7/route, one syntax for both).
// Only JSON bodies (application/json, +json) within the size cap are read;
// everything else passes as it came. See docs/transform.md.
package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/route"
)

// ErrTooLarge refuses a JSON request body over the cap when the route
// says so (refuse_oversized): the core answers 413.
var ErrTooLarge = errors.New("JSON request body larger than body_transform.max_bytes")

// Spec is a route's compiled transformation. Immutable.
type Spec struct {
	maxBytes int64
	refuse   bool
	req      *ops
	resp     *ops
}

type opKind uint8

const (
	opRename opKind = iota
	opRemove
	opSet
)

type op struct {
	kind     opKind
	path, to []string
	tmpl     *route.Template // set: a template value (a JSON string)
	raw      []byte          // set: a constant JSON value
}

type ops struct{ list []op }

// Compile builds a route's transformation from its (defaulted, validated)
// config; rt compiles the templates (with its path parameters).
func Compile(c *config.BodyTransform, rt *route.Route) (*Spec, error) {
	s := &Spec{maxBytes: c.MaxBytes, refuse: c.RefuseOversized}
	var err error
	if s.req, err = compileOps(c.Request, rt); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if s.resp, err = compileOps(c.Response, rt); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	return s, nil
}

func compileOps(c *config.JSONOps, rt *route.Route) (*ops, error) {
	if c == nil {
		return nil, nil
	}
	o := &ops{}
	for _, r := range c.Rename {
		o.list = append(o.list, op{kind: opRename, path: split(r.From), to: split(r.To)})
	}
	for _, p := range c.Remove {
		o.list = append(o.list, op{kind: opRemove, path: split(p)})
	}
	for _, s := range c.Set {
		x := op{kind: opSet, path: split(s.Path)}
		if s.JSON != "" {
			var buf bytes.Buffer
			if err := json.Compact(&buf, []byte(s.JSON)); err != nil {
				return nil, fmt.Errorf("set %s: %w", s.Path, err)
			}
			x.raw = buf.Bytes()
		} else {
			t, err := rt.Template(s.Value)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", s.Path, err)
			}
			if t.Static() {
				x.raw = appendString(nil, t.Expand(nil, nil, netip.Addr{}))
			} else {
				x.tmpl = t
			}
		}
		o.list = append(o.list, x)
	}
	return o, nil
}

func split(p string) []string { return strings.Split(p, ".") }

// HasRequest and HasResponse report which sides the route changes.
func (s *Spec) HasRequest() bool  { return s.req != nil }
func (s *Spec) HasResponse() bool { return s.resp != nil }

// apply runs the changes on a document; false when body is not JSON (or
// not an object or array, which paths cannot address): it then passes
// unchanged.
func (o *ops) apply(body []byte, in *http.Request, res *route.Result, client netip.Addr) ([]byte, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	root := &node{raw: body}
	if !root.expand() {
		return nil, false
	}
	for i := range o.list {
		x := &o.list[i]
		switch x.kind {
		case opRename:
			if v := root.lookup(x.path); v != nil && root.set(x.to, v) {
				root.remove(x.path)
			}
		case opRemove:
			root.remove(x.path)
		case opSet:
			v := &node{raw: x.raw}
			if x.tmpl != nil {
				v.raw = appendString(nil, x.tmpl.Expand(in, res, client))
			}
			root.set(x.path, v)
		}
	}
	return root.appendTo(make([]byte, 0, len(body)+64)), true
}

// IsJSON reports whether a Content-Type names JSON: application/json or
// a +json structured syntax (RFC 6839).
func IsJSON(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	mt := ct[0]
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "application/json") ||
		(len(mt) > 5 && strings.IndexByte(mt, '/') > 0 && strings.EqualFold(mt[len(mt)-5:], "+json"))
}

// Request reads and transforms a JSON request body. It returns the body
// to send (the whole body, transformed, or as it came when it is not valid
// JSON), or nil when r.Body is to be sent as it is: not JSON, or larger
// than the cap (for a body of unknown length, r.Body is then replaced by
// one that replays what was read). A read error is returned as it is
// (the core tells a body over max_body_bytes from a cut one), and
// ErrTooLarge when the cap is exceeded and the route refuses such bodies.
func (s *Spec) Request(r *http.Request, res *route.Result, client netip.Addr) ([]byte, error) {
	if s.req == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 ||
		!IsJSON(r.Header["Content-Type"]) || len(r.Header["Content-Encoding"]) > 0 {
		return nil, nil
	}
	if r.ContentLength > s.maxBytes {
		if s.refuse {
			return nil, ErrTooLarge
		}
		return nil, nil
	}
	var body []byte
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
	} else {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, s.maxBytes+1)); err != nil {
			return nil, err
		}
		if int64(len(body)) > s.maxBytes {
			if s.refuse {
				return nil, ErrTooLarge
			}
			r.Body = &prefixed{r: io.MultiReader(bytes.NewReader(body), r.Body), rest: r.Body}
			return nil, nil
		}
	}
	if out, ok := s.req.apply(body, r, res, client); ok {
		return out, nil
	}
	return body, nil
}

// ResponseWriter transforms a JSON response. It decides at WriteHeader:
// only an armed response (the upstream's: the proxy's own error bodies are
// never changed) with a JSON Content-Type, no Content-Encoding, no range,
// and no Content-Length over the cap is held back; everything else passes
// at once and keeps streaming. A held body that outgrows the cap is sent
// as it came.
type ResponseWriter struct {
	w      http.ResponseWriter
	s      *Spec
	in     *http.Request
	res    *route.Result
	client netip.Addr
	armed  bool
	state  uint8
	status int
	buf    []byte
}

const (
	rwUndecided = iota
	rwPass
	rwHold
)

var rwPool = sync.Pool{New: func() any { return new(ResponseWriter) }}

// WrapResponse returns the wrapper for the response to in, nil when the
// route changes no response or in is HEAD.
func (s *Spec) WrapResponse(w http.ResponseWriter, in *http.Request, res *route.Result, client netip.Addr) *ResponseWriter {
	if s.resp == nil || in.Method == http.MethodHead {
		return nil
	}
	rw := rwPool.Get().(*ResponseWriter)
	*rw = ResponseWriter{w: w, s: s, in: in, res: res, client: client, buf: rw.buf[:0]}
	return rw
}

// Arm marks the response about to be written as the upstream's.
func (rw *ResponseWriter) Arm() { rw.armed = true }

func (rw *ResponseWriter) Header() http.Header         { return rw.w.Header() }
func (rw *ResponseWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *ResponseWriter) WriteHeader(code int) {
	if rw.state != rwUndecided {
		return
	}
	if code < 200 {
		rw.w.WriteHeader(code)
		return
	}
	h := rw.w.Header()
	rw.status = code
	if !rw.armed || code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent ||
		!IsJSON(h["Content-Type"]) || len(h["Content-Encoding"]) > 0 || len(h["Content-Range"]) > 0 || len(h["Trailer"]) > 0 {
		rw.state = rwPass
		rw.w.WriteHeader(code)
		return
	}
	if v := h["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n > rw.s.maxBytes {
			rw.state = rwPass
			rw.w.WriteHeader(code)
			return
		}
	}
	rw.state = rwHold
}

func (rw *ResponseWriter) Write(b []byte) (int, error) {
	switch rw.state {
	case rwUndecided:
		rw.WriteHeader(http.StatusOK)
		return rw.Write(b)
	case rwHold:
		if int64(len(rw.buf)+len(b)) <= rw.s.maxBytes {
			rw.buf = append(rw.buf, b...)
			return len(b), nil
		}
		// Over the cap: what was held goes out as it came, then the rest.
		rw.state = rwPass
		rw.w.WriteHeader(rw.status)
		if _, err := rw.w.Write(rw.buf); err != nil {
			return 0, err
		}
	}
	return rw.w.Write(b)
}

// Flush passes on a response that is not held; a held JSON body is
// complete only at its end.
func (rw *ResponseWriter) Flush() {
	if rw.state == rwHold {
		return
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Close sends a held body, transformed (or as it came when it is not
// valid JSON), with its new Content-Length. The wrapper then goes back to
// its pool.
func (rw *ResponseWriter) Close() error {
	var err error
	if rw.state == rwHold {
		body := rw.buf
		if out, ok := rw.s.resp.apply(body, rw.in, rw.res, rw.client); ok {
			body = out
		}
		rw.w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
		rw.w.WriteHeader(rw.status)
		_, err = rw.w.Write(body)
	}
	rw.Discard()
	return err
}

// Discard returns the wrapper to its pool without sending what it holds.
func (rw *ResponseWriter) Discard() {
	buf := rw.buf[:0]
	if cap(buf) > 256<<10 {
		buf = nil
	}
	*rw = ResponseWriter{buf: buf}
	rwPool.Put(rw)
}
