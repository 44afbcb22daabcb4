package discovery

import (
	"context"
	"time"
)

// Static is a fixed set: the pool's endpoints from the config file.
type Static []Endpoint

// Run hands the set over once and waits for ctx.
func (s Static) Run(ctx context.Context, sink Sink) {
	sink.Set(append([]Endpoint(nil), s...))
	<-ctx.Done()
}

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
