package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

func limiter(requests int, per time.Duration, burst, maxKeys int) *Limiter {
	rt := config.Route{RateLimit: &config.RateLimit{Requests: requests, Per: config.Duration(per), Burst: burst, MaxKeys: maxKeys}}
	rt.SetDefaults()
	return New(*rt.RateLimit)
}

func TestABucketAllowsItsBurstThenRefillsAtItsRate(t *testing.T) {
	l := limiter(10, time.Second, 3, 0) // a token every 100ms, 3 at once
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		name          string
		at            time.Duration
		wantAllowed   bool
		wantRemaining int
		wantReset     time.Duration
		wantRetry     time.Duration
	}{
		{"the first request finds a full bucket", 0, true, 2, 100 * time.Millisecond, 0},
		{"the second takes another token", 0, true, 1, 200 * time.Millisecond, 0},
		{"the third empties it", 0, true, 0, 300 * time.Millisecond, 0},
		{"the fourth is refused and told to wait a token's time", 0, false, 0, 300 * time.Millisecond, 100 * time.Millisecond},
		{"half a token later it is still refused", 50 * time.Millisecond, false, 0, 250 * time.Millisecond, 50 * time.Millisecond},
		{"a token later it passes", 100 * time.Millisecond, true, 0, 300 * time.Millisecond, 0},
		{"after a long idle the bucket is full, not fuller", 10 * time.Second, true, 2, 100 * time.Millisecond, 0},
	}
	for _, s := range steps {
		d := l.Allow("k", t0.Add(s.at))
		if d.Allowed != s.wantAllowed || d.Remaining != s.wantRemaining || absDiff(d.Reset, s.wantReset) > time.Millisecond || absDiff(d.RetryAfter, s.wantRetry) > time.Millisecond {
			t.Fatalf("%s: %+v", s.name, d)
		}
	}
	if d := l.Allow("other", t0); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("another key shares the bucket: %+v", d)
	}
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}

func TestIdleBucketsExpireAndTheKeyCountIsCapped(t *testing.T) {
	t.Run("refilled buckets are swept as new keys arrive", func(t *testing.T) {
		l := limiter(10, time.Second, 10, 100000) // refills in 1s
		t0 := time.Unix(1_700_000_000, 0)
		for i := range 1000 {
			l.Allow("a"+strconv.Itoa(i), t0)
		}
		if n := l.Len(); n != 1000 {
			t.Fatalf("%d buckets", n)
		}
		// Sweeps are per shard, when a new key lands there: enough new
		// keys that every shard gets some (16 shards; the chance that
		// one gets none of 2000 is below 1e-50).
		for i := range 2000 {
			l.Allow("b"+strconv.Itoa(i), t0.Add(2*time.Second))
		}
		if n := l.Len(); n != 2000 {
			t.Fatalf("%d buckets after the old ones refilled, want the 2000 new ones", n)
		}
	})
	t.Run("max_keys bounds the buckets of a flood of keys", func(t *testing.T) {
		l := limiter(1, time.Hour, 1, 1000)
		t0 := time.Unix(1_700_000_000, 0)
		for i := range 100000 {
			l.Allow("flood"+strconv.Itoa(i), t0)
		}
		if n := l.Len(); n > 1000+nShards {
			t.Fatalf("%d buckets for max_keys 1000", n)
		}
	})
}

func TestAReloadWithTheSameLimitKeepsTheBuckets(t *testing.T) {
	old := limiter(1, time.Hour, 1, 0)
	now := time.Now()
	old.Allow("k", now)
	same := limiter(1, time.Hour, 1, 0)
	same.Adopt(old)
	if d := same.Allow("k", now); d.Allowed {
		t.Fatal("a reload reset the bucket")
	}
	changed := limiter(2, time.Hour, 2, 0)
	changed.Adopt(old)
	if d := changed.Allow("k", now); !d.Allowed {
		t.Fatal("a changed limit kept the old buckets")
	}
}

func TestConcurrentTakesNeverExceedTheBurst(t *testing.T) {
	l := limiter(1, time.Hour, 100, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	now := time.Now()
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if l.Allow("shared", now).Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("%d allowed, want 100", allowed)
	}
}

func TestHeaderValuesOfSmallNumbersDoNotAllocate(t *testing.T) {
	if got := Seconds(1500 * time.Millisecond); got[0] != "2" {
		t.Fatalf("1.5s = %q, want 2 (rounded up)", got)
	}
	if got := Count(5000); got[0] != "5000" {
		t.Fatal(got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Count(42); _ = Seconds(3 * time.Second) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	benchAllow(b, limiter(1_000_000, time.Second, 1_000_000, 0), 0)
}

// benchAllow is requests from 1024 clients in turn; with drainEvery > 0,
// the limiter is drained after every drainEvery requests.
func benchAllow(b *testing.B, l *Limiter, drainEvery int) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i&1023], time.Now())
		i++
		if drainEvery > 0 && i%drainEvery == 0 {
			l.Drain(DefaultSyncKeys)
		}
	}
}

func TestLongKeysAreStoredAsDigests(t *testing.T) {
	l := limiter(1, time.Hour, 1, 0)
	long := string(make([]byte, 8192))
	now := time.Now()
	if !l.Allow(long, now).Allowed || l.Allow(long, now).Allowed {
		t.Fatal("a long key does not get its own bucket")
	}
	if !l.Allow(long+"x", now).Allowed {
		t.Fatal("two long keys share a bucket")
	}
	for i := range l.st.shards {
		for k := range l.st.shards[i].m {
			if len(k) > maxKeyLen {
				t.Fatalf("a %d-byte key is stored", len(k))
			}
		}
	}
}
