package config

// L7 is the HTTP proxy.
type L7 struct {
	// Listeners accept client connections.
	Listeners []Listener `yaml:"listeners"`
	// Routes map requests to pools. The most specific route wins, compared
	// in this order: host (exact, then the longest wildcard, then none), path
	// (exact, then the longest prefix, then none), methods (a list, then
	// none); ties go to the route written first. A route whose host and path
	// match but whose methods do not is skipped, and the next one is tried;
	// when none is left, the answer is 405 with an Allow header.
	Routes []Route `yaml:"routes"`
	// Pools are sets of upstream endpoints.
	Pools []Pool `yaml:"pools"`
}
