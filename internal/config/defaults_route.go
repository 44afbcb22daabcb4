package config

// Route defaults.
const (
	// DefaultVersionSource is where versioning reads the version when
	// sources is not given.
	DefaultVersionSource = "url"
)

func (c *Config) applyRouteDefaults() {
	for i := range c.L7.Routes {
		c.L7.Routes[i].SetDefaults()
	}
}

// SetDefaults fills what the route leaves out (see Pool.SetDefaults).
func (r *Route) SetDefaults() {
	r.setSecurityDefaults()
	r.setTransformDefaults()
	r.setCacheDefaults()
	r.setAggregateDefaults()
	if v := r.Versioning; v != nil {
		if len(v.Sources) == 0 {
			v.Sources = []string{DefaultVersionSource}
		}
		for j := range v.Versions {
			def(&v.Versions[j].Pool, r.Pool)
		}
	}
}
