package pool

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-lb/portcullis/internal/config"
	"github.com/portcullis-lb/portcullis/l4/maglev"
)

// balancer is one load-balancing algorithm. prepare builds what it needs
// from a new endpoint set (once per set, off the hot path); pick returns a
// usable endpoint of the set, or nil. pick must not allocate.
type balancer interface {
	prepare(s *endpointSet) error
	pick(s *endpointSet, r *http.Request, f filter) *Endpoint
}

func newBalancer(c config.Pool) (balancer, error) {
	switch c.Algorithm {
	case "round_robin":
		return roundRobin{}, nil
	case "random":
		return random{}, nil
	case "least_request":
		return leastRequest{}, nil
	case "consistent_hash":
		key := config.DefaultHashKey
		if c.Hash != nil {
			key = c.Hash.Key
		}
		return newHashBalancer(key)
	case "sticky":
		fb, err := newBalancer(config.Pool{Algorithm: c.Sticky.Fallback})
		if err != nil || c.Sticky.Fallback == "sticky" || c.Sticky.Fallback == "consistent_hash" {
			return nil, fmt.Errorf("sticky.fallback %q: use round_robin, random or least_request", c.Sticky.Fallback)
		}
		return sticky{cookie: c.Sticky.Cookie, fallback: fb}, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", c.Algorithm)
}

// scan is every algorithm's last resort when its own choices are unusable:
// the first usable live endpoint from a starting point.
func scan(s *endpointSet, start int, f *filter) *Endpoint {
	n := len(s.live)
	for i := range n {
		if e := s.live[(start+i)%n]; f.usable(e) {
			return e
		}
	}
	return nil
}

// roundRobin is smooth weighted round robin (nginx's): weights 5,1,1 give
// a a b a c a a rather than a burst of five a's. The sequence is computed
// once per endpoint set and a Pick takes the next slot with one atomic add,
// so concurrent Picks never wait on a lock. The cost is memory (one int32
// per unit of weight, after dividing the weights by their common divisor)
// and a cap: when the weights add up to more than maxRRSequence they are
// scaled down, which rounds small shares (never below one slot). An unusable
// endpoint's slot passes to the next slot's endpoint.
type roundRobin struct{}

const maxRRSequence = 1 << 14

func (roundRobin) prepare(s *endpointSet) error {
	s.rr = smoothSequence(s.live)
	return nil
}

func smoothSequence(live []*Endpoint) []int32 {
	if len(live) == 0 {
		return nil
	}
	w := make([]int, len(live))
	g, sum := 0, 0
	for i, e := range live {
		w[i] = e.Weight
		g = gcd(g, e.Weight)
	}
	for i := range w {
		w[i] /= g
		sum += w[i]
	}
	if sum > maxRRSequence {
		scaled := 0
		for i := range w {
			w[i] = max(1, w[i]*maxRRSequence/sum)
			scaled += w[i]
		}
		sum = scaled
	}
	seq := make([]int32, 0, sum)
	cur := make([]int, len(w))
	for range sum {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		seq = append(seq, int32(best))
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (roundRobin) pick(s *endpointSet, _ *http.Request, f filter) *Endpoint {
	n := uint64(len(s.rr))
	if n == 0 {
		return nil
	}
	pos := s.rrPos.Add(1) - 1
	// Walk on from the slot a little, then give up on the order and scan:
	// a pool whose heavy endpoints are all out must still find a light one
	// without walking the whole sequence.
	for i := range min(n, uint64(2*len(s.live)+2)) {
		if e := s.live[s.rr[(pos+i)%n]]; f.usable(e) {
			return e
		}
	}
	return scan(s, int(pos%uint64(len(s.live))), &f)
}

// random picks by weight.
type random struct{}

func (random) prepare(*endpointSet) error { return nil }

func (random) pick(s *endpointSet, _ *http.Request, f filter) *Endpoint {
	if s.total == 0 {
		return nil
	}
	for range 3 {
		if e := weighted(s); f.usable(e) {
			return e
		}
	}
	return scan(s, rand.IntN(len(s.live)), &f)
}

// weighted draws a live endpoint with probability weight/total.
func weighted(s *endpointSet) *Endpoint { return s.live[weightedIndex(s)] }

func weightedIndex(s *endpointSet) int {
	i, _ := slices.BinarySearch(s.cum, rand.IntN(s.total)+1)
	return i
}

// leastRequest is the power of two choices: two endpoints drawn by weight,
// the one with fewer requests in flight per unit of weight wins, and a tie
// (an idle pool) goes to the first drawn. Drawing two rather than scanning
// all keeps a Pick O(1) and avoids the herd that "the least loaded of all"
// causes when many requests see the same counts. Because both the draw and
// the comparison follow the weights, an endpoint's share follows its weight
// whether the pool is idle (the draw decides) or busy (the counts decide).
type leastRequest struct{}

func (leastRequest) prepare(*endpointSet) error { return nil }

func (leastRequest) pick(s *endpointSet, _ *http.Request, f filter) *Endpoint {
	n := len(s.live)
	if n == 0 {
		return nil
	}
	ia := weightedIndex(s)
	ib := ia
	if n > 1 {
		if ib = weightedIndex(s); ib == ia {
			// A heavy endpoint can be drawn twice; a second choice must be
			// another endpoint, or a busy heavy one would go unchallenged.
			ib = (ia + 1 + rand.IntN(n-1)) % n
		}
	}
	a, b := s.live[ia], s.live[ib]
	ua, ub := f.usable(a), a != b && f.usable(b)
	switch {
	case ua && ub:
		// inflight_a/w_a <= inflight_b/w_b, without division.
		if a.st.inflight.Load()*int64(b.Weight) <= b.st.inflight.Load()*int64(a.Weight) {
			return a
		}
		return b
	case ua:
		return a
	case ub:
		return b
	}
	return scan(s, rand.IntN(n), &f)
}

// hashBalancer is consistent hashing with a Maglev table over the live
// endpoints (l4/maglev, the L4 path's own construction), keyed by the client
// IP, a header or a cookie. The table is a pure function of the endpoint
// addresses and weights, so every proxy of a cluster sends a key to the same
// endpoint. A key whose endpoint is ejected or full walks on to the next
// slots, which spreads those keys over the others in proportion to their
// shares; a request without the key gets a weighted random endpoint.
type hashBalancer struct {
	kind hashKind
	name string // canonical header name, or cookie name
}

type hashKind uint8

const (
	hashClientIP hashKind = iota
	hashHeader
	hashCookie
)

func newHashBalancer(key string) (balancer, error) {
	kind, name, _ := strings.Cut(key, ":")
	switch {
	case key == "client_ip":
		return hashBalancer{kind: hashClientIP}, nil
	case kind == "header" && name != "":
		return hashBalancer{kind: hashHeader, name: http.CanonicalHeaderKey(name)}, nil
	case kind == "cookie" && name != "":
		return hashBalancer{kind: hashCookie, name: name}, nil
	}
	return nil, fmt.Errorf("hash.key %q: use client_ip, header:NAME or cookie:NAME", key)
}

// maglevSeed is fixed: the L7 tables need no per-cluster secret, only to be
// the same on every node.
const maglevSeed = 0

// maglevSize keeps about a hundred slots per endpoint, which Maglev needs
// for shares within about 1% of the weights, in a table as small as that
// allows (4099 slots is 16 KiB).
func maglevSize(n int) uint64 {
	switch {
	case n*100 <= 4099:
		return 4099
	case n*100 <= 65537:
		return 65537
	}
	return min(maglev.NextPrime(uint64(n)*100), maglev.MaxSize)
}

func (hashBalancer) prepare(s *endpointSet) error {
	bs := make([]maglev.Backend, len(s.live))
	for i, e := range s.live {
		bs[i] = maglev.Backend{ID: e.Address, Weight: uint32(e.Weight)}
	}
	t, err := maglev.New(bs, maglevSize(len(bs)), maglevSeed)
	if err != nil {
		return fmt.Errorf("consistent hash table: %w", err)
	}
	s.mag = t
	return nil
}

func (h hashBalancer) pick(s *endpointSet, r *http.Request, f filter) *Endpoint {
	if len(s.live) == 0 {
		return nil
	}
	key, ok := h.key(r)
	if !ok {
		return random{}.pick(s, r, f)
	}
	hv := hash32(key)
	size := s.mag.Size
	for i := range uint64(64) {
		idx := s.mag.Slots[(uint64(hv)+i)%size]
		if idx >= 0 {
			if e := s.live[idx]; f.usable(e) {
				return e
			}
		}
	}
	return scan(s, int(uint64(hv)%uint64(len(s.live))), &f)
}

func (h hashBalancer) key(r *http.Request) (string, bool) {
	switch h.kind {
	case hashClientIP:
		ip := clientIP(r.RemoteAddr)
		return ip, ip != ""
	case hashHeader:
		if v := r.Header[h.name]; len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	case hashCookie:
		return cookieValue(r, h.name)
	}
	return "", false
}

// clientIP is the host part of a RemoteAddr, without allocating.
func clientIP(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if i := strings.IndexByte(addr, ']'); i > 0 {
			return addr[1:i]
		}
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}

// cookieValue finds a cookie without parsing every cookie into objects as
// http.Request.Cookie does.
func cookieValue(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, v != ""
			}
		}
	}
	return "", false
}

// hash32 is FNV-1a with the murmur3 finalizer: FNV alone leaves keys that
// differ in their last byte (client IPs of one subnet) close together.
func hash32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// sticky sends a client back to the endpoint its cookie names; without a
// usable one it asks the fallback algorithm, and AfterPick sets the cookie.
// A drained endpoint (weight 0) keeps its sticky clients, as the L4 path
// keeps a drained backend's flows.
type sticky struct {
	cookie   string
	fallback balancer
}

func (s sticky) prepare(set *endpointSet) error { return s.fallback.prepare(set) }

func (s sticky) pick(set *endpointSet, r *http.Request, f filter) *Endpoint {
	if id, ok := cookieValue(r, s.cookie); ok {
		if e := set.byID[id]; e != nil && f.usable(e) {
			return e
		}
	}
	return s.fallback.pick(set, r, f)
}

// stickyID names an endpoint in a cookie: 48 bits of a hash of its address,
// so the cookie reveals nothing of the network and survives reloads and
// restarts (it is the same on every node).
func stickyID(addr string) string {
	return strconv.FormatUint(maglev.HashID(0, 's', addr)>>16, 36)
}

// AfterPick sets the sticky cookie when the pool is sticky and the request
// did not already carry the picked endpoint's; otherwise it does nothing.
// Call it before the response headers are written.
func (p *Pool) AfterPick(w http.ResponseWriter, r *http.Request, e *Endpoint) {
	sc := p.sticky
	if sc == nil || e == nil {
		return
	}
	if v, ok := cookieValue(r, sc.cookie); ok && v == e.id {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sc.cookie, Value: e.id, Path: "/", MaxAge: sc.maxAge,
		Secure: sc.secure, HttpOnly: sc.httpOnly, SameSite: http.SameSiteLaxMode,
	})
}
