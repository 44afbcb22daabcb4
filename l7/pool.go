package l7

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/portcullis-lb/portcullis/internal/config"
)

// Endpoint is one upstream server of a pool.
type Endpoint struct {
	Address string
	Weight  int
	url     *url.URL
}

// endpointSet is immutable; a pool swaps whole sets so that discovery and
// health changes never show a half-updated list to a request.
type endpointSet struct {
	eps   []*Endpoint
	total int
}

// balancer picks an endpoint from a set. One small type per algorithm.
type balancer interface {
	pick(set *endpointSet) *Endpoint
}

// Pool is a named set of endpoints and the algorithm that chooses among them.
type Pool struct {
	Name string
	set  atomic.Pointer[endpointSet]
	lb   balancer
}

func newPool(pc config.Pool) (*Pool, error) {
	p := &Pool{Name: pc.Name}
	switch pc.Algorithm {
	case "round_robin":
		p.lb = &smoothRR{}
	case "random":
		p.lb = randomLB{}
	default:
		return nil, fmt.Errorf("pool %q: unknown algorithm %q", pc.Name, pc.Algorithm)
	}
	eps := make([]*Endpoint, 0, len(pc.Endpoints))
	for _, e := range pc.Endpoints {
		eps = append(eps, &Endpoint{Address: e.Address, Weight: e.Weight})
	}
	if err := p.SetEndpoints(eps); err != nil {
		return nil, fmt.Errorf("pool %q: %w", pc.Name, err)
	}
	return p, nil
}

// SetEndpoints replaces the pool's endpoints atomically: requests already
// holding an endpoint keep it, new picks see only the new set.
func (p *Pool) SetEndpoints(eps []*Endpoint) error {
	set := &endpointSet{eps: eps}
	for _, e := range eps {
		u, err := url.Parse("http://" + e.Address)
		if err != nil {
			return fmt.Errorf("endpoint %s: %w", e.Address, err)
		}
		e.url = u
		set.total += e.Weight
	}
	p.set.Store(set)
	return nil
}

// Endpoints returns the current endpoints (do not modify).
func (p *Pool) Endpoints() []*Endpoint { return p.set.Load().eps }

// Pick chooses an endpoint, or nil when the pool is empty.
func (p *Pool) Pick() *Endpoint {
	set := p.set.Load()
	if len(set.eps) == 0 || set.total == 0 {
		return nil
	}
	return p.lb.pick(set)
}

// smoothRR is nginx's smooth weighted round robin: weights 5,1,1 give
// a a b a c a a rather than a a a a a b c, so no endpoint gets a burst.
type smoothRR struct {
	mu      sync.Mutex
	current map[*Endpoint]int
	of      *endpointSet
}

func (s *smoothRR) pick(set *endpointSet) *Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.of != set {
		s.of, s.current = set, make(map[*Endpoint]int, len(set.eps))
	}
	var best *Endpoint
	for _, e := range set.eps {
		s.current[e] += e.Weight
		if best == nil || s.current[e] > s.current[best] {
			best = e
		}
	}
	s.current[best] -= set.total
	return best
}

type randomLB struct{}

func (randomLB) pick(set *endpointSet) *Endpoint {
	n := rand.IntN(set.total)
	for _, e := range set.eps {
		if n < e.Weight {
			return e
		}
		n -= e.Weight
	}
	return set.eps[len(set.eps)-1]
}
