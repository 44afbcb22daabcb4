package config

// Pool is a set of upstream endpoints.
type Pool struct {
	// Name is unique among pools.
	Name string `yaml:"name"`
	// Algorithm is round_robin (smooth weighted) or random. Default:
	// round_robin.
	Algorithm string `yaml:"algorithm"`
	// Endpoints are host:port of upstream HTTP servers.
	Endpoints []Endpoint `yaml:"endpoints"`
}

// Endpoint is one upstream server.
type Endpoint struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Weight is the relative share of requests, 1-65535. Default: 1.
	Weight int `yaml:"weight"`
}
