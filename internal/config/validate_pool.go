package config

import (
	"fmt"
)

// validatePools checks l7.pools and returns their names.
func (v *validator) validatePools() map[string]bool {
	l7 := &v.c.L7
	pools := map[string]bool{}
	for i, pool := range l7.Pools {
		p := fmt.Sprintf("l7.pools[%d]", i)
		v.name(p+".name", "pool", pool.Name, pools)
		if !oneOf(pool.Algorithm, "round_robin", "random") {
			v.errorf(p+".algorithm", "algorithm %q: use round_robin or random", pool.Algorithm)
		}
		seen := map[string]bool{}
		for j, e := range pool.Endpoints {
			ep := fmt.Sprintf("%s.endpoints[%d]", p, j)
			v.hostPort(ep+".address", e.Address)
			if seen[e.Address] {
				v.errorf(ep+".address", "duplicate endpoint %s", e.Address)
			}
			seen[e.Address] = true
			if e.Weight < 1 || e.Weight > 65535 {
				v.errorf(ep+".weight", "weight %d is out of range (1-65535)", e.Weight)
			}
		}
	}
	return pools
}
