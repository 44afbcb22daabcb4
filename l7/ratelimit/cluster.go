package ratelimit

import (
	"cmp"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Cluster-wide limits (scope: cluster; docs/security.md "Cluster-wide rate
// limits"). Every node keeps its own buckets and admits requests against
// them exactly as for a local limit; in addition it counts, per key, the
// tokens its requests took (Drain hands them out), and takes the tokens its
// peers report out of its own buckets (TakeRemote), below zero if need be,
// so that every node's bucket sees the whole cluster's consumption, late by
// at most one sync interval plus the delivery time.

// Use is one key's tokens taken by this node's requests since the last
// Drain. Key is the stored form: keys longer than 64 bytes are their
// SHA-256, the same on every node.
type Use struct {
	Key string
	N   uint32
}

// Cluster reports whether the limit is shared with the cluster.
func (l *Limiter) Cluster() bool { return l.conf.Scope == config.RateLimitScopeCluster }

// Fingerprint identifies the limit's semantics (requests, per, burst, key):
// nodes exchange counts only between limits with the same route name and
// fingerprint, so a node running another limit for the route (during a
// rolling config change) neither sends nor takes counts that mean something
// else.
func (l *Limiter) Fingerprint() uint32 { return l.fp }

// fingerprint is computed once, in New: Sync compares it for every message.
func fingerprint(c *config.RateLimit) uint32 {
	h := fnv.New32a()
	h.Write([]byte(strconv.Itoa(c.Requests) + "/" + strconv.FormatInt(int64(c.Per), 10) + "/" + strconv.Itoa(c.Burst) + "/" + c.Key))
	return h.Sum32()
}

// use counts a token taken for key; the shard's lock is held. fresh: key is
// already a private copy (a new bucket's).
func (l *Limiter) use(sh *shard, key string, fresh bool) {
	if n, ok := sh.used[key]; ok {
		sh.used[key] = n + 1
		return
	}
	if len(sh.used) >= l.perShard {
		// As many keys as buckets are being counted: more cannot be
		// worth a message (Drain sends the top keys only).
		return
	}
	if !fresh {
		key = strings.Clone(key)
	}
	sh.used[key] = 1
}

// Drain returns the tokens taken by this node's requests since the last
// Drain, the max largest counts (the rest are forgotten: the peers do not
// learn of them, see the error bound), and starts counting afresh. A local
// limit returns nil.
func (l *Limiter) Drain(max int) []Use {
	if !l.Cluster() || max <= 0 {
		return nil
	}
	var out []Use
	for i := range l.st.shards {
		sh := &l.st.shards[i]
		sh.mu.Lock()
		for k, n := range sh.used {
			out = append(out, Use{Key: k, N: n})
		}
		clear(sh.used)
		sh.mu.Unlock()
	}
	if len(out) > max {
		slices.SortFunc(out, func(a, b Use) int { return cmp.Compare(b.N, a.N) })
		out = out[:max]
	}
	return out
}

// TakeRemote takes n tokens that a peer's requests took for key out of
// this node's bucket. The bucket may go below zero: the debt is paid back
// by the refill before this node admits another request for the key.
func (l *Limiter) TakeRemote(key string, n float64, now time.Time) {
	key = storedKey(key)
	t := now.UnixNano()
	sh := l.shardOf(key)
	sh.mu.Lock()
	b, key, _ := l.bucketAt(sh, key, t)
	b.tokens -= n
	sh.m[key] = b
	sh.mu.Unlock()
}

// Tokens is what key's bucket holds at now (negative: in debt); for tests
// and the admin API.
func (l *Limiter) Tokens(key string, now time.Time) float64 {
	key = storedKey(key)
	sh := l.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.m[key]
	if !ok {
		return l.burst
	}
	return l.refill(b, now.UnixNano()).tokens
}

// Wire format of one message (the cluster's user-message type byte is
// not part of it):
//
//	version 1 | uvarint len, route name | fingerprint (4 bytes, big endian) |
//	{ uvarint len, key | uvarint tokens } ...
//
// A message is at most the size the caller gives (one UDP datagram of
// memberlist's), so the counts of one route may span several messages;
// each stands alone.
const wireVersion = 1

// ErrBadMessage: a message that does not parse (another version, cut).
var ErrBadMessage = errors.New("ratelimit: malformed cluster message")

// EncodeUses packs a route's uses into messages of at most size bytes.
// Keys too long for one message (never: stored keys are at most 64 bytes)
// are skipped.
func EncodeUses(route string, fp uint32, uses []Use, size int) [][]byte {
	var out [][]byte
	var cur []byte
	head := func() []byte {
		b := make([]byte, 0, size)
		b = append(b, wireVersion)
		b = binary.AppendUvarint(b, uint64(len(route)))
		b = append(b, route...)
		return binary.BigEndian.AppendUint32(b, fp)
	}
	headLen := len(head())
	for _, u := range uses {
		need := 2*binary.MaxVarintLen32 + len(u.Key)
		if headLen+need > size {
			continue
		}
		if cur == nil || len(cur)+need > size {
			if cur != nil {
				out = append(out, cur)
			}
			cur = head()
		}
		cur = binary.AppendUvarint(cur, uint64(len(u.Key)))
		cur = append(cur, u.Key...)
		cur = binary.AppendUvarint(cur, uint64(u.N))
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// DecodeUses parses one message.
func DecodeUses(b []byte) (route string, fp uint32, uses []Use, err error) {
	if len(b) < 1 || b[0] != wireVersion {
		return "", 0, nil, ErrBadMessage
	}
	b = b[1:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	route, ok := str()
	if !ok || len(b) < 4 {
		return "", 0, nil, ErrBadMessage
	}
	fp = binary.BigEndian.Uint32(b)
	b = b[4:]
	for len(b) > 0 {
		key, ok := str()
		if !ok {
			return "", 0, nil, ErrBadMessage
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || n > math.MaxUint32 {
			return "", 0, nil, ErrBadMessage
		}
		b = b[k:]
		uses = append(uses, Use{Key: key, N: uint32(n)})
	}
	return route, fp, uses, nil
}
