package ratelimit

import (
	"sync/atomic"
	"time"
)

// DefaultSyncInterval is how often a node sends its cluster-scoped
// consumption to its peers. The cluster-wide error bound grows with it
// (docs/security.md); the cost is one datagram per peer and cluster-scoped
// route with traffic per interval.
const DefaultSyncInterval = 100 * time.Millisecond

// DefaultSyncKeys bounds the keys one route reports per interval: the most
// used ones go first, the rest are forgotten (under-counted by the peers).
const DefaultSyncKeys = 4096

// Sync shares the consumption of cluster-scoped limiters with the other
// nodes of the cluster. It knows nothing of the transport: the daemon
// gives it a Send to every peer and calls Receive with what peers sent.
type Sync struct {
	// Limiters returns the running generation's cluster-scoped limiters
	// by route name. Called once per Flush and per Receive.
	Limiters func() map[string]*Limiter
	// Send delivers msg to every other node, best effort, and returns how
	// many it was sent to (0: alone). It must not keep msg.
	Send func(msg []byte) int
	// MaxMessage is the largest message Send can carry (bytes).
	MaxMessage int
	// MaxKeys bounds the keys per route and Flush; 0 = DefaultSyncKeys.
	MaxKeys int
	// Now is the clock; nil = time.Now.
	Now func() time.Time

	sent, received, ignored, keysSent, keysReceived atomic.Uint64
}

// SyncCounts are a Sync's counters since it was made.
type SyncCounts struct {
	Sent, Received, Ignored uint64 // messages (Sent: one per peer it went to)
	KeysSent, KeysReceived  uint64
}

// Counts reads the counters.
func (s *Sync) Counts() SyncCounts {
	return SyncCounts{Sent: s.sent.Load(), Received: s.received.Load(), Ignored: s.ignored.Load(),
		KeysSent: s.keysSent.Load(), KeysReceived: s.keysReceived.Load()}
}

// Flush drains every cluster-scoped limiter and sends the counts.
func (s *Sync) Flush() {
	max := s.MaxKeys
	if max <= 0 {
		max = DefaultSyncKeys
	}
	for name, l := range s.Limiters() {
		uses := l.Drain(max)
		if len(uses) == 0 {
			continue
		}
		for _, m := range EncodeUses(name, l.Fingerprint(), uses, s.MaxMessage) {
			if peers := s.Send(m); peers > 0 {
				s.sent.Add(uint64(peers))
			}
		}
		s.keysSent.Add(uint64(len(uses)))
	}
}

// Receive applies a peer's message: its tokens are taken out of this
// node's buckets of the same route, if this node runs the same limit.
// Messages for a route this node does not have, or has with another
// limit, are ignored (counted).
func (s *Sync) Receive(msg []byte) {
	s.received.Add(1)
	route, fp, uses, err := DecodeUses(msg)
	if err != nil {
		s.ignored.Add(1)
		return
	}
	l := s.Limiters()[route]
	if l == nil || !l.Cluster() || l.Fingerprint() != fp {
		s.ignored.Add(1)
		return
	}
	now := s.now()
	for _, u := range uses {
		l.TakeRemote(u.Key, float64(u.N), now)
	}
	s.keysReceived.Add(uint64(len(uses)))
}

func (s *Sync) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run flushes every interval until stop is closed, then once more.
func (s *Sync) Run(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.Flush()
			return
		case <-t.C:
			s.Flush()
		}
	}
}
