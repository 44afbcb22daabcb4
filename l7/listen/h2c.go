//lint:file-ignore SA1019 net/http serves h2c with prior knowledge but has no `Upgrade: h2c` (RFC 7540 §3.2), which the L7 issue asks for; x/net's h2c package is the only implementation of it.

package listen

import (
	"net/http"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// h2cUpgrade serves the HTTP/1.1 `Upgrade: h2c` form of cleartext HTTP/2
// (RFC 7540 §3.2). net/http serves h2c with prior knowledge itself
// (http.Protocols.SetUnencryptedHTTP2) but refuses to implement Upgrade, so
// only requests that ask for it are handed to x/net's h2c handler; every
// other request pays one header lookup. RFC 9113 deprecated the Upgrade
// form, but curl --http2 and some gRPC clients still use it.
//
// An upgraded connection is hijacked from http.Server, so the front keeps
// it in a set of its own to drain and close it.
type h2cUpgrade struct {
	f     *front
	inner http.Handler
	up    http.Handler
}

func newH2CUpgrade(f *front, inner http.Handler) http.Handler {
	l := f.cfg
	s := &http2.Server{ //nolint:staticcheck // x/net's server is the only one that takes an upgraded connection
		MaxConcurrentStreams: uint32(l.H2MaxConcurrentStreams),
		IdleTimeout:          l.IdleTimeout.D(),
	}
	return &h2cUpgrade{f: f, inner: inner, up: h2c.NewHandler(upgradedRequest{inner}, s)}
}

// upgradedRequest presents the request that carried `Upgrade: h2c` as what
// it becomes, stream 1 of an HTTP/2 connection: x/net leaves it marked
// HTTP/1.1 with its upgrade headers, which would mislead the core's
// protocol-dependent handling and access log. Once per upgraded connection.
type upgradedRequest struct{ h http.Handler }

func (u upgradedRequest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		r2 := *r
		r2.Proto, r2.ProtoMajor, r2.ProtoMinor = "HTTP/2.0", 2, 0
		r2.Header = r.Header.Clone()
		for _, h := range []string{"Upgrade", "Connection", "Http2-Settings"} {
			r2.Header.Del(h)
		}
		r = &r2
	}
	u.h.ServeHTTP(w, r)
}

func (u *h2cUpgrade) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := r.Header["Upgrade"]
	if r.ProtoMajor != 1 || len(up) == 0 || !hasToken(up, "h2c") {
		u.inner.ServeHTTP(w, r)
		return
	}
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	if ci != nil {
		u.f.upMu.Lock()
		u.f.upgraded[ci] = struct{}{}
		u.f.upMu.Unlock()
		ci.reclassify(protoH1, protoH2)
		defer func() {
			u.f.upMu.Lock()
			delete(u.f.upgraded, ci)
			u.f.upMu.Unlock()
		}()
	}
	// Serves the whole HTTP/2 connection before it returns.
	u.up.ServeHTTP(w, r)
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
