// Package ratelimit is a token bucket per key, in memory, for a route's
// rate_limit. Buckets live in a sharded map; a bucket idle long enough to
// have refilled is indistinguishable from a new one, so it is dropped
// (sweeps run on the request path, at most once per shard per refill time,
// never from a goroutine of their own), and a cap on the number of keys
// bounds the memory whatever the clients send.
//
// A cluster-scoped limit (scope: cluster) also counts the tokens its
// requests took, for the peers, and takes theirs (cluster.go, sync.go).
package ratelimit

import (
	"crypto/sha256"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

const (
	nShards = 16
	// maxKeyLen: longer keys are stored as their SHA-256.
	maxKeyLen = 64
)

// Limiter is one route's buckets.
type Limiter struct {
	conf     config.RateLimit
	rate     float64 // tokens per second
	burst    float64
	limitVal []string // RateLimit-Limit
	// idle is how long an untouched bucket takes to refill: after it, the
	// bucket is as good as absent.
	idle     time.Duration
	perShard int
	fp       uint32
	st       *store
}

type store struct {
	seed   maphash.Seed
	shards [nShards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]bucket
	// used counts the tokens taken by this node's requests since the last
	// Drain, per key; nil for a local limit (scope: cluster only).
	used      map[string]uint32
	lastSweep int64
	_         [24]byte // keep shards' locks on separate cache lines
}

type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds
}

// New builds a limiter from a validated config.
func New(c config.RateLimit) *Limiter {
	l := &Limiter{
		conf:     c,
		rate:     float64(c.Requests) / c.Per.D().Seconds(),
		burst:    float64(c.Burst),
		limitVal: []string{strconv.Itoa(c.Burst)},
		perShard: max(1, (c.MaxKeys+nShards-1)/nShards),
		fp:       fingerprint(&c),
		st:       &store{seed: maphash.MakeSeed()},
	}
	l.idle = time.Duration(l.burst / l.rate * float64(time.Second))
	for i := range l.st.shards {
		l.st.shards[i].m = map[string]bucket{}
		if c.Scope == config.RateLimitScopeCluster {
			l.st.shards[i].used = map[string]uint32{}
		}
	}
	return l
}

// Adopt keeps the buckets of the limiter this one replaces at a reload when
// the limit is unchanged, so a reload is no way around it.
func (l *Limiter) Adopt(old *Limiter) {
	if old != nil && old.conf == l.conf {
		l.st = old.st
	}
}

// Decision is the outcome of one request's take.
type Decision struct {
	Allowed    bool
	Remaining  int
	Reset      time.Duration // until the bucket is full again
	RetryAfter time.Duration // until a token is there (when refused)
}

// Allow takes a token from key's bucket.
func (l *Limiter) Allow(key string, now time.Time) Decision {
	key = storedKey(key)
	t := now.UnixNano()
	sh := l.shardOf(key)
	sh.mu.Lock()
	b, key, ok := l.bucketAt(sh, key, t)
	var d Decision
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
		if sh.used != nil {
			l.use(sh, key, !ok)
		}
	} else {
		d.RetryAfter = l.dur(1 - b.tokens)
	}
	sh.m[key] = b
	sh.mu.Unlock()
	d.Remaining = int(b.tokens)
	d.Reset = l.dur(l.burst - b.tokens)
	return d
}

// storedKey is key as the buckets are keyed: client-chosen keys
// (header:NAME) could be kilobytes each, so a long one is kept as its
// digest, and max_keys bounds the bytes too.
func storedKey(key string) string {
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		return string(sum[:])
	}
	return key
}

func (l *Limiter) shardOf(key string) *shard {
	return &l.st.shards[maphash.String(l.st.seed, key)%nShards]
}

// bucketAt is key's bucket refilled to t, with sh locked: a new key gets a full
// bucket (after a sweep when one is due) and a copy of key to store, since
// the key may be a piece of a larger string (a header value) that the map
// must not keep alive. ok reports whether the bucket existed.
func (l *Limiter) bucketAt(sh *shard, key string, t int64) (b bucket, stored string, ok bool) {
	b, ok = sh.m[key]
	if !ok {
		if len(sh.m) >= l.perShard || t-sh.lastSweep > int64(l.idle) && len(sh.m) > 0 {
			l.sweep(sh, t)
		}
		return bucket{tokens: l.burst, last: t}, strings.Clone(key), false
	}
	return l.refill(b, t), key, true
}

// refill is b with the tokens earned up to t (at most burst).
func (l *Limiter) refill(b bucket, t int64) bucket {
	if t > b.last {
		b.tokens = math.Min(l.burst, b.tokens+float64(t-b.last)/1e9*l.rate)
		b.last = t
	}
	return b
}

func (l *Limiter) dur(tokens float64) time.Duration {
	return time.Duration(tokens / l.rate * float64(time.Second))
}

// sweep drops the shard's refilled buckets and, if the shard is still at
// its cap, an eighth of it picked at random (map order): a dropped bucket
// starts full again, which favours the clients over memory only this far.
// A bucket in debt (peers' consumption, scope: cluster) takes longer than
// idle to refill: it stays until it has.
func (l *Limiter) sweep(sh *shard, t int64) {
	sh.lastSweep = t
	for k, b := range sh.m {
		if t-b.last >= int64(l.idle) && (b.tokens >= 0 || b.tokens+float64(t-b.last)/1e9*l.rate >= l.burst) {
			delete(sh.m, k)
		}
	}
	if len(sh.m) < l.perShard {
		return
	}
	n := max(1, len(sh.m)/8)
	for k := range sh.m {
		delete(sh.m, k)
		if n--; n == 0 {
			break
		}
	}
}

// Len is the number of buckets held (for tests and metrics).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.st.shards {
		sh := &l.st.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// LimitHeader is the RateLimit-Limit value (the bucket's size).
func (l *Limiter) LimitHeader() []string { return l.limitVal }

// Key is what the route's buckets are keyed on.
func (l *Limiter) Key() string { return l.conf.Key }

// Seconds renders a duration as whole seconds, rounded up, as a header
// value; small values come from a table, so no allocation.
func Seconds(d time.Duration) []string {
	s := int64((d + time.Second - 1) / time.Second)
	return Count(s)
}

// Count renders n as a header value; small values come from a table.
func Count(n int64) []string {
	if n >= 0 && n < int64(len(small)) {
		return small[n][:]
	}
	return []string{strconv.FormatInt(n, 10)}
}

var small = func() (t [1024][1]string) {
	for i := range t {
		t[i][0] = strconv.Itoa(i)
	}
	return t
}()
