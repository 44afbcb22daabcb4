//go:build linux

package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l7/ratelimit"
)

// loopPair starts two nodes on loopback (no VIPs, no namespace: no root
// needed), b joining a, and waits until each lists the other.
func loopPair(t *testing.T) (a, b *Node) {
	t.Helper()
	tl := &testLog{t: t}
	t.Cleanup(func() { tl.mu.Lock(); tl.done = true; tl.mu.Unlock() })
	log := slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := func(name, peer string) *Node {
		o := Options{Name: name, Priority: 100, Bind: "127.0.0.1:0", Key: key1, Profile: FastProfile(), Logger: log}
		if peer != "" {
			o.Peers = []string{peer}
		}
		n, err := Start(o)
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n.Leave(ctx)
		})
		return n
	}
	a = start("a", "")
	b = start("b", a.self.String())
	if !waitUntil(5*time.Second, func() bool { return a.ml.NumMembers() == 2 && b.ml.NumMembers() == 2 }) {
		t.Fatalf("the pair did not form: a sees %d, b sees %d members", a.ml.NumMembers(), b.ml.NumMembers())
	}
	return a, b
}

// waitUntil polls cond every 10ms, at most within.
func waitUntil(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func TestUserMessagesReachTheRegisteredHandler(t *testing.T) {
	a, b := loopPair(t)
	got := make(chan []byte, 4)
	b.Handle(MsgRateLimit, func(p []byte) { got <- bytes.Clone(p) })
	want := bytes.Repeat([]byte("x"), MaxUserMessage)
	if n := a.SendToPeers(MsgRateLimit, want); n != 1 {
		t.Fatalf("sent to %d peers, want 1", n)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, want) {
			t.Fatalf("received %d bytes, not what was sent", len(p))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	if n := a.SendToPeers(MsgRateLimit, make([]byte, MaxUserMessage+1)); n != 0 {
		t.Fatal("an oversized message was sent")
	}
	b.Handle(MsgRateLimit, nil)
	a.SendToPeers(MsgRateLimit, []byte("after"))
	// Nothing to wait for: a message without a handler is dropped. A vote
	// after it proves the node still processes messages in order.
	a.SetVote("web", "be1", VoteDown)
	if !waitUntil(5*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.votes.get("a", voteKey("web", "be1")) == VoteDown
	}) {
		t.Fatal("the vote after an unhandled user message did not arrive")
	}
	if len(got) != 0 {
		t.Fatal("a removed handler was called")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("the votes' type byte could be taken")
		}
	}()
	b.Handle(MsgType('v'), func([]byte) {})
}

// TestTwoNodesShareRateLimitConsumption is the cluster-wide rate limit
// over real memberlist nodes: what one node admits is taken out of the
// other's bucket.
func TestTwoNodesShareRateLimitConsumption(t *testing.T) {
	a, b := loopPair(t)
	// 20 per hour: no refill worth counting while the test runs.
	rl := config.RateLimit{Requests: 20, Per: config.Duration(time.Hour), Burst: 20, Key: "client_ip", MaxKeys: 100000, Scope: config.RateLimitScopeCluster}
	la, lb := ratelimit.New(rl), ratelimit.New(rl)
	sync := func(n *Node, l *ratelimit.Limiter) *ratelimit.Sync {
		s := &ratelimit.Sync{
			Limiters:   func() map[string]*ratelimit.Limiter { return map[string]*ratelimit.Limiter{"api": l} },
			Send:       func(m []byte) int { return n.SendToPeers(MsgRateLimit, m) },
			MaxMessage: MaxUserMessage,
		}
		n.Handle(MsgRateLimit, s.Receive)
		return s
	}
	sa, sb := sync(a, la), sync(b, lb)

	now := time.Now()
	for range 15 {
		if !la.Allow("10.0.0.1", now).Allowed {
			t.Fatal("a refused within its burst")
		}
	}
	sa.Flush()
	if !waitUntil(5*time.Second, func() bool { return sb.Counts().KeysReceived >= 1 }) {
		t.Fatalf("b received nothing: a %+v, b %+v", sa.Counts(), sb.Counts())
	}
	allowed := 0
	for range 20 {
		if lb.Allow("10.0.0.1", time.Now()).Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("b admitted %d after a admitted 15 of 20, want 5", allowed)
	}
	// And back: b's 5 leave a's bucket empty.
	sb.Flush()
	if !waitUntil(5*time.Second, func() bool { return sa.Counts().KeysReceived >= 1 }) {
		t.Fatal("a received nothing")
	}
	if la.Allow("10.0.0.1", time.Now()).Allowed {
		t.Fatalf("a admitted a 21st request: tokens %.2f", la.Tokens("10.0.0.1", time.Now()))
	}

	// Many keys span several datagrams, each under the size limit.
	for i := range 3000 {
		la.Allow("k"+strconv.Itoa(i), now)
	}
	before := sa.Counts().Sent
	sa.Flush()
	if sent := sa.Counts().Sent - before; sent < 3 {
		t.Fatalf("3000 keys went in %d datagrams", sent)
	}
	if !waitUntil(5*time.Second, func() bool { return sb.Counts().KeysReceived >= 1+3000 }) {
		t.Fatalf("b received %d of 3001 keys (best effort on loopback should lose none)", sb.Counts().KeysReceived)
	}
	if n := lb.Tokens("k2999", time.Now()); n > 19.01 {
		t.Fatalf("key k2999 has %.2f tokens on b, want 19", n)
	}
}
