package config

import (
	"strings"
)

// schemaRule is what the JSON Schema says about one key beyond its Go type:
// the part of validate*.go that a schema can express. For a list of scalars,
// enum, pattern and the bounds apply to the items and minItems to the list.
// Only what validation rejects goes here, so the schema never refuses a file
// the daemon accepts; TestSchemaEnumsAgreeWithValidation checks every enum
// against the validator.
type schemaRule struct {
	enum     []string
	pattern  string
	min, max *int64 // bounds narrower than the Go type's
	orZero   bool   // 0 is accepted besides min-max (0 means "the default")
	minItems int
	required bool
}

func between(lo, hi int64) schemaRule { return schemaRule{min: &lo, max: &hi} }

// atLeast is a lower bound only; the upper one is the type's.
func atLeast(lo int64) schemaRule { return schemaRule{min: &lo} }

func oneOfValues(v ...string) schemaRule { return schemaRule{enum: v} }

func (r schemaRule) req() schemaRule { r.required = true; return r }

func (r schemaRule) zeroIsDefault() schemaRule { r.orZero = true; return r }

// The rules that recur, named after what validation calls them.
var (
	ruleRequired = schemaRule{required: true}
	ruleNonEmpty = schemaRule{pattern: "^.+$", required: true}
	ruleList     = schemaRule{minItems: 1, required: true} // a list with at least one item
	// A name of a VIP, backend, listener, route, pool, check, discovery
	// source or consumer (nameRE).
	ruleName    = schemaRule{pattern: nameRE.String()}
	ruleReqName = ruleName.req()
	ruleHeader  = schemaRule{pattern: tokenRE.String()} // a header name (tokenRE)
	rulePath    = schemaRule{pattern: "^/"}
	ruleMethod  = schemaRule{pattern: methodRE.String()}
	// tokenChars is tokenRE without its anchors, for header:NAME and cookie:NAME.
	tokenChars = strings.TrimSuffix(strings.TrimPrefix(tokenRE.String(), "^"), "$")
)

// schemaRules are keyed by Go type and field name ("Log.Level"); a key that
// names no field fails the generation, so a renamed field cannot leave a
// rule behind.
var schemaRules = map[string]schemaRule{
	"Node.Name":     ruleName,
	"Node.Priority": between(0, 255),
	"Node.ID":       between(0, 255),
	"Log.Level":     oneOfValues("debug", "info", "warn", "error"),
	"Log.Format":    oneOfValues("text", "json"),

	"L4.XDPMode":       oneOfValues("auto", "native", "generic"),
	"L4.MaglevSize":    between(0, 1<<20), // and a prime: validate says which
	"L4.ConntrackSize": atLeast(1024).zeroIsDefault(),
	"L4.EncapMTU":      between(1280, 65535).zeroIsDefault(),
	"L4.GUEPort":       between(1, 65535).zeroIsDefault(),

	"VIP.Name":           ruleReqName,
	"VIP.Address":        ruleRequired,
	"VIP.Port":           between(1, 65535).req(),
	"VIP.Protocol":       oneOfValues("tcp", "udp"),
	"VIP.Backends":       ruleList,
	"VIPBackend.Name":    ruleReqName,
	"VIPBackend.Address": ruleRequired,
	// net.ParseMAC's three forms, 6 bytes long.
	"VIPBackend.MAC":        {pattern: `^([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2})$`},
	"VIPBackend.Forwarding": oneOfValues("local", "dsr-l2", "ipip", "gue"),
	"VIPBackend.Weight":     between(0, 65535),
	"VIPBackend.NodeID":     between(0, 255),

	"Listener.Name":                   ruleReqName,
	"Listener.Address":                ruleRequired,
	"Listener.MaxHeaderBytes":         between(4096, 16<<20).zeroIsDefault(),
	"Listener.MaxURIBytes":            between(256, 16<<20).zeroIsDefault(),
	"Listener.MaxHeaderCount":         between(8, 10000).zeroIsDefault(),
	"Listener.MaxBodyBytes":           atLeast(0),
	"Listener.MaxConnsPerIP":          atLeast(0),
	"Listener.H2MaxConcurrentStreams": between(0, 10000),
	"Listener.H3MaxStreams":           between(0, 10000),
	"Listener.Server":                 oneOfValues("lean", "stdlib"),
	"ListenerTLS.Certificates":        ruleList,
	"ListenerTLS.MinVersion":          oneOfValues("1.2", "1.3"),
	"ListenerTLS.ClientAuth":          oneOfValues("require", "verify-if-given"),
	"Certificate.CertFile":            ruleRequired,
	"Certificate.KeyFile":             ruleRequired,

	"Route.Name":          ruleReqName,
	"Route.MaxBodyBytes":  atLeast(0),
	"Match.Path":          rulePath,
	"Match.PathPrefix":    rulePath,
	"Match.PathTemplate":  rulePath,
	"Match.Methods":       ruleMethod,
	"HeaderMatch.Name":    ruleHeader.req(),
	"QueryMatch.Name":     ruleNonEmpty,
	"Versioning.Versions": ruleList,
	"Versioning.Sources":  {pattern: "^(url|media_type|header:" + tokenChars + ")$"},
	"APIVersion.Name":     schemaRule{pattern: versionRE.String()}.req(),
	"Rewrite.StripPrefix": {pattern: "^/."},
	"HeaderOps.Remove":    ruleHeader,
	"HeaderValue.Name":    ruleHeader.req(),
	"JWT.Issuer":          ruleNonEmpty,
	"JWT.Audiences":       ruleList,
	"JWT.Algorithms":      oneOfValues(JWTAlgorithms...),
	"JWTKey.Algorithm":    oneOfValues(JWTAlgorithms...),
	"RemoteJWKS.URL":      schemaRule{pattern: "^https?://[^/]"}.req(),
	"ClaimMatch.Name":     ruleNonEmpty,
	"ForwardClaim.Claim":  ruleNonEmpty,
	"ForwardClaim.Header": ruleHeader.req(),
	"APIKeys.Header":      ruleHeader,
	"APIKeys.Keys":        ruleList,
	"APIKey.Consumer":     ruleReqName,
	"APIKey.SHA256":       schemaRule{pattern: "^[0-9A-Fa-f]{64}$"}.req(),
	"CORS.AllowedOrigins": ruleList,
	"CORS.AllowedMethods": ruleMethod,
	"CORS.ExposeHeaders":  ruleHeader,
	"RateLimit.Requests":  atLeast(1).req(),
	"RateLimit.Burst":     atLeast(0),
	"RateLimit.Key":       {pattern: "^(client_ip|route|consumer|header:" + tokenChars + "|claim:.+)$"},
	"RateLimit.MaxKeys":   atLeast(0),
	"RateLimit.Scope":     oneOfValues(RateLimitScopeLocal, RateLimitScopeCluster),

	"Aggregate.Calls":            ruleList,
	"Aggregate.Merge":            oneOfValues(AggregateMergeNamed, AggregateMergeObject),
	"Aggregate.OnPartialFailure": oneOfValues(AggregatePartialFail, AggregatePartialAnswer),
	"AggregateCall.Name":         ruleReqName,
	"AggregateCall.Pool":         ruleRequired,
	"AggregateCall.Method":       ruleMethod,
	"AggregateCall.Path":         schemaRule{pattern: "^/"}.req(),
	"AggregateCall.Select":       {pattern: "^.+$"},
	"AggregateRename.From":       ruleNonEmpty,
	"AggregateRename.To":         ruleNonEmpty,

	"Pool.Name":                        ruleReqName,
	"Pool.Algorithm":                   oneOfValues("round_robin", "random", "least_request", "consistent_hash", "sticky"),
	"Pool.Protocol":                    oneOfValues("http1", "h2", "h2c"),
	"Pool.MaxIdlePerEndpoint":          atLeast(0),
	"Pool.MaxConcurrent":               atLeast(0),
	"Endpoint.Address":                 ruleRequired,
	"Endpoint.Weight":                  between(0, 65535),
	"Retries.Attempts":                 between(0, 10),
	"Retries.On":                       oneOfValues(RetryConditions...),
	"Retries.BudgetPercent":            between(0, 100),
	"Retries.MinRetries":               between(0, 1<<20),
	"Outlier.Consecutive5xx":           between(0, 1<<20),
	"Outlier.ConsecutiveGatewayErrors": between(0, 1<<20),
	"Outlier.ConsecutiveConnectErrors": between(0, 1<<20),
	"Outlier.MaxEjectionPercent":       between(0, 100),
	"Hash.Key":                         {pattern: "^(client_ip|header:" + tokenChars + "|cookie:" + tokenChars + ")$"},
	"Sticky.Fallback":                  oneOfValues("round_robin", "random", "least_request"),
	"AccessLog.Buffer":                 atLeast(0),

	"Cluster.Profile":       oneOfValues("lan", "fast"),
	"Cluster.SuspicionMult": between(0, 100),
	"ClusterVIP.VIP":        ruleNonEmpty,
	"Witness.Kind":          oneOfValues("tcp", "icmp", "arp").req(),
	"Witness.Address":       ruleRequired,
	"Witness.Fails":         between(0, 100),
	"GARP.Count":            between(0, 100),

	"HealthCheck.Name":                      ruleReqName,
	"HealthCheck.Type":                      oneOfValues("http", "https", "tcp", "grpc").req(),
	"HealthCheck.Port":                      between(0, 65535),
	"HealthCheck.Jitter":                    between(0, 50),
	"HealthCheck.Rise":                      atLeast(0),
	"HealthCheck.Fall":                      atLeast(0),
	"HealthCheck.Path":                      rulePath,
	"HealthCheck.Method":                    {pattern: "^[A-Z]+$"},
	"PassiveCheck.Consecutive5xx":           atLeast(0),
	"PassiveCheck.ConsecutiveConnectErrors": atLeast(0),
	"PassiveCheck.ConsecutiveTimeouts":      atLeast(0),
	"Discovery.Name":                        ruleReqName,
	"Discovery.Pool":                        ruleRequired,
	"Discovery.Provider":                    oneOfValues("dns", "etcd", "consul").req(),
	"Discovery.RecordType":                  oneOfValues("srv", "a", "aaaa", "a+aaaa"),
	"Discovery.Port":                        between(0, 65535),
	"Discovery.Weight":                      between(0, 65535),
}

// schemaTypeRules are extra keywords of a mapping's schema: the rules that
// tie two keys together.
var schemaTypeRules = map[string]object{
	// validateCluster: gossip is always encrypted.
	"Cluster": {{"oneOf", requireOne("key_file", "key")}},
	// validateChecks: a check covers a pool or a VIP.
	"HealthCheck": {{"oneOf", requireOne("pool", "vip")}},
	// validateJWT: one source of key material per key.
	"JWTKey": {{"oneOf", requireOne("jwk", "pem", "pem_file", "secret", "secret_file")}},
	// validateL4: a dsr-l2 backend (the default) is reached by its MAC; a
	// local one is this node and has none; an ipip or gue one may name its next
	// hop's (else the daemon resolves it).
	"VIPBackend": {
		{"if", object{{"properties", object{{"forwarding", object{{"const", "local"}}}}}, {"required", []string{"forwarding"}}}},
		{"then", object{{"not", object{{"required", []string{"mac"}}}}}},
		{"else", object{{"anyOf", []object{
			{{"required", []string{"mac"}}},
			{{"properties", object{{"forwarding", object{{"enum", []string{"ipip", "gue"}}}}}}, {"required", []string{"forwarding"}}},
		}}}},
	},
}
