package auth

import (
	"hash/maphash"
	"sync"
	"time"
)

// A client sends the same token with every request until it expires; a
// signature check costs tens of microseconds (RSA, ECDSA, Ed25519) and the
// parse around it ~100 allocations. The cache remembers, per route, the
// result of checking a token's signature, issuer, audience and claim
// conditions, keyed by the exact token: a token that differs in one byte is
// checked afresh, so the cache can only ever repeat a verification go-jose
// made. Time claims are checked on every use; an entry made with a remote
// key set is dropped when the set is refreshed (so a revoked key stops
// verifying within refresh_interval) or goes stale. Only tokens that passed
// those checks are kept: others are cheap to invent and would crowd the
// good ones out.
const (
	cacheShards = 16
	// cacheBytes bounds what one route's cache holds (tokens and the claim
	// values it forwards), roughly.
	cacheBytes = 4 << 20
	// cacheMaxToken: larger tokens are checked every time.
	cacheMaxToken = 4096
)

type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[string]*verifiedToken
	bytes int
	_     [40]byte
}

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[string]*verifiedToken{}
	}
	return c
}

func (c *tokenCache) shard(tok string) *cacheShard {
	return &c.shards[maphash.String(c.seed, tok)%cacheShards]
}

// get returns the entry for tok, nil when there is none or it was made
// with another remote key set than set.
func (c *tokenCache) get(tok string, set *remoteSet) *verifiedToken {
	if c == nil || len(tok) > cacheMaxToken {
		return nil
	}
	sh := c.shard(tok)
	sh.mu.Lock()
	vt := sh.m[tok]
	if vt != nil && vt.set != set {
		delete(sh.m, tok)
		sh.bytes -= vt.size
		vt = nil
	}
	sh.mu.Unlock()
	return vt
}

func (c *tokenCache) put(tok string, vt *verifiedToken, now time.Time) {
	if c == nil || len(tok) > cacheMaxToken {
		return
	}
	sh := c.shard(tok)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.m[tok]; old != nil {
		sh.bytes -= old.size
	}
	if sh.bytes+vt.size > cacheBytes/cacheShards {
		sh.evict(float64(now.Unix()))
	}
	sh.m[tok] = vt
	sh.bytes += vt.size
}

// evict drops the expired entries and, when that is not enough, a quarter
// of the shard chosen by map order (random).
func (sh *cacheShard) evict(now float64) {
	for k, vt := range sh.m {
		if vt.exp < now {
			delete(sh.m, k)
			sh.bytes -= vt.size
		}
	}
	if sh.bytes < cacheBytes/cacheShards*3/4 {
		return
	}
	n := len(sh.m) / 4
	for k, vt := range sh.m {
		if n <= 0 {
			break
		}
		delete(sh.m, k)
		sh.bytes -= vt.size
		n--
	}
}

// len is the number of entries (tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}
