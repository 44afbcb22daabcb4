package config

// Cache is a shared HTTP cache (RFC 9111) in front of the route's pool, held
// in memory per route. GET responses that HTTP allows a shared cache to store
// are kept (HEAD is answered from them), keyed by host, path and query and by
// the request headers the response's Vary names; fresh ones are answered
// without contacting the pool, stale ones are revalidated. Concurrent misses
// for the same resource wait for one upstream request. Successful unsafe
// requests (POST, PUT, DELETE, PATCH) drop what they change, and the admin
// API purges (POST /api/v1/cache/purge). The identity (uncompressed)
// representation is stored; compression happens on the way out. See
// docs/cache.md.
type Cache struct {
	// MaxBytes is the memory budget of the route's cache in bytes (bodies,
	// headers and keys); the least recently used entries are evicted beyond
	// it. Default: 67108864 (64 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxEntryBytes is the largest body stored, in bytes; larger responses
	// stream to the client and are not stored. At most max_bytes / 2.
	// Default: 1048576 (1 MiB).
	MaxEntryBytes int64 `yaml:"max_entry_bytes"`
	// Heuristic enables heuristic freshness (RFC 9111 §4.2.2) for responses
	// without an explicit lifetime but with Last-Modified: this percentage of
	// the time since the last modification, e.g. "10%". Default: none (such
	// responses are stored only to be revalidated).
	Heuristic string `yaml:"heuristic"`
	// HeuristicMax caps a heuristic lifetime. Default: 24h.
	HeuristicMax Duration `yaml:"heuristic_max"`
	// StaleWhileRevalidate is how long after a response turned stale it may
	// still be served while one background request refreshes it, when the
	// response's own Cache-Control does not say (RFC 5861). Default: 0 (only
	// what the response says).
	StaleWhileRevalidate Duration `yaml:"stale_while_revalidate"`
	// StaleIfError is how long after a response turned stale it may be
	// served when the upstream fails (a 5xx or no connection), when the
	// response's own Cache-Control does not say (RFC 5861). Default: 0 (only
	// what the response says).
	StaleIfError Duration `yaml:"stale_if_error"`
	// CoalesceTimeout bounds how long a request waits for a concurrent
	// request's upstream fetch of the same resource before it goes to the
	// upstream itself. Default: 5s.
	CoalesceTimeout Duration `yaml:"coalesce_timeout"`
}
