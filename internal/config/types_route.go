package config

// Route sends matching requests to a pool.
type Route struct {
	// Name is unique among routes; it labels metrics and access logs.
	Name string `yaml:"name"`
	// Listeners restricts the route to these listeners. Default: all.
	Listeners []string `yaml:"listeners"`
	// Match selects requests. An empty match takes everything.
	Match Match `yaml:"match"`
	// Pool receives the matched requests.
	Pool string `yaml:"pool"`
}

// Match selects requests.
type Match struct {
	// Hosts are exact host names or wildcards (*.example.com); the port is
	// ignored.
	Hosts []string `yaml:"hosts"`
	// Path matches the path exactly.
	Path string `yaml:"path"`
	// PathPrefix matches a path prefix on segment boundaries ("/api" matches
	// /api and /api/x, not /apix).
	PathPrefix string `yaml:"path_prefix"`
	// Methods are HTTP methods, upper case.
	Methods []string `yaml:"methods"`
}
