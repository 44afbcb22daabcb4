package config

// Pool defaults.
const (
	DefaultPoolAlgorithm  = "round_robin"
	DefaultEndpointWeight = 1
)

func (c *Config) applyPoolDefaults() {
	for i := range c.L7.Pools {
		p := &c.L7.Pools[i]
		def(&p.Algorithm, DefaultPoolAlgorithm)
		for j := range p.Endpoints {
			def(&p.Endpoints[j].Weight, DefaultEndpointWeight)
		}
	}
}
