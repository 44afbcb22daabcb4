// Package httpdate keeps the current HTTP Date header value (RFC 9110
// §5.6.7), formatted at most once per second for every server in the
// process: formatting it per response would cost more than the rest of a
// small response's header.
package httpdate

import (
	"net/http"
	"sync/atomic"
	"time"
)

type stamp struct {
	sec int64
	v   []string // one-element slice, cap 1: a header map can share it
}

var cur atomic.Pointer[stamp]

// Value returns the Date value for now as a one-element slice with cap 1,
// so that a caller can put it in a header map without copying: an Add on
// that key copies instead of writing into it. Callers must not modify it.
func Value() []string {
	now := time.Now()
	s := cur.Load()
	if s != nil && s.sec == now.Unix() {
		return s.v
	}
	v := now.UTC().Format(http.TimeFormat)
	s = &stamp{sec: now.Unix(), v: []string{v}}
	cur.Store(s)
	return s.v
}
