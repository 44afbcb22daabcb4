// Package maglev builds Maglev consistent-hashing lookup tables for the L4
// data plane.
//
// A Maglev table (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016) maps every slot of a fixed-size, prime
// sized array to a backend. A flow is assigned by hashing its 5-tuple and
// looking up Slots[hash % Size]. The construction gives each backend an
// almost equal (here: weight-proportional) share of the slots, and when the
// backend set changes only a small fraction of slots beyond those of the
// removed/added backend change owner, so most established flows keep going
// to the same backend even on a node that has no connection state for them.
//
// # Determinism and cluster compatibility
//
// Every node of a cluster must compute the identical table from the same
// configuration, otherwise a flow that moves between nodes (ECMP rehash,
// node failure) would be sent to a different backend. New is therefore a
// pure function of the set of (ID, Weight) pairs, the size and the seed:
// it uses no map iteration, no randomness and only fixed-width unsigned
// integer arithmetic. The order of the backends slice does NOT matter:
// New sorts the backends by ID (byte-wise) internally, so two nodes that
// list the same backends in different orders build the same assignment of
// slots to IDs. (Slots holds indices into the caller's slice, so the raw
// index values differ between such nodes, but the backend each slot points
// to is the same.) IDs must be unique, which is what makes the sort a total
// order.
//
// The exact algorithm below is a wire-level contract: changing any detail
// (hash, seed mixing, fill order, weighting) changes the tables and breaks
// compatibility between nodes running different versions. The golden tests
// in this package pin it.
//
// # Hash
//
// For each backend two 64-bit hashes are derived from its ID:
//
//	h(salt) = mix64(FNV-1a-64(le64(seed) || salt || ID))
//
// where FNV-1a-64 uses offset basis 0xcbf29ce484222325 and prime
// 0x100000001b3, le64(seed) is the seed as 8 little-endian bytes, salt is
// a single byte (0x00 for h1, 0x01 for h2), ID is the raw bytes of the
// string, and mix64 is the SplitMix64 finalizer:
//
//	z ^= z >> 30; z *= 0xbf58476d1ce4e5b9
//	z ^= z >> 27; z *= 0x94d049bb133111eb
//	z ^= z >> 31
//
// The backend's preference list is the permutation
// p[j] = (offset + j*skip) mod M with offset = h1 mod M and
// skip = h2 mod (M-1) + 1; because M is prime and 1 <= skip < M it visits
// every slot exactly once.
//
// # Weights
//
// Backends with weight 0 are drained: they get no slots. The others fill
// the table in rounds, visiting backends in ascending ID order. In every
// round each backend adds its weight to a credit counter; if the credit is
// at least wmax (the largest weight) it subtracts wmax and claims the next
// still-free slot from its preference list. Equivalently, a backend's k-th
// slot (k = 1, 2, ...) is claimed in round ceil(k*wmax/w), and within a
// round backends claim in ID order. Filling stops as soon as every slot is
// owned. With equal weights this is exactly the classic Maglev population
// (one slot per backend per round), and in general backend i ends up with
// w_i/Σw of the slots, up to rounding of about one slot per backend.
package maglev

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// DefaultSize is the default table size. It is prime (required by the
// permutation construction) and large enough that, for up to a few hundred
// backends, every backend's share is within about 1% of its ideal share.
const DefaultSize = 65537

// MaxSize caps the table size so a configuration typo cannot make every
// node allocate gigabytes. 16777213 is the largest prime below this bound.
const MaxSize = 1 << 24

// Errors returned by New; test with errors.Is.
var (
	// ErrSizeNotPrime means the size is not a prime number; the
	// permutation construction only visits every slot when it is.
	ErrSizeNotPrime = errors.New("maglev: table size is not prime")
	// ErrSizeTooLarge means the size exceeds MaxSize.
	ErrSizeTooLarge = errors.New("maglev: table size too large")
	// ErrTooManyBackends means there are more weighted backends than
	// slots, so some backend could not get any slot.
	ErrTooManyBackends = errors.New("maglev: more weighted backends than table slots")
	// ErrDuplicateID means two backends share an ID; IDs are the stable
	// identity that makes the table order-independent, so they must be
	// unique.
	ErrDuplicateID = errors.New("maglev: duplicate backend ID")
)

// Backend is one entry of the backend list given to New.
type Backend struct {
	// ID is the stable identity of the backend (for example
	// "10.0.0.21:80" or a name). It alone determines the backend's
	// preference list, so a backend keeps most of its slots when
	// other backends come and go.
	ID string
	// Weight is the relative share of slots; 0 drains the backend.
	Weight uint32
}

// Table is a built Maglev lookup table. It is immutable after New and safe
// for concurrent lookups.
type Table struct {
	// Size is the number of slots (a prime).
	Size uint64
	// Slots[i] is the index, in the backends slice given to New, of the
	// backend owning slot i, or -1 if no backend has a weight > 0.
	Slots []int32
}

// Hash constants; part of the compatibility contract (see package doc).
const (
	fnvOffset64 = 0xcbf29ce484222325
	fnvPrime64  = 0x100000001b3
)

// mix64 is the SplitMix64 finalizer. FNV-1a alone mixes the last bytes of
// the input poorly (IDs such as "10.0.0.21:80" and "10.0.0.22:80" differ
// only near the end), so its output is run through a full-avalanche mixer.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// HashID returns mix64(FNV-1a-64(le64(seed) || salt || id)), the hash New
// uses to derive a backend's permutation (salt 0 gives the offset hash,
// salt 1 the skip hash). It is exported so other implementations and tools
// can check that they reproduce the permutation.
func HashID(seed uint64, salt byte, id string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < 8; i++ {
		h ^= (seed >> (8 * i)) & 0xff
		h *= fnvPrime64
	}
	h ^= uint64(salt)
	h *= fnvPrime64
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

// Permutation returns the offset and skip of the backend with the given ID
// for a table of the given size: its preference list is
// (offset + j*skip) mod size for j = 0, 1, .... size must be a prime >= 2.
func Permutation(id string, size, seed uint64) (offset, skip uint64) {
	offset = HashID(seed, 0, id) % size
	skip = HashID(seed, 1, id)%(size-1) + 1
	return offset, skip
}

// filler is the per-backend state during population; kept in one slice so
// New does a constant number of allocations regardless of N.
type filler struct {
	pos    uint64 // current position in the preference list (a slot index)
	skip   uint64
	weight uint64
	credit uint64 // round strategy: credit; heap strategy: claims so far
	due    uint64 // round in which the next slot is claimed (heap path)
	index  int32  // index into the caller's backends slice
}

// New builds the table for the given backends. The result depends only on
// the set of (ID, Weight) pairs, size and seed — not on the order of
// backends (see the package documentation) — and is identical on every
// platform. Slots holds indices into backends.
//
// size must be a prime <= MaxSize and at least the number of backends with
// a non-zero weight; IDs must be unique (including among drained
// backends), and at most MaxSize backends may be listed in total. If no
// backend has a non-zero weight every slot is -1.
func New(backends []Backend, size uint64, seed uint64) (*Table, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("%w: %d > %d", ErrSizeTooLarge, size, uint64(MaxSize))
	}
	if !IsPrime(size) {
		return nil, fmt.Errorf("%w: %d", ErrSizeNotPrime, size)
	}
	if uint64(len(backends)) > uint64(MaxSize) {
		// Also guarantees indices fit in int32.
		return nil, fmt.Errorf("%w: %d backends", ErrTooManyBackends, len(backends))
	}

	// Sort indices by ID so the result does not depend on input order.
	order := make([]int32, len(backends))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return strings.Compare(backends[a].ID, backends[b].ID)
	})
	weighted := 0
	var wmax uint64
	for k, i := range order {
		if k > 0 && backends[order[k-1]].ID == backends[i].ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateID, backends[i].ID)
		}
		if w := uint64(backends[i].Weight); w > 0 {
			weighted++
			wmax = max(wmax, w)
		}
	}
	if uint64(weighted) > size {
		return nil, fmt.Errorf("%w: %d weighted backends, %d slots", ErrTooManyBackends, weighted, size)
	}

	t := &Table{Size: size, Slots: make([]int32, size)}
	for i := range t.Slots {
		t.Slots[i] = -1
	}
	if weighted == 0 {
		return t, nil
	}

	fs := make([]filler, 0, weighted)
	var wsum uint64
	for _, i := range order {
		b := &backends[i]
		if b.Weight == 0 {
			continue
		}
		off, skip := Permutation(b.ID, size, seed)
		fs = append(fs, filler{pos: off, skip: skip, weight: uint64(b.Weight), index: i})
		wsum += uint64(b.Weight)
	}

	// Both strategies produce exactly the same table (see package doc).
	// The round-robin one costs about N*wmax/Σw iterations per claimed
	// slot, which is ~1 for similar weights but can reach N when one
	// weight dominates; then the heap strategy (O(log N) per slot) wins.
	if uint64(len(fs))*wmax <= 4*wsum {
		fillRounds(t.Slots, fs, wmax)
	} else {
		fillHeap(t.Slots, fs, wmax)
	}
	return t, nil
}

// claim gives f the next free slot on its preference list.
func claim(slots []int32, f *filler) {
	m := uint64(len(slots))
	p := f.pos
	for slots[p] >= 0 {
		p += f.skip
		if p >= m {
			p -= m
		}
	}
	slots[p] = f.index
	p += f.skip
	if p >= m {
		p -= m
	}
	f.pos = p
}

// fillRounds is the reference population: rounds of credit accumulation in
// ID order.
func fillRounds(slots []int32, fs []filler, wmax uint64) {
	left := len(slots)
	for {
		for k := range fs {
			f := &fs[k]
			f.credit += f.weight
			if f.credit < wmax {
				continue
			}
			f.credit -= wmax
			claim(slots, f)
			left--
			if left == 0 {
				return
			}
		}
	}
}

// fillHeap produces the same result as fillRounds by processing claims in
// (round, ID order) order with a binary min-heap; the k-th claim of a
// backend with weight w happens in round ceil(k*wmax/w). fs is in ID order,
// so a filler's position in fs is its tiebreak rank; the heap stores those
// positions.
func fillHeap(slots []int32, fs []filler, wmax uint64) {
	// k*wmax < 2^24 * 2^32, so no overflow in uint64.
	due := func(f *filler, k uint64) uint64 { return (k*wmax + f.weight - 1) / f.weight }
	// credit is unused by this strategy; it counts claims made so far.
	h := make([]int32, len(fs))
	for k := range fs {
		fs[k].credit = 0
		fs[k].due = due(&fs[k], 1)
		h[k] = int32(k)
	}
	less := func(a, b int32) bool {
		if fs[a].due != fs[b].due {
			return fs[a].due < fs[b].due
		}
		return a < b
	}
	down := func(i int) {
		n := len(h)
		for {
			l := 2*i + 1
			if l >= n {
				return
			}
			c := l
			if r := l + 1; r < n && less(h[r], h[l]) {
				c = r
			}
			if !less(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for left := len(slots); left > 0; left-- {
		k := h[0]
		f := &fs[k]
		claim(slots, f)
		f.credit++
		f.due = due(f, f.credit+1)
		down(0)
	}
}

// Lookup returns the backend index for a flow hash: Slots[hash % Size], or
// -1 if the table has no backend. It is the data-plane hot path, so it does
// no validation beyond what indexing does.
func (t *Table) Lookup(hash uint32) int32 {
	return t.Slots[uint64(hash)%t.Size]
}

// Counts returns, for each backend index in [0, n), how many slots it owns;
// used by `portcullis maglev table` to show the actual shares. Slots with
// index -1 or >= n are not counted.
func (t *Table) Counts(n int) []int {
	c := make([]int, n)
	for _, s := range t.Slots {
		if s >= 0 && int(s) < n {
			c[s]++
		}
	}
	return c
}

// IsPrime reports whether n is prime. It is exact for every uint64
// (deterministic Miller-Rabin), so it can validate any configured size.
func IsPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for _, p := range [...]uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37} {
		if n%p == 0 {
			return n == p
		}
	}
	if n < 41*41 {
		return true
	}
	d, r := n-1, 0
	for d%2 == 0 {
		d /= 2
		r++
	}
	// These bases are a proven deterministic witness set for n < 2^64.
	for _, a := range [...]uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37} {
		x := powMod(a, d, n)
		if x == 1 || x == n-1 {
			continue
		}
		composite := true
		for i := 1; i < r; i++ {
			x = mulMod(x, x, n)
			if x == n-1 {
				composite = false
				break
			}
		}
		if composite {
			return false
		}
	}
	return true
}

// NextPrime returns the smallest prime >= n, for turning a desired table
// size into a valid one. It returns 0 if there is none below 2^64.
func NextPrime(n uint64) uint64 {
	if n <= 2 {
		return 2
	}
	if n%2 == 0 {
		n++
	}
	for ; n >= 3; n += 2 {
		if IsPrime(n) {
			return n
		}
	}
	return 0
}

func mulMod(a, b, m uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, m)
}

func powMod(b, e, m uint64) uint64 {
	r := uint64(1)
	b %= m
	for e > 0 {
		if e&1 == 1 {
			r = mulMod(r, b, m)
		}
		b = mulMod(b, b, m)
		e >>= 1
	}
	return r
}
