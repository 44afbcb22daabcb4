package ratelimit

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func clusterLimiter(requests int, per time.Duration, burst, maxKeys int) *Limiter {
	rt := config.Route{RateLimit: &config.RateLimit{Requests: requests, Per: config.Duration(per), Burst: burst, MaxKeys: maxKeys, Scope: config.RateLimitScopeCluster}}
	rt.SetDefaults()
	return New(*rt.RateLimit)
}

func usesOf(us []Use) map[string]uint32 {
	m := map[string]uint32{}
	for _, u := range us {
		m[u.Key] = u.N
	}
	return m
}

func TestRemoteAccounting(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at          time.Duration
		remote      float64 // > 0: a peer reports this many tokens for "k"
		wantAllowed bool    // else: a local request for "k"
	}
	tests := []struct {
		name      string
		cluster   bool
		steps     []step
		wantDrain map[string]uint32 // nil: nothing to drain
	}{
		{"a local limit counts nothing for the peers", false, []step{
			{0, 0, true}, {0, 0, true}, {0, 0, true}, {0, 0, false},
		}, nil},
		{"a cluster limit counts the tokens its requests took, not the refusals", true, []step{
			{0, 0, true}, {0, 0, true}, {0, 0, true}, {0, 0, false},
		}, map[string]uint32{"k": 3}},
		{"a peer's consumption empties the bucket", true, []step{
			{0, 2, false}, {0, 0, true}, {0, 0, false},
		}, map[string]uint32{"k": 1}},
		{"a peer's consumption beyond the bucket is a debt", true, []step{
			{0, 5, false}, // 3 - 5 = -2
			{0, 0, false},
			{250 * time.Millisecond, 0, false}, // -2 + 2.5 = 0.5: still refused
			{300 * time.Millisecond, 0, true},  // -2 + 3 = 1: the debt is paid back, one passes
			{300 * time.Millisecond, 0, false},
		}, map[string]uint32{"k": 1}},
		{"a debt is not forgotten when the bucket would count as idle", true, []step{
			{0, 33, false}, // -30: three seconds of refill, ten times idle (300ms)
			{2 * time.Second, 0, false},
			{3100 * time.Millisecond, 0, true},
		}, map[string]uint32{"k": 1}},
		{"remote tokens never overfill the bucket", true, []step{
			{0, 1, false}, {10 * time.Second, 0, true}, {10 * time.Second, 0, true}, {10 * time.Second, 0, true}, {10 * time.Second, 0, false},
		}, map[string]uint32{"k": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limiter(10, time.Second, 3, 0) // a token every 100ms, 3 at once
			if tt.cluster {
				l = clusterLimiter(10, time.Second, 3, 0)
			}
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.remote > 0 {
					l.TakeRemote("k", s.remote, now)
					if len(l.Drain(100)) != 0 && !tt.cluster {
						t.Fatal("a local limit drained something")
					}
					continue
				}
				// Sweeps must not drop a bucket in debt: new keys arrive
				// in every shard between steps.
				for j := range 64 {
					l.Allow("other"+strconv.Itoa(i)+"-"+strconv.Itoa(j), now)
				}
				if d := l.Allow("k", now); d.Allowed != s.wantAllowed {
					t.Fatalf("step %d (at %v): %+v, tokens now %.2f", i, s.at, d, l.Tokens("k", now))
				}
			}
			got := usesOf(l.Drain(1000))
			if tt.wantDrain == nil {
				if len(got) != 0 {
					t.Fatalf("drained %v from a local limit", got)
				}
				return
			}
			if got["k"] != tt.wantDrain["k"] {
				t.Fatalf("drained k=%d, want %d", got["k"], tt.wantDrain["k"])
			}
			if again := l.Drain(1000); len(again) != 0 {
				t.Fatalf("a second drain returned %v", again)
			}
		})
	}
}

func TestDrainIsBounded(t *testing.T) {
	t.Run("the most used keys go first", func(t *testing.T) {
		l := clusterLimiter(1000, time.Second, 1000, 0)
		now := time.Now()
		for i := range 100 {
			for range i + 1 {
				l.Allow("k"+strconv.Itoa(i), now)
			}
		}
		got := l.Drain(10)
		if len(got) != 10 {
			t.Fatalf("%d uses", len(got))
		}
		for _, u := range got {
			if u.N < 91 {
				t.Fatalf("%s (%d) is not among the ten most used", u.Key, u.N)
			}
		}
	})
	t.Run("the counted keys are capped like the buckets", func(t *testing.T) {
		l := clusterLimiter(1, time.Hour, 1, 160)
		now := time.Now()
		for i := range 100000 {
			l.Allow("flood"+strconv.Itoa(i), now)
		}
		if n := len(l.Drain(1 << 30)); n > 160+nShards {
			t.Fatalf("%d keys counted for max_keys 160", n)
		}
		for i := range 100000 {
			l.TakeRemote("remote"+strconv.Itoa(i), 1, now)
		}
		if n := l.Len(); n > 160+nShards {
			t.Fatalf("%d buckets for max_keys 160 after remote takes", n)
		}
	})
	t.Run("long keys travel as their digest and land in the same bucket", func(t *testing.T) {
		a, b := clusterLimiter(1, time.Hour, 1, 0), clusterLimiter(1, time.Hour, 1, 0)
		long := strings.Repeat("x", 500)
		now := time.Now()
		a.Allow(long, now)
		us := a.Drain(10)
		if len(us) != 1 || len(us[0].Key) > maxKeyLen {
			t.Fatalf("%d uses, key of %d bytes", len(us), len(us[0].Key))
		}
		b.TakeRemote(us[0].Key, float64(us[0].N), now)
		if b.Allow(long, now).Allowed {
			t.Fatal("the peer's use of the long key was not applied to its bucket")
		}
	})
}

func TestMessagesRoundTripAndStayUnderTheSize(t *testing.T) {
	var uses []Use
	for i := range 300 {
		uses = append(uses, Use{Key: "10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256), N: uint32(i * 1000)})
	}
	uses = append(uses, Use{Key: string(make([]byte, 32)), N: 1}) // a digest: any bytes
	msgs := EncodeUses("api", 0xdeadbeef, uses, 1200)
	if len(msgs) < 2 {
		t.Fatalf("%d messages for %d keys", len(msgs), len(uses))
	}
	var got []Use
	for _, m := range msgs {
		if len(m) > 1200 {
			t.Fatalf("a message of %d bytes", len(m))
		}
		route, fp, us, err := DecodeUses(m)
		if err != nil || route != "api" || fp != 0xdeadbeef {
			t.Fatalf("%q %x %v", route, fp, err)
		}
		got = append(got, us...)
	}
	if len(got) != len(uses) {
		t.Fatalf("%d uses back, want %d", len(got), len(uses))
	}
	for i := range uses {
		if got[i] != uses[i] {
			t.Fatalf("use %d: %+v, want %+v", i, got[i], uses[i])
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 5, 'a'}, append(msgs[0][:len(msgs[0]):len(msgs[0])], 3, 'a')} {
		if _, _, _, err := DecodeUses(bad); err == nil {
			t.Fatalf("%x parsed", bad)
		}
	}
}

// TestSyncBetweenTwoLimiters wires two nodes' Syncs back to back (no
// network: the cluster package's test does that).
func TestSyncBetweenTwoLimiters(t *testing.T) {
	a, b := clusterLimiter(20, time.Second, 20, 0), clusterLimiter(20, time.Second, 20, 0)
	other := clusterLimiter(21, time.Second, 20, 0) // another limit for the same route name
	var sa, sb, sc *Sync
	sa = &Sync{Limiters: func() map[string]*Limiter { return map[string]*Limiter{"api": a} }, MaxMessage: 1200,
		Send: func(m []byte) int { sb.Receive(m); sc.Receive(m); return 2 }}
	sb = &Sync{Limiters: func() map[string]*Limiter { return map[string]*Limiter{"api": b} }, MaxMessage: 1200}
	sc = &Sync{Limiters: func() map[string]*Limiter { return map[string]*Limiter{"api": other} }, MaxMessage: 1200}
	now := time.Now()
	for range 15 {
		a.Allow("client", now)
	}
	sa.Flush()
	allowed := 0
	for range 20 {
		if b.Allow("client", now).Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("b admitted %d after a took 15 of 20, want 5", allowed)
	}
	if n := other.Tokens("client", now); n != 20 {
		t.Fatalf("a node with another limit took the counts: %v tokens", n)
	}
	if c := sa.Counts(); c.Sent != 2 || c.KeysSent != 1 {
		t.Fatalf("a: %+v", c)
	}
	if c := sb.Counts(); c.Received != 1 || c.Ignored != 0 || c.KeysReceived != 1 {
		t.Fatalf("b: %+v", c)
	}
	if c := sc.Counts(); c.Received != 1 || c.Ignored != 1 {
		t.Fatalf("c: %+v", c)
	}
}

func BenchmarkAllowCluster(b *testing.B) {
	// Drained as the sync does every 100ms, at ~10M requests/s/core.
	benchAllow(b, clusterLimiter(1_000_000, time.Second, 1_000_000, 0), 100_000)
}

func TestDrainLosesNoConcurrentTake(t *testing.T) {
	l := clusterLimiter(1, time.Hour, 1000, 0)
	now := time.Now()
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				if l.Allow("k"+strconv.Itoa((g+i)%7), now).Allowed {
					allowed.Add(1)
				}
				l.TakeRemote("r"+strconv.Itoa(i%5), 0.5, now)
			}
		})
	}
	var drained int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			for _, u := range l.Drain(100) {
				drained += int64(u.N)
			}
		}
	}()
	wg.Wait()
	<-done
	for _, u := range l.Drain(100) {
		drained += int64(u.N)
	}
	if drained != allowed.Load() {
		t.Fatalf("drained %d tokens, %d were taken", drained, allowed.Load())
	}
}
