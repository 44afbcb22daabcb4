package config

// HealthCheck is an active check of a pool's endpoints or a VIP's backends.
// Every target (one pool endpoint or one VIP backend) has one health state:
// it starts unknown and serves traffic until its first check (so a restart
// or reload never takes a working backend out while it waits for rise
// successes), the first result then decides up or down, and afterwards fall
// failures in a row take it down and rise successes in a row bring it back.
// A target that is down gets no traffic: the XDP table and the L7 pool leave
// it out, and its established L4 flows move elsewhere. Draining (an admin
// action) is different: weight 0, established flows stay.
type HealthCheck struct {
	// Name is unique among health checks.
	Name string `yaml:"name"`
	// Pool or VIP names what is checked; exactly one is set. A pool's check
	// covers every endpoint of the pool, discovered ones included; a VIP's
	// check covers every backend of the VIP.
	Pool string `yaml:"pool"`
	VIP  string `yaml:"vip"`
	// Type is http, https, tcp (a connection is accepted) or grpc (the
	// grpc.health.v1 Check method over cleartext HTTP/2; the response must
	// say SERVING).
	Type string `yaml:"type"`
	// Port is the port checked. Default: the endpoint's own port for a
	// pool, the VIP's port for a VIP. Set it to check a separate health
	// port.
	Port int `yaml:"port"`
	// Interval between two checks of one target. Default: 2s.
	Interval Duration `yaml:"interval"`
	// Jitter spreads checks in time: each interval is drawn at random within
	// ±jitter percent of interval, and the first check of each target waits
	// a random part of one interval, so that the checks of many backends do
	// not fire together after a reload. 0-50. Default: 10.
	Jitter *int `yaml:"jitter"`
	// Timeout of one check. Default: 1s; must be below Interval.
	Timeout Duration `yaml:"timeout"`
	// Rise successes in a row mark a backend up. Default: 2.
	Rise int `yaml:"rise"`
	// Fall failures in a row mark a backend down. Default: 3.
	Fall int `yaml:"fall"`
	// SlowStart ramps a recovered backend's weight linearly from 10% to 100%
	// of its configured weight over this long, so that a backend that just
	// came back (cold caches, JIT) is not flooded. It applies after a
	// recovery from down, not at start-up. Default: 0 (full weight at once).
	SlowStart Duration `yaml:"slow_start"`
	// Path is the HTTP request path (http, https). Default: /.
	Path string `yaml:"path"`
	// Method is the HTTP request method (http, https). Default: GET.
	Method string `yaml:"method"`
	// Host is the Host header sent (http, https) and the TLS server name
	// (https) unless tls.server_name is set. Default: the target's address.
	Host string `yaml:"host"`
	// ExpectStatus lists the response status codes that pass, as codes and
	// ranges separated by commas: "200-299,302". Default: 200-399.
	ExpectStatus string `yaml:"expect_status"`
	// ExpectBody passes only when the response body (its first 64 KiB)
	// contains this text. Default: none.
	ExpectBody string `yaml:"expect_body"`
	// ExpectBodyRegex passes only when the response body (its first 64 KiB)
	// matches this regular expression (Go RE2 syntax). Default: none.
	ExpectBodyRegex string `yaml:"expect_body_regex"`
	// TLS is how an https check verifies the backend's certificate.
	TLS *CheckTLS `yaml:"tls"`
	// GRPCService is the service name sent in the gRPC health request (grpc).
	// Default: "" (the server's overall health).
	GRPCService string `yaml:"grpc_service"`
	// DSRPath checks dsr-l2 backends of a VIP through the path that traffic
	// takes: a TCP SYN to the VIP and port, sent from node.interface to the
	// backend's MAC, must be answered by a SYN-ACK from that MAC. A backend
	// that listens on its own address but does not hold the VIP on lo is
	// then down, as it would be for clients. The probe runs in addition to
	// the check of type; both must pass (for type tcp the probe replaces the
	// connect). For ipip and gue backends the SYN goes through the same
	// encapsulation as the traffic (outer headers from the encap source
	// prefix to the backend's address, via the next hop), so a backend
	// without the decap program, or whose allow-list lacks this node, is
	// down too. Needs root (a packet socket). Only for vip checks. Default:
	// true for vip checks.
	DSRPath *bool `yaml:"dsr_path"`
	// Passive marks endpoints down on signals from the L7 proxy's own
	// traffic, through the same state as the active check; only an active
	// check brings them back (after rise successes). Only for pool checks.
	Passive *PassiveCheck `yaml:"passive"`
}

// CheckTLS is the TLS of an https check.
type CheckTLS struct {
	// ServerName is sent as SNI and checked against the certificate.
	// Default: host, else the target's host.
	ServerName string `yaml:"server_name"`
	// CAFile is a PEM bundle of the only CAs trusted for the backends.
	// Default: none (system roots).
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any certificate: the check then proves only
	// that TLS is spoken. It cannot be combined with ca_file. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// PassiveCheck turns the L7 proxy's failures into health-state failures.
// Each counter is of failures in a row on one endpoint; any response below
// 500 resets them. 0 turns a counter off; all are off by default.
type PassiveCheck struct {
	// Consecutive5xx marks an endpoint down after this many 5xx responses,
	// connect errors, timeouts or resets in a row. Default: 0 (off).
	Consecutive5xx int `yaml:"consecutive_5xx"`
	// ConsecutiveConnectErrors marks an endpoint down after this many failed
	// connection attempts in a row. Default: 0 (off).
	ConsecutiveConnectErrors int `yaml:"consecutive_connect_errors"`
	// ConsecutiveTimeouts marks an endpoint down after this many timed-out
	// attempts in a row. Default: 0 (off).
	ConsecutiveTimeouts int `yaml:"consecutive_timeouts"`
}

// Discovery fills a pool from a registry. The discovered endpoints replace
// the pool's static ones. When the registry cannot be reached, the pool keeps
// the last set it had (the source is then shown as stale, with the error and
// since when): discovery failing never empties a pool. Until the first
// answer the pool serves its static endpoints. An etcd prefix with no keys or
// a Consul service with no passing instance does empty the pool (the registry
// said so); a DNS name with no records is treated as a failure, because an
// empty DNS answer is far more often a mistake or a blink than an intent.
type Discovery struct {
	// Name is unique among discovery sources.
	Name string `yaml:"name"`
	// Pool receives the discovered endpoints. At most one source per pool.
	Pool string `yaml:"pool"`
	// Provider is dns, etcd or consul.
	Provider string `yaml:"provider"`
	// DNS names an SRV or A/AAAA record (dns provider).
	DNS string `yaml:"dns"`
	// RecordType is the DNS record looked up (dns provider): srv (targets,
	// ports and weights from SRV records; only the lowest priority present
	// is used, the others are backups for when it is empty), a, aaaa, or
	// a+aaaa (both). Default: srv when dns starts with "_", else a+aaaa.
	RecordType string `yaml:"record_type"`
	// Port is the endpoints' port for A/AAAA records (dns provider).
	Port int `yaml:"port"`
	// Resolvers are host:port of DNS servers asked in order (dns provider).
	// Default: the nameservers of /etc/resolv.conf.
	Resolvers []string `yaml:"resolvers"`
	// MinRefresh and MaxRefresh bound the time between two lookups (dns
	// provider): a record is looked up again when its TTL expires, but not
	// sooner than min_refresh (a TTL of 0 would otherwise spin) and not later
	// than max_refresh. Defaults: 1s and 5m.
	MinRefresh Duration `yaml:"min_refresh"`
	MaxRefresh Duration `yaml:"max_refresh"`
	// Endpoints are the registry's addresses, host:port or
	// http(s)://host:port (etcd: the cluster members; consul: agents, asked
	// in order until one answers).
	Endpoints []string `yaml:"endpoints"`
	// Key is the etcd prefix or the Consul service name. Under an etcd
	// prefix each key holds one endpoint as JSON:
	// {"address": "10.0.0.5:8080", "weight": 2} (weight optional).
	Key string `yaml:"key"`
	// Tag keeps only the Consul instances that carry this tag (consul).
	Tag string `yaml:"tag"`
	// Datacenter is the Consul datacenter asked (consul). Default: the
	// agent's own.
	Datacenter string `yaml:"datacenter"`
	// TokenFile holds a Consul ACL token (consul). Default: none.
	TokenFile string `yaml:"token_file"`
	// Wait is how long one Consul blocking query may wait for a change
	// (consul), at most 10m. Default: 5m.
	Wait Duration `yaml:"wait"`
	// Weight is the weight of endpoints whose registry entry has none
	// (1-65535). Default: 1.
	Weight int `yaml:"weight"`
	// Throttle is the shortest time between two updates of the pool: a
	// burst of registry changes is applied as one, after the burst. Identical
	// sets are never re-applied. Default: 1s.
	Throttle Duration `yaml:"throttle"`
	// RetryInterval is the wait before reconnecting after the registry
	// failed. Default: 2s.
	RetryInterval Duration `yaml:"retry_interval"`
}
