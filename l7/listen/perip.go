package listen

import (
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
)

// perIPTable counts a socket's open TCP connections per client address, for
// max_conns_per_ip. It is consulted once per accept and once per close,
// never per request: a sharded map of counters whose entries go away at
// zero, so it holds at most one small entry per open connection, whatever
// the clients do. Connections are counted whether or not a limit is set, so
// a reload that sets one sees the connections already open.
type perIPTable struct {
	seed   maphash.Seed
	shards [perIPShards]perIPShard
}

const perIPShards = 32

type perIPShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [48]byte // one shard per cache line: accepts on many cores do not share one
}

func newPerIPTable() *perIPTable {
	t := &perIPTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = map[netip.Addr]int32{}
	}
	return t
}

func (t *perIPTable) shard(a netip.Addr) *perIPShard {
	return &t.shards[maphash.Comparable(t.seed, a)%perIPShards]
}

// acquire counts a connection from a, unless limit (> 0) connections from
// a are open already; then it reports false and counts nothing.
func (t *perIPTable) acquire(a netip.Addr, limit int) bool {
	sh := t.shard(a)
	sh.mu.Lock()
	n := sh.m[a]
	ok := limit <= 0 || int(n) < limit
	if ok {
		sh.m[a] = n + 1
	}
	sh.mu.Unlock()
	return ok
}

// release uncounts a connection acquire counted.
func (t *perIPTable) release(a netip.Addr) {
	sh := t.shard(a)
	sh.mu.Lock()
	if n := sh.m[a]; n > 1 {
		sh.m[a] = n - 1
	} else {
		delete(sh.m, a)
	}
	sh.mu.Unlock()
}

// count is the number of connections open from a (tests).
func (t *perIPTable) count(a netip.Addr) int {
	sh := t.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int(sh.m[a])
}

// size is the number of addresses with an open connection (tests).
func (t *perIPTable) size() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// peerAddr is the client address of an accepted connection (an IPv4
// client of a dual-stack socket as IPv4), without allocating.
func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
