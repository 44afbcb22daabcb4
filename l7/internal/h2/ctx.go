package h2

import (
	"context"
	"sync"
	"time"
)

// streamCtx is a request's context, cancelled when its stream is reset or
// closed or its connection ends. It is its own type rather than
// context.WithCancel of the connection's context because that registers
// every stream in one map under one lock shared by all the connection's
// streams, and the proxy core's context.AfterFunc on a request context
// (to abort its upstream exchange on a reset) is served here by the
// AfterFunc method, without a goroutine and without touching the
// connection's context. Values come from the connection's context.
type streamCtx struct {
	parent context.Context
	mu     sync.Mutex
	done   chan struct{} // made on the first Done
	err    error
	// first is the first AfterFunc registration, kept inline: the proxy
	// makes exactly one per request (to abort its upstream exchange on a
	// reset), which then costs one allocation (the stop function) instead
	// of two.
	first     afterFunc
	firstUsed bool
	funcs     []*afterFunc
}

type afterFunc struct {
	f       func()
	stopped bool
	fired   bool
}

func newStreamCtx(parent context.Context) *streamCtx { return &streamCtx{parent: parent} }

func (c *streamCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *streamCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *streamCtx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc is what context.AfterFunc uses for a parent of this type: f
// runs in its own goroutine once the context is cancelled; stop prevents
// that and reports whether it did.
func (c *streamCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	a := &c.first
	if c.firstUsed {
		a = &afterFunc{}
	}
	c.firstUsed = true
	a.f = f
	if c.err != nil {
		a.fired = true
		c.mu.Unlock()
		go f()
	} else {
		if a != &c.first {
			c.funcs = append(c.funcs, a)
		}
		c.mu.Unlock()
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.fired || a.stopped {
			return false
		}
		a.stopped = true
		return true
	}
}

// cancel ends the context with context.Canceled; later calls do nothing.
func (c *streamCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	var run []func()
	if c.firstUsed && !c.first.stopped && !c.first.fired {
		c.first.fired = true
		run = append(run, c.first.f)
	}
	for _, a := range c.funcs {
		if !a.stopped {
			a.fired = true
			run = append(run, a.f)
		}
	}
	c.funcs = nil
	c.mu.Unlock()
	for _, f := range run {
		go f()
	}
}

func (c *streamCtx) String() string { return "h2.streamCtx" }
